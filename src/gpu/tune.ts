/**
 * Measured kernel choice (autotuning). A kernel family (say `matmul`) registers its
 * candidate variants and how to run one on a representative shape; a kernel asks
 * `tunedChoice(family, dims, fallback)` each time it runs. With tuning off (the default,
 * so tests see the heuristics) the fallback is returned. With tuning on, the choice comes
 * from a table keyed by family and shape bucket; a bucket not in the table gets the
 * fallback and is remembered, and `tunePending()` (after a warm-up step, or ahead of time
 * in `deno task tune`) times every candidate there once and keeps the fastest. A training run
 * then freezes the table (`freezeTuning`): its choices never change mid-run.
 *
 * The table is plain JSON (`ChoiceTable`): a cache file per adapter holds it between
 * processes (`serializeTuneCache` / `parseTuneCache`; reading and writing files is the
 * caller's, behind the platform seam), and a run records the table it used so a resumed run
 * passes it back to `enableTuning` and makes the same choices.
 *
 * @module
 */

import type { AdapterFacts } from "./device.ts";
import { sync } from "./dispatch.ts";

/**
 * Version of the kernels' candidates and tunables. Bump it whenever a kernel variant, its
 * tile overrides or a family's bucketing changes: cached tables of older versions are
 * then ignored.
 */
export const KERNELS_VERSION = 5;

/**
 * Chosen candidate per `family/bucket` key, e.g. `{ "matmul/1024x1024x1024x1": "register",
 * "conv2d/…": "igemm:64x64_4x4" }`.
 */
export type ChoiceTable = Record<string, string>;

/**
 * Separates a candidate's base from its refinement (`refinedCandidate`): `igemm:64x64_4x4` is
 * the `igemm` kernel with one of its tile shapes.
 */
export const REFINEMENT_MARK = ":";

/** The name of `base` refined by `detail` (say a tile shape): `base:detail`. */
export function refinedCandidate(base: string, detail: string): string {
  if (base.includes(REFINEMENT_MARK)) {
    throw new RangeError(`refinedCandidate: "${REFINEMENT_MARK}" in base ${base}`);
  }
  return `${base}${REFINEMENT_MARK}${detail}`;
}

/** A candidate name's base and refinement (`undefined` for a plain candidate). */
export function splitCandidate(name: string): { base: string; detail?: string } {
  const i = name.indexOf(REFINEMENT_MARK);
  return i < 0 ? { base: name } : { base: name.slice(0, i), detail: name.slice(i + 1) };
}

/** A kernel family the tuner can time. */
export interface TuneFamily {
  /**
   * Candidate names, e.g. `["register", "tiled", "tiled:64x64_4x4"]`. A refined one
   * (`base:detail`, see `refinedCandidate`) comes after its base, which the tuner times
   * first: where the base is off the best (pruned, failed, or over `REFINE_FACTOR` times the
   * best so far), its refinements are left out unrun. A workgroup-tiled kernel 100× too slow
   * on a CPU adapter then costs one probe, not one per tile shape.
   */
  candidates: readonly string[];
  /**
   * Candidates that can run at bucket `dims` (default: all). A candidate with a size cap,
   * say, leaves itself out where it cannot run.
   */
  candidatesFor?(dims: readonly number[]): readonly string[];
  /**
   * The bucket of a shape (default `shapeBucket`: every dim up to a power of two). A family
   * whose dims include kernel sizes or strides keeps those exact.
   */
  bucket?(dims: readonly number[]): number[];
  /**
   * Prepares one run of `candidate` at bucket `dims` (allocating inputs once): `run`
   * records the dispatches, `dispose` frees what was allocated.
   */
  bench(dims: readonly number[], candidate: string): { run(): void; dispose(): void };
  /**
   * A smaller shape for `dims` (say batch 1) and how much more work `dims` is (`scale`): every
   * candidate after the first runs there once first, and one whose time × `scale` is over
   * `PRUNE_FACTOR` times the best so far is left out without running at full size. Bounds the
   * cost of a hopeless candidate (a workgroup-tiled GEMM on a CPU adapter runs 100× slower
   * than the register kernels) to a small run.
   */
  probe?(dims: readonly number[]): { dims: number[]; scale: number } | undefined;
}

