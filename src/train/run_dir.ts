/**
 * Run folders: `rootDir/name/version_N` (Lightning's numbering), claimed atomically so that
 * runs started at the same moment (a sweep on one machine, or on many sharing a disk)
 * never share one.
 *
 * @module
 */

import { denoFs, type PlatformFs } from "../platform/fs.ts";

const VERSION = /^version_(\d+)$/;

/** The next free `rootDir/name/version_N` as of now (not claimed; see `claimVersionDir`). */
export function nextVersionDir(rootDir: string, name: string, fs: PlatformFs = denoFs): string {
  const base = `${rootDir}/${name}`;
  let max = -1;
  for (const d of fs.listDirs(base)) {
    const m = VERSION.exec(d);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return `${base}/version_${max + 1}`;
}

/**
 * Creates and returns the next free `rootDir/name/version_N`. The folder is created
 * exclusively: when another run took that number first, the next one is tried.
 */
export function claimVersionDir(rootDir: string, name: string, fs: PlatformFs = denoFs): string {
  const base = `${rootDir}/${name}`;
  fs.mkdirp(base);
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const dir = nextVersionDir(rootDir, name, fs);
    if (fs.createDirExclusive(dir)) return dir;
  }
  throw new Error(`run folder: could not claim a version_N folder under "${base}"`);
}
