/**
 * The file side of autotuning (`src/gpu/tune.ts` stays file-free): where the per-adapter
 * cache file lives, reading it (a corrupt one is ignored with a warning), writing it
 * atomically, the `CT_TUNE` switch, and the choice table a run records in its folder. Every
 * operating-system call goes through the host seam (`src/platform/host.ts`).
 *
 * @module
 */

import { type ChoiceTable, parseTuneCache, serializeTuneCache } from "../gpu/tune.ts";
import { atomicWrite } from "../io/atomic.ts";
import { denoFs, type PlatformFs } from "../platform/fs.ts";
import { host } from "../platform/host.ts";

/** File a run folder records its kernel choices in (a resumed run reads it back). */
export const RUN_CHOICES_FILE = "tuning.json";

/** Largest cache or record file read (a larger one is ignored as corrupt). */
const MAX_FILE_BYTES = 4 << 20;

/** False when `CT_TUNE=0` (measured choice off, heuristics only). */
export function tuneWanted(): boolean {
  return host.env("CT_TUNE") !== "0";
}

/**
 * The user's cache folder for tuning tables: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
 * `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows, then `classifier-training/tune`.
 * Null when none can be found (always in a browser).
 */
export function tuneCacheDir(): string | null {
  const home = host.env("HOME");
  let base: string | undefined;
  if (host.os === "browser") return null;
  if (host.os === "windows") base = host.env("LOCALAPPDATA");
  else if (host.os === "darwin") base = home && `${home}/Library/Caches`;
  else base = host.env("XDG_CACHE_HOME") || (home && `${home}/.cache`);
  return base ? `${base}/classifier-training/tune` : null;
}

/** Cache file name of an adapter: a readable prefix and a hash of its full identity. */
export function tuneCacheFileName(adapter: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < adapter.length; i++) {
    h ^= adapter.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const prefix = adapter.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 40).replace(/_$/, "");
  return `${prefix || "adapter"}_${h.toString(16).padStart(8, "0")}.json`;
}

/** A file's text, null when missing; a file too large or unreadable is warned about. */
function readSmall(path: string, warn: (message: string) => void): string | null {
  try {
    if (host.statSync(path).size > MAX_FILE_BYTES) {
      warn(`${path}: larger than ${MAX_FILE_BYTES >> 20} MiB; ignored`);
      return null;
    }
    return host.readTextFileSync(path);
  } catch (e) {
    if (!host.isNotFound(e)) warn(`${path}: ${(e as Error).message}; ignored`);
    return null;
  }
}

/**
 * The cached table for `adapter` in `dir`, or `{}` when there is none; a corrupt, foreign or
 * outdated file is ignored with a one-line warning naming it.
 */
export function loadTuneCache(
  dir: string,
  adapter: string,
  warn: (message: string) => void = (m) => console.warn(m),
): ChoiceTable {
  const path = `${dir}/${tuneCacheFileName(adapter)}`;
  const text = readSmall(path, (m) => warn(`tune cache ${m}`));
  if (text === null) return {};
  return parseTuneCache(text, adapter, (m) => warn(`tune cache ${path}: ${m}`)) ?? {};
}

/** Writes `choices` for `adapter` into `dir` atomically (`io/atomic.ts`); returns the path. */
export function saveTuneCache(dir: string, adapter: string, choices: ChoiceTable): string {
  host.mkdirSync(dir, { recursive: true });
  const path = `${dir}/${tuneCacheFileName(adapter)}`;
  atomicWrite(path, serializeTuneCache(adapter, choices));
  return path;
}

/**
 * Records the choices a run used in `runDir/tuning.json` (atomically; the same format as a
 * cache file: adapter identity and `KERNELS_VERSION` included).
 */
export function saveRunChoices(
  runDir: string,
  adapter: string,
  choices: ChoiceTable,
  fs: PlatformFs = denoFs,
): void {
  fs.writeAtomic(`${runDir}/${RUN_CHOICES_FILE}`, serializeTuneCache(adapter, choices));
}

/**
 * The choices a run folder recorded, for a resumed run to reuse (so it stays bit-identical);
 * null when there are none or they do not fit this adapter or kernels version (warned in one
 * line naming the file).
 */
export function loadRunChoices(
  runDir: string,
  adapter: string,
  warn: (message: string) => void = (m) => console.warn(m),
  fs: PlatformFs = denoFs,
): ChoiceTable | null {
  const path = `${runDir}/${RUN_CHOICES_FILE}`;
  let text: string | null;
  try {
    text = fs.readText(path);
  } catch (e) {
    warn(`${path}: ${(e as Error).message}; ignored`);
    return null;
  }
  if (text === null) return null;
  if (text.length > MAX_FILE_BYTES) {
    warn(`${path}: larger than ${MAX_FILE_BYTES >> 20} MiB; ignored`);
    return null;
  }
  return parseTuneCache(text, adapter, (m) => warn(`${path}: ${m}`));
}