/**
 * A candidate estimated (from its probe) this many times slower than the best is not timed
 * at full size. Generous: a GPU runs small shapes less efficiently, so estimates run high.
 */
export const PRUNE_FACTOR = 4;

/**
 * Refinements (tile shapes, say) of a base candidate timed this many times slower than the best
 * so far are left out unrun: tile shapes tune a kernel that competes, they are not searched
 * through for one that another kernel already beats by half again. On a GPU the base is
 * usually the fallback and the best, so every tile shape is timed; on lavapipe, where the
 * register kernels lead, this halves the tile shapes timed (and compiled) in warm-up.
 */
export const REFINE_FACTOR = 1.5;

const families = new Map<string, TuneFamily>();
let table: Map<string, string> | null = null;
/** Frozen: the table is final (a run past its warm-up, or a resumed one); nothing is noted. */
let frozen = false;
/** Inside `tuneBucket`: the shapes a candidate's bench runs (im2col's matmul, say) are not the model's. */
let measuring = false;
const pending = new Map<string, { family: string; dims: number[]; fallback: string }>();

/** Registers (or replaces) a family; kernel modules call this once at load. */
export function registerTuneFamily(name: string, family: TuneFamily): void {
  if (name.includes("/")) throw new RangeError(`registerTuneFamily: "/" in family name ${name}`);
  families.set(name, family);
}

/** Names of the registered families. */
export function tuneFamilies(): string[] {
  return [...families.keys()];
}

/**
 * The bucket of a shape: each dim rounded up to a power of two, so shapes that differ a
 * little share one measurement. Returns the bucket's dims.
 */
export function shapeBucket(dims: readonly number[]): number[] {
  return dims.map((d) => (d <= 1 ? 1 : 2 ** Math.ceil(Math.log2(d))));
}

function keyOf(family: string, bucket: readonly number[]): string {
  return `${family}/${bucket.join("x")}`;
}

/**
 * The candidate to run for `family` at shape `dims`: the tuned one when tuning is on and
 * the bucket was measured, else `fallback` (the heuristic), noting the bucket for
 * `tunePending()`.
 */
export function tunedChoice<T extends string>(
  family: string,
  dims: readonly number[],
  fallback: T,
): T {
  if (!table) return fallback;
  const fam = families.get(family);
  const bucket = fam?.bucket?.(dims) ?? shapeBucket(dims);
  const key = keyOf(family, bucket);
  const c = table.get(key);
  if (c !== undefined && fam?.candidates.includes(c)) return c as T;
  // The first shape seen stands for its bucket: the fallback's pipelines for it exist already.
  if (fam && !frozen && !measuring && !pending.has(key)) {
    pending.set(key, { family, dims: [...dims], fallback });
  }
  return fallback;
}

/** Options of `enableTuning`. */
export interface EnableTuningOptions {
  /**
   * Start frozen (see `freezeTuning`): a resumed run replays its recorded table exactly,
   * buckets missing from it keep the fallback they had.
   */
  frozen?: boolean;
}

/**
 * Turns tuning on, starting from `choices` (a cache file's table, or a resumed run's, which
 * then makes the same choices). Entries naming unknown candidates are ignored at lookup.
 */
export function enableTuning(choices: ChoiceTable = {}, opts: EnableTuningOptions = {}): void {
  table = new Map(Object.entries(choices));
  pending.clear();
  frozen = opts.frozen ?? false;
}

/**
 * Makes the table final: buckets seen from now on keep their fallback and are not noted for
 * `tunePending()`. A run freezes after its warm-up tuning, so its choices never change
 * mid-run and the table it records is the whole story (a resume replays it bit-identically).
 */
export function freezeTuning(): void {
  frozen = true;
  pending.clear();
}

/** Turns tuning off: every kernel uses its heuristic again. */
export function disableTuning(): void {
  table = null;
  frozen = false;
  pending.clear();
}

/** True between `enableTuning()` and `disableTuning()`. */
export function tuningEnabled(): boolean {
  return table !== null;
}

/** The choices made so far (a copy), to record in a run folder or a cache file. */
export function choiceTable(): ChoiceTable {
  return table ? Object.fromEntries([...table].sort(([a], [b]) => a.localeCompare(b))) : {};
}

