/**
 * Atomic file writes: readers see the old file or the new one, never a mix, and a crash
 * never leaves a truncated file under the target name.
 *
 * @module
 */

import { host } from "../platform/host.ts";

let tmpCounter = 0;

/** Options of `atomicWrite`. */
export interface AtomicWriteOptions {
  /**
   * Test hook: called with the temp file's path after the data is written and synced but
   * before the rename (throwing here simulates a crash mid-write).
   */
  beforeRename?: (tmpPath: string) => void;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a mix:
 * a temp file in the same folder, fsync, rename over `path`, fsync of the folder (so the
 * rename itself survives a power loss). `data` may be a list of pieces, written in order (a
 * large file need not be joined into one array first).
 */
export function atomicWrite(
  path: string,
  data: Uint8Array | readonly Uint8Array[] | string,
  options: AtomicWriteOptions = {},
): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const dir = dirOf(path);
  const base = path.slice(path.lastIndexOf("/") + 1);
  const tmp = `${dir}/.${base}.tmp-${host.pid}-${tmpCounter++}`;
  try {
    host.writeFileSync(tmp, bytes, { sync: true });
    options.beforeRename?.(tmp);
    host.renameSync(tmp, path);
  } catch (e) {
    try {
      host.removeSync(tmp);
    } catch { /* already gone */ }
    throw e;
  }
  host.syncDirSync(dir); // best effort
}
