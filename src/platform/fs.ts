/**
 * The file-system seam of the training loop: the few file operations the trainer needs,
 * behind an interface. `denoFs` implements it on the host seam (`host.ts`: Deno's file API,
 * or the in-memory file system of `host_browser.ts` in the web build).
 *
 * @module
 */

import { atomicWrite, type AtomicWriteOptions } from "../io/atomic.ts";
import { host } from "./host.ts";

/** The file operations the trainer uses. Paths use `/`. */
export interface PlatformFs {
  /** Creates a folder and its parents; no error when it exists. */
  mkdirp(path: string): void;
  /**
   * Creates folder `path` only if it does not exist yet (its parent must exist); returns
   * false when it exists. Atomic: of several callers racing for one path, one gets true.
   */
  createDirExclusive(path: string): boolean;
  /** Names of the sub-folders of `path` ([] when `path` does not exist). */
  listDirs(path: string): string[];
  /** Names of the files in `path` ([] when `path` does not exist). */
  listFiles(path: string): string[];
  /**
   * Replaces `path` atomically with `data`, or with a list of pieces written in order
   * (`options`: test hooks).
   */
  writeAtomic(
    path: string,
    data: Uint8Array | readonly Uint8Array[] | string,
    options?: AtomicWriteOptions,
  ): void;
  /** Appends text to `path` (created when missing). */
  appendText(path: string, text: string): void;
  /** Reads a text file; null when it does not exist. */
  readText(path: string): string | null;
  /** Removes a file; no error when it is gone already. */
  removeFile(path: string): void;
}

/**
 * `PlatformFs` on the host's synchronous file API (Deno's; in the web build, the in-memory
 * file system). The name predates the web build.
 */
export const denoFs: PlatformFs = {
  mkdirp(path) {
    host.mkdirSync(path, { recursive: true });
  },
  createDirExclusive(path) {
    try {
      host.mkdirSync(path);
      return true;
    } catch (e) {
      if (host.isAlreadyExists(e)) return false;
      throw e;
    }
  },
  listDirs(path) {
    return entries(path).filter((e) => e.isDirectory).map((e) => e.name);
  },
  listFiles(path) {
    return entries(path).filter((e) => e.isFile).map((e) => e.name);
  },
  writeAtomic(path, data, options) {
    atomicWrite(path, data, options);
  },
  appendText(path, text) {
    host.writeFileSync(path, new TextEncoder().encode(text), { append: true });
  },
  readText(path) {
    try {
      return host.readTextFileSync(path);
    } catch (e) {
      if (host.isNotFound(e)) return null;
      throw e;
    }
  },
  removeFile(path) {
    try {
      host.removeSync(path);
    } catch (e) {
      if (!host.isNotFound(e)) throw e;
    }
  },
};

function entries(path: string): { name: string; isFile: boolean; isDirectory: boolean }[] {
  try {
    return [...host.readDirSync(path)];
  } catch (e) {
    if (host.isNotFound(e)) return [];
    throw e;
  }
}