/** `family/bucket` keys that ran with the fallback because they were not measured yet. */
export function pendingBuckets(): string[] {
  return [...pending.keys()];
}

/** One measurement of `tuneBucket`. */
export interface TuneResult {
  /** `family/bucket` key. */
  key: string;
  /** The fastest candidate, now in the table. */
  choice: string;
  /** Best milliseconds per run of each candidate timed. */
  ms: Record<string, number>;
  /** Candidates that failed to run, with the error. */
  failures: string[];
  /** Candidates left out at the probe shape, with their estimated milliseconds at `dims`. */
  pruned: Record<string, number>;
}

/** Options of `tuneBucket` and `tunePending`. */
export interface TuneOptions {
  /** Timed runs per candidate after one untimed (compiling) run; default 3. */
  reps?: number;
  /** Clock in milliseconds; default `performance.now`. */
  now?: () => number;
  /**
   * `tunePending` only: buckets measured per family at most (default `MAX_BUCKETS_PER_FAMILY`),
   * in the order they were first seen; the rest keep their fallback. Bounds the warm-up time.
   */
  maxPerFamily?: number;
  /**
   * `tunePending` only: no bucket is started once this many milliseconds (of `now`) have
   * passed; the rest stay pending. Bounds the warm-up on slow adapters.
   */
  budgetMs?: number;
  /** `tuneBucket` only: the candidate to time first (the fallback that ran; a fast start). */
  first?: string;
}

/** Default of `TuneOptions.maxPerFamily`. */
export const MAX_BUCKETS_PER_FAMILY = 32;

/**
 * Times every candidate of `family` at shape `dims`, which stands for its bucket (one untimed
 * run, then the best of `reps` synced runs; the probe and early stops above prune), and
 * stores the fastest for the bucket in the table. Tuning must be on.
 */
export async function tuneBucket(
  family: string,
  dims: readonly number[],
  opts: TuneOptions = {},
): Promise<TuneResult> {
  if (!table) throw new Error("tuneBucket: tuning is off; call enableTuning() first");
  const fam = families.get(family);
  if (!fam) {
    throw new RangeError(
      `tuneBucket: unknown family ${family}, expected one of ${tuneFamilies().join(", ")}`,
    );
  }
  const bucket = fam.bucket?.(dims) ?? shapeBucket(dims);
  const key = keyOf(family, bucket);
  const now = opts.now ?? (() => performance.now());
  const reps = opts.reps ?? 3;
  const ms: Record<string, number> = {};
  const pruned: Record<string, number> = {};
  const candidates = fam.candidatesFor?.(bucket) ?? fam.candidates;
  if (candidates.length === 0) throw new RangeError(`tuneBucket: ${key} has no candidate`);
  const order = opts.first && candidates.includes(opts.first)
    ? [opts.first, ...candidates.filter((c) => c !== opts.first)]
    : candidates;
  const probe = fam.probe?.(dims);
  const failures: string[] = [];
  /**
   * One untimed (compiling) run, then up to `runs` synced timed ones; the best ms. A run over
   * `stopAbove` ends it (the untimed one too: usually the probe compiled the pipelines).
   */
  const time = async (d: readonly number[], c: string, runs: number, stopAbove = Infinity) => {
    const b = fam.bench(d, c);
    try {
      const t = now();
      b.run();
      await sync();
      const first = now() - t;
      if (first > stopAbove) return first;
      let best = Infinity;
      for (let i = 0; i < runs; i++) {
        const t0 = now();
        b.run();
        await sync();
        best = Math.min(best, now() - t0);
        if (best > stopAbove) break;
      }
      return best;
    } finally {
      b.dispose();
    }
  };
  measuring = true;
  const failed = new Set<string>();
  for (const c of order) {
    const best = Math.min(Infinity, ...Object.values(ms));
    const { base, detail } = splitCandidate(c);
    if (detail !== undefined && base !== c && candidates.includes(base)) {
      // The base went first (candidate order): its refinements share its fate.
      const baseEstimate = pruned[base] ?? (failed.has(base) ? Infinity : ms[base]);
      if (baseEstimate !== undefined && baseEstimate > REFINE_FACTOR * best) {
        pruned[c] = baseEstimate;
        continue;
      }
    }
    // A candidate that fails here (a device limit, say) is left out, not fatal.
    try {
      if (probe && best < Infinity) {
        const estimate = (await time(probe.dims, c, 1)) * probe.scale;
        if (estimate > PRUNE_FACTOR * best) {
          pruned[c] = estimate;
          continue;
        }
      }
      // Further runs stop once one shows the candidate cannot win.
      ms[c] = await time(dims, c, reps, 2 * best);
    } catch (e) {
      failed.add(c);
      failures.push(`${c}: ${(e as Error).message}`);
    }
  }
  measuring = false;
  const timed = candidates.filter((c) => c in ms);
  if (timed.length === 0) {
    pending.delete(key);
    throw new Error(`tuneBucket: every candidate of ${key} failed (${failures.join("; ")})`);
  }
  const choice = timed.reduce((a, c) => (ms[c] < ms[a] ? c : a));
  table.set(key, choice);
  pending.delete(key);
  return { key, choice, ms, failures, pruned };
}

