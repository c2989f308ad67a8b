/**
 * Resuming a run from a checkpoint: weights, optimizer and scheduler state, the loader
 * position (epoch and, after an interruption, the batch within it), the callbacks' counts,
 * and the earlier metric records, so that the resumed run equals an uninterrupted one.
 *
 * @module
 */

import type { TrainConfig } from "./config.ts";
import {
  type EpochProgress,
  loadCheckpoint,
  writeCheckpoint,
  type WriteCheckpointOptions,
} from "./checkpoint.ts";
import type { CallbackState } from "./callbacks.ts";
import { type MetricRecord, parseJsonl } from "./loggers.ts";
import type { PlatformFs } from "../platform/fs.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { GradScalerState } from "../optim/grad_scaler.ts";

/** Where a resumed run continues, and what it carries over. */
export interface ResumePoint {
  /** The checkpoint's JSON state path. */
  path: string;
  /** Epoch to continue in. */
  epoch: number;
  /** Batch of that epoch to continue at (0 at an epoch boundary). */
  batch: number;
  /** Optimizer steps taken. */
  globalStep: number;
  /** Callback states. */
  callbacks: CallbackState;
  /** The checkpoint's run folder. */
  runDir: string;
  /** The interrupted epoch's metric state (a resume inside an epoch only). */
  epochProgress?: EpochProgress;
  /** The loss scaler's state of a "16-mixed" run, or null. */
  ampScaler: GradScalerState | null;
}

/** What `loadResume` restores into. */
export interface ResumeTarget {
  /** Copies tensors into parameters and buffers. */
  loadStateDict(dict: Map<string, Tensor>): void;
}

/** Restorable state (optimizer, scheduler). */
export interface Restorable {
  /** Restores a state. */
  // deno-lint-ignore no-explicit-any
  loadStateDict(state: any): void;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 8).join(", ");
  return names.length > 8 ? `${shown}, …` : shown;
}

/**
 * Loads checkpoint `path` into the model, optimizer and scheduler and returns where to
 * continue. Checks first that it fits: the same model and the same number of classes as
 * `classNames` (the data's), with errors in the user's terms.
 */
export async function loadResume(
  path: string,
  cfg: TrainConfig,
  classNames: readonly string[],
  into: { model: ResumeTarget; optimizer: Restorable; scheduler: Restorable },
): Promise<ResumePoint> {
  const ck = await loadCheckpoint(path);
  try {
    const s = ck.state;
    const cfgModel = (s.config as TrainConfig | undefined)?.model?.name;
    if (cfgModel && cfgModel !== cfg.model.name) {
      throw new Error(
        `resume: checkpoint "${ck.path}" is a ${cfgModel}, expected ${cfg.model.name} (model.name)`,
      );
    }
    const theirs = s.classNames ?? [];
    if (theirs.length && theirs.length !== classNames.length) {
      throw new Error(
        `resume: checkpoint "${ck.path}" has ${theirs.length} classes (${
          listNames(theirs)
        }), the data has ${classNames.length} (${
          listNames(classNames)
        }); resume needs the same classes (or start a new run)`,
      );
    }
    into.model.loadStateDict(ck.weights);
    if (ck.optimizer) into.optimizer.loadStateDict(ck.optimizer);
    into.scheduler.loadStateDict(s.scheduler);
    return {
      path: ck.path,
      epoch: s.rng.nextEpoch,
      batch: s.rng.nextBatch ?? 0,
      globalStep: s.globalStep,
      callbacks: s.callbacks as CallbackState,
      runDir: ck.path.replace(/\/checkpoints\/[^/]+$/, ""),
      epochProgress: s.rng.nextBatch ? checkEpochProgress(s.epochProgress, ck.path) : undefined,
      ampScaler: s.ampScaler ?? null,
    };
  } finally {
    ck.dispose();
  }
}

/** Checks a checkpoint's `epochProgress` (absent in older checkpoints: then undefined). */
function checkEpochProgress(p: unknown, path: string): EpochProgress | undefined {
  if (p === undefined) return undefined;
  const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const e = p as EpochProgress;
  const ok = typeof e === "object" && e !== null && typeof e.sink?.sums === "object" &&
    e.sink.sums !== null &&
    Object.values(e.sink.sums).every((a) => isNum(a?.sum) && isNum(a?.weight)) &&
    typeof e.model === "object" && e.model !== null &&
    Object.values(e.model).every((v) => Array.isArray(v) && v.every(isNum));
  if (!ok) {
    throw new Error(
      `resume: checkpoint "${path}" epochProgress: expected {sink: {sums}, model} of finite numbers`,
    );
  }
  return e;
}

/** The earlier run's metric records up to the resume point (test records excluded). */
export function earlierRecords(r: ResumePoint, fs: PlatformFs): MetricRecord[] {
  const text = fs.readText(`${r.runDir}/metrics.jsonl`);
  if (text === null) return [];
  return parseJsonl(text).filter((x) =>
    (x.epoch < r.epoch || (x.epoch === r.epoch && x.step <= r.globalStep)) &&
    !Object.keys(x.metrics).some((k) => k.startsWith("test/"))
  );
}

/**
 * Brings the earlier run's best checkpoint into `ckptDir` (a new run folder) with this
 * run's config; returns its path, or null when there is none.
 */
export async function carryBest(
  r: ResumePoint,
  runDir: string,
  cfg: TrainConfig,
  write?: WriteCheckpointOptions,
): Promise<string | null> {
  const bestPath = r.callbacks.bestPath;
  if (!bestPath) return null;
  if (r.runDir === runDir) return bestPath;
  try {
    const bk = await loadCheckpoint(`${r.runDir}/checkpoints/best.json`);
    try {
      return await writeCheckpoint(`${runDir}/checkpoints/best`, {
        stateDict: bk.weights,
        optimizer: bk.optimizer,
        state: { ...bk.state, config: cfg },
      }, write);
    } finally {
      bk.dispose();
    }
  } catch {
    return null; // best is re-created by the next improvement
  }
}
