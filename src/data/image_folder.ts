/**
 * Scanning image folders laid out as `root/{train,val,test}/<class>/**\/*.{png,jpg,jpeg}`.
 *
 * @module
 */

import { DataError, reasonOf } from "./errors.ts";
import { IMAGE_EXTENSIONS } from "./image.ts";
import { host } from "../platform/host.ts";

/** One split's classes and their image paths (both sorted). */
export interface ScannedSplit {
  /** Class folder name → sorted image paths. */
  classes: Map<string, string[]>;
}

const isImage = (name: string): boolean =>
  IMAGE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

async function entries(dir: string): Promise<{ name: string; isDir: boolean; isFile: boolean }[]> {
  const out: { name: string; isDir: boolean; isFile: boolean }[] = [];
  try {
    for await (const e of host.readDir(dir)) {
      let isDir = e.isDirectory;
      let isFile = e.isFile;
      if (e.isSymlink) {
        try {
          const st = await host.stat(`${dir}/${e.name}`);
          isDir = st.isDirectory;
          isFile = st.isFile;
        } catch { /* dangling link: reported as a non-image file below */ }
      }
      out.push({ name: e.name, isDir, isFile });
    }
  } catch (e) {
    throw new DataError(`cannot read folder ${dir} (${reasonOf(e)})`);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function walk(dir: string, images: string[], others: string[]): Promise<void> {
  for (const e of await entries(dir)) {
    if (e.name.startsWith(".")) continue; // .DS_Store and friends
    const p = `${dir}/${e.name}`;
    if (e.isDir) await walk(p, images, others);
    else if (e.isFile && isImage(e.name)) images.push(p);
    else others.push(p);
  }
}

/** Whether `path` is an existing folder. */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await host.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Scans one split folder. Class folders without images are an error; non-image files are
 * ignored and reported through `warn` (one line naming the first few).
 */
export async function scanSplit(
  dir: string,
  warn: (msg: string) => void,
): Promise<ScannedSplit> {
  const classes = new Map<string, string[]>();
  const others: string[] = [];
  for (const e of await entries(dir)) {
    if (e.name.startsWith(".")) continue;
    const p = `${dir}/${e.name}`;
    if (!e.isDir) {
      others.push(p);
      continue;
    }
    const images: string[] = [];
    await walk(p, images, others);
    if (images.length === 0) {
      throw new DataError(
        `empty class folder ${p}: expected at least one ${IMAGE_EXTENSIONS.join("/")} file`,
      );
    }
    classes.set(e.name, images.sort());
  }
  if (others.length) {
    const first = others.slice(0, 5).join(", ");
    warn(
      `data: ignoring ${others.length} non-image file(s) in ${dir} (not in a class folder or ` +
        `not ${IMAGE_EXTENSIONS.join("/")}): ${first}${others.length > 5 ? ", …" : ""}`,
    );
  }
  return { classes };
}
