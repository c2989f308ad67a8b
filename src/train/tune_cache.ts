/**
 * The platform side of autotuning (`src/gpu/tune.ts` stays Deno-free): where the per-adapter
 * cache file lives, reading it (a corrupt one is ignored with a warning), writing it
 * atomically, the `CT_TUNE` switch, and the choice table a run records in its folder.
 *
 * @module
 */

import {
  type ChoiceTable,
  parseTuneCache,
  serializeTuneCache,
  tuningEnabled,
} from "../gpu/tune.ts";

/** File a run folder records its kernel choices in (a resumed run reads it back). */
export const RUN_CHOICES_FILE = "tune_choices.json";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env for it: behave as unset
  }
}

/** False when `CT_TUNE=0` (measured choice off, heuristics only). */
export function tuneWanted(): boolean {
  return env("CT_TUNE") !== "0";
}

/**
 * The user's cache folder for tuning tables: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
 * `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows, then `classifier-training/tune`.
 * Null when none can be found.
 */
export function tuneCacheDir(): string | null {
  const home = env("HOME");
  let base: string | undefined;
  if (Deno.build.os === "windows") base = env("LOCALAPPDATA");
  else if (Deno.build.os === "darwin") base = home && `${home}/Library/Caches`;
  else base = env("XDG_CACHE_HOME") || (home && `${home}/.cache`);
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
  let text: string;
  try {
    if (Deno.statSync(path).size > 4 << 20) {
      warn(`tune cache ${path}: larger than 4 MiB; ignored`);
      return {};
    }
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      warn(`tune cache ${path}: ${(e as Error).message}; ignored`);
    }
    return {};
  }
  return parseTuneCache(text, adapter, (m) => warn(`tune cache ${path}: ${m}`)) ?? {};
}

/** Writes `choices` for `adapter` into `dir` atomically (temporary file, then rename). */
export function saveTuneCache(dir: string, adapter: string, choices: ChoiceTable): string {
  Deno.mkdirSync(dir, { recursive: true });
  const path = `${dir}/${tuneCacheFileName(adapter)}`;
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, serializeTuneCache(adapter, choices));
  Deno.renameSync(tmp, path);
  return path;
}

/** Records the choices a run used in `runDir` (atomically); nothing when tuning is off. */
export function saveRunChoices(runDir: string, adapter: string, choices: ChoiceTable): void {
  if (!tuningEnabled()) return;
  const tmp = `${runDir}/${RUN_CHOICES_FILE}.tmp`;
  Deno.writeTextFileSync(tmp, serializeTuneCache(adapter, choices));
  Deno.renameSync(tmp, `${runDir}/${RUN_CHOICES_FILE}`);
}

/**
 * The choices a run folder recorded, for a resumed run to reuse (so it stays bit-identical);
 * null when there are none or they do not fit this adapter (warned).
 */
export function loadRunChoices(
  runDir: string,
  adapter: string,
  warn: (message: string) => void = (m) => console.warn(m),
): ChoiceTable | null {
  const path = `${runDir}/${RUN_CHOICES_FILE}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return null;
  }
  return parseTuneCache(text, adapter, (m) => warn(`${path}: ${m}`));
}
