/**
 * Measured kernel choice during a training run (the trainer's hook into `src/gpu/tune.ts`).
 *
 * - A fresh run starts from the per-adapter cache (`tune_cache.ts`), lets its first optimizer
 *   step run (buckets not in the table use the heuristic and are noted), then times the
 *   candidates of the noted buckets, freezes the table, saves it to the cache and records it
 *   in the run folder (`tuning.json`). Tuning after the first step rather than before it costs
 *   no extra pass: the step itself shows which shapes occur, forward, backward and optimizer.
 * - A resumed run replays the table recorded in the folder it resumes from, frozen (no
 *   re-tuning), so it makes exactly the choices the original run made after its first step,
 *   and every checkpoint is written after that: resume stays bit-identical. A record from
 *   another adapter or kernels version is warned about and the run tunes afresh; a folder
 *   without a record ran on the heuristics, so the resumed run does too.
 * - Off (heuristics only) with `trainer.tune: false`, `CT_TUNE=0`, or in a browser.
 *
 * @module
 */

import { gpu } from "../gpu/device.ts";
import {
  adapterIdentity,
  choiceTable,
  disableTuning,
  freezeTuning,
  pendingBuckets,
  tunePending,
} from "../gpu/tune.ts";
import { enableKernelTuning } from "../kernels/tuning.ts";
import type { PlatformFs } from "../platform/fs.ts";
import { host } from "../platform/host.ts";
import {
  loadRunChoices,
  loadTuneCache,
  RUN_CHOICES_FILE,
  saveRunChoices,
  saveTuneCache,
  tuneCacheDir,
  tuneWanted,
} from "./tune_cache.ts";

/** What `startRunTuning` needs. */
export interface RunTuningOptions {
  /** `trainer.tune`. */
  enabled: boolean;
  /** The run folder (gets `tuning.json`). */
  runDir: string;
  /** The folder of the checkpoint a resumed run continues from; null for a fresh run. */
  resumeDir: string | null;
  /** File access of the run folder. */
  fs: PlatformFs;
  /** Where messages and one-line warnings go. */
  message: (text: string) => void;
}

/** A run's tuning: `afterFirstStep()` once, `end()` when the run ends. */
export interface RunTuning {
  /** Whether `afterFirstStep()` still has work (a fresh run with tuning on). */
  readonly due: boolean;
  /** Times the noted buckets, freezes the table, saves cache and record. */
  afterFirstStep(): Promise<void>;
  /** Turns tuning off again (the table is global; later runs in this process start clean). */
  end(): void;
}

/** Timed runs per candidate during warm-up (best of): two keep the warm-up short. */
const WARMUP_REPS = 2;
/**
 * Warm-up tuning starts no bucket after this many milliseconds; the rest keep the heuristic in
 * this run and are tuned by the next one (the cache accumulates), or by `deno task tune`. On a
 * GPU every bucket fits; on lavapipe a ResNet-18 step has ~50 buckets of 0.1–1 s each.
 */
export const WARMUP_BUDGET_MS = 15_000;

/** Settings of warm-up tuning (tests raise the budget so a loaded machine tunes every bucket). */
export const warmupTuning: { budgetMs: number } = { budgetMs: WARMUP_BUDGET_MS };

const OFF: RunTuning = { due: false, afterFirstStep: () => Promise.resolve(), end: () => {} };

/** Whether tuning is on: `trainer.tune`, not `CT_TUNE=0`, and a Deno host. */
export function tuningWanted(enabled: boolean): boolean {
  return enabled && tuneWanted() && host.kind === "deno";
}

/** Sets up tuning for a run (see the module doc); call once the run folder exists. */
export function startRunTuning(o: RunTuningOptions): RunTuning {
  disableTuning();
  if (!tuningWanted(o.enabled)) return OFF;
  const adapter = adapterIdentity(gpu().adapter);
  const warn = (m: string) => o.message(`warning: ${m}`);
  if (o.resumeDir !== null) {
    let unusable = false;
    const recorded = loadRunChoices(o.resumeDir, adapter, (m) => {
      unusable = true;
      warn(`${m}; tuning afresh`);
    }, o.fs);
    if (recorded) {
      enableKernelTuning(recorded, { frozen: true });
      saveRunChoices(o.runDir, adapter, recorded, o.fs);
      o.message(
        `kernel choices: ${Object.keys(recorded).length} replayed from ${o.resumeDir}/` +
          `${RUN_CHOICES_FILE}`,
      );
      return { due: false, afterFirstStep: () => Promise.resolve(), end: disableTuning };
    }
    if (!unusable) {
      o.message(`kernel choices: heuristics (${o.resumeDir} has no ${RUN_CHOICES_FILE})`);
      return OFF;
    }
  }
  const cacheDir = tuneCacheDir();
  enableKernelTuning(cacheDir ? loadTuneCache(cacheDir, adapter, warn) : {});
  let due = true;
  return {
    get due() {
      return due;
    },
    async afterFirstStep() {
      if (!due) return;
      due = false;
      const t0 = performance.now();
      let tuned = 0;
      try {
        tuned = (await tunePending({ reps: WARMUP_REPS, budgetMs: warmupTuning.budgetMs })).length;
      } catch (e) {
        warn(`kernel tuning: ${(e as Error).message}; the rest keeps the heuristics`);
      }
      const left = pendingBuckets().length;
      freezeTuning();
      const choices = choiceTable();
      if (cacheDir && tuned > 0) {
        try {
          // Merge with what another process may have cached meanwhile (ours wins); a bad
          // file was warned about at the start.
          const theirs = loadTuneCache(cacheDir, adapter, () => {});
          saveTuneCache(cacheDir, adapter, { ...theirs, ...choices });
        } catch (e) {
          warn(`tune cache ${cacheDir}: ${(e as Error).message}; not saved`);
        }
      }
      saveRunChoices(o.runDir, adapter, choices, o.fs);
      o.message(
        `kernel choices: ${tuned} bucket(s) tuned in ${
          ((performance.now() - t0) / 1000).toFixed(2)
        } s, ${Object.keys(choices).length} in ${o.runDir}/${RUN_CHOICES_FILE}` +
          (left ? `; ${left} left on the heuristics (the next run tunes them)` : ""),
      );
    },
    end: disableTuning,
  };
}