/**
 * Measures the buckets that ran with a fallback since tuning was enabled, in the order they
 * were seen (at most `maxPerFamily` per family and within `budgetMs`; the others stay
 * pending). Nothing when frozen.
 */
export async function tunePending(opts: TuneOptions = {}): Promise<TuneResult[]> {
  const out: TuneResult[] = [];
  const max = opts.maxPerFamily ?? MAX_BUCKETS_PER_FAMILY;
  const perFamily = new Map<string, number>();
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  for (const { family, dims, fallback } of [...pending.values()]) {
    if (now() - t0 >= (opts.budgetMs ?? Infinity)) break;
    const n = perFamily.get(family) ?? 0;
    if (n >= max) continue;
    perFamily.set(family, n + 1);
    out.push(await tuneBucket(family, dims, { ...opts, first: fallback }));
  }
  return out;
}

/** The identity a cache file belongs to: vendor, architecture, device and driver description. */
export function adapterIdentity(a: AdapterFacts): string {
  return [a.vendor, a.architecture, a.device ?? "", a.description].join(" | ");
}

const FORMAT = "classifier-training-tune";
/** Entries a cache file may hold; a larger one is treated as corrupt. */
const MAX_ENTRIES = 10_000;

/** A cache file's text for `choices` measured on `adapter`. */
export function serializeTuneCache(adapter: string, choices: ChoiceTable): string {
  return JSON.stringify(
    { format: FORMAT, kernelsVersion: KERNELS_VERSION, adapter, choices },
    null,
    2,
  ) + "\n";
}

/**
 * The table in a cache file's text, or null (with the reason in `warn`) when it is corrupt,
 * from another adapter, or from another kernels version.
 */
export function parseTuneCache(
  text: string,
  adapter: string,
  warn: (message: string) => void = () => {},
): ChoiceTable | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    warn(`not JSON (${(e as Error).message}); ignored`);
    return null;
  }
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || o.format !== FORMAT) {
    warn(`expected an object with format "${FORMAT}"; ignored`);
    return null;
  }
  if (o.kernelsVersion !== KERNELS_VERSION) {
    warn(`kernelsVersion ${o.kernelsVersion}, expected ${KERNELS_VERSION}; ignored`);
    return null;
  }
  if (o.adapter !== adapter) {
    warn(`adapter "${o.adapter}", expected "${adapter}"; ignored`);
    return null;
  }
  const c = o.choices as Record<string, unknown>;
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    warn(`choices: expected an object of strings; ignored`);
    return null;
  }
  const entries = Object.entries(c);
  if (entries.length > MAX_ENTRIES) {
    warn(`choices: ${entries.length} entries, expected at most ${MAX_ENTRIES}; ignored`);
    return null;
  }
  for (const [k, val] of entries) {
    if (typeof val !== "string" || k.length > 200 || val.length > 100) {
      warn(`choices["${k.slice(0, 60)}"]: expected a short string; ignored`);
      return null;
    }
  }
  return Object.fromEntries(entries) as ChoiceTable;
}
