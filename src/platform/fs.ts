/**
 * The file-system seam of the training loop: the few file operations the trainer needs,
 * behind an interface, so that the loop can run where `Deno.*` does not exist (a browser
 * Web Worker supplies its own implementation). `denoFs` is the implementation for Deno.
 *
 * @module
 */

import { atomicWrite, type AtomicWriteOptions } from "../io/atomic.ts";

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
  /** Replaces `path` atomically with `data` (`options`: test hooks). */
  writeAtomic(path: string, data: Uint8Array | string, options?: AtomicWriteOptions): void;
  /** Appends text to `path` (created when missing). */
  appendText(path: string, text: string): void;
  /** Reads a text file; null when it does not exist. */
  readText(path: string): string | null;
  /** Removes a file; no error when it is gone already. */
  removeFile(path: string): void;
}

/** `PlatformFs` on Deno's synchronous file API. */
export const denoFs: PlatformFs = {
  mkdirp(path) {
    Deno.mkdirSync(path, { recursive: true });
  },
  createDirExclusive(path) {
    try {
      Deno.mkdirSync(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return false;
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
    Deno.writeTextFileSync(path, text, { append: true });
  },
  readText(path) {
    try {
      return Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  },
  removeFile(path) {
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
};

function entries(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}
