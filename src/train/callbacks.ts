/**
 * Lightning's two callbacks: `ModelCheckpoint` (best and last checkpoints by a monitored
 * metric) and `EarlyStopping`. Their state is saved in each checkpoint's `callbacks`
 * record, so a resumed run continues their counts.
 *
 * @module
 */

import type { CheckpointConfig, EarlyStoppingConfig } from "./config.ts";
import {
  type CheckpointContents,
  serializeCheckpoint,
  type SerializedCheckpoint,
  writeCheckpoint,
  type WriteCheckpointOptions,
} from "./checkpoint.ts";
import { formatValue } from "./progress.ts";

/** The callback states as saved in a checkpoint (`state.callbacks`). */
export interface CallbackState {
  /** Best monitored value so far. */
  best?: number | null;
  /** Epoch of the best value. */
  bestEpoch?: number;
  /** JSON state path of the best checkpoint. */
  bestPath?: string | null;
  /** Best value of the early-stopping monitor. */
  esBest?: number | null;
  /** Validations without improvement. */
  esWait?: number;
}

/** Whether `v` improves on `best` by more than `minDelta` in `mode`. */
export function isBetter(
  v: number,
  best: number | null,
  mode: "max" | "min",
  minDelta = 0,
): boolean {
  if (!Number.isFinite(v)) return false;
  if (best === null) return true;
  return mode === "max" ? v > best + minDelta : v < best - minDelta;
}

/** The logged value of `key`; an error naming `option` when that metric was not logged. */
export function monitored(metrics: Record<string, number>, key: string, option: string): number {
  const v = metrics[key];
  if (v === undefined) {
    throw new Error(
      `${option}: expected one of the logged metrics (${
        Object.keys(metrics).join(", ")
      }), got "${key}"`,
    );
  }
  return v;
}

/** Saves `best` when the monitored metric improves and `last` after every validation. */
export class ModelCheckpoint {
  /** Best monitored value so far. */
  best: number | null = null;
  /** Epoch of the best value (-1: none). */
  bestEpoch: number = -1;
  /** JSON state path of the best checkpoint, or null. */
  bestPath: string | null = null;
  /** JSON state path of the last checkpoint written by this run, or null. */
  lastPath: string | null = null;
  readonly #cfg: CheckpointConfig;
  readonly #dir: string;
  readonly #write?: WriteCheckpointOptions;

  /** Writes into folder `dir` (created on the first write). */
  constructor(cfg: CheckpointConfig, dir: string, write?: WriteCheckpointOptions) {
    this.#cfg = cfg;
    this.#dir = dir;
    this.#write = write;
  }

  /** The monitored metric name. */
  get monitor(): string {
    return this.#cfg.monitor;
  }

  /** Restores the state saved in a checkpoint. */
  restore(s: CallbackState): void {
    this.best = s.best ?? null;
    this.bestEpoch = s.bestEpoch ?? -1;
  }

  /**
   * Updates the best value from an epoch's metrics; returns whether it improved. A missing
   * monitored metric is an error unless `required` is false (then nothing improves).
   */
  update(
    metrics: Record<string, number>,
    epoch: number,
    options: { required?: boolean } = {},
  ): boolean {
    if (options.required === false && !(this.#cfg.monitor in metrics)) return false;
    const v = monitored(metrics, this.#cfg.monitor, "checkpoint.monitor");
    const improved = isBetter(v, this.best, this.#cfg.mode);
    if (improved) {
      this.best = v;
      this.bestEpoch = epoch;
    }
    return improved;
  }

  /** Where `best` goes when `improved` (for the state saved with it). */
  nextBestPath(improved: boolean): string | null {
    return improved && this.#cfg.saveBest ? `${this.#dir}/best.json` : this.bestPath;
  }

  /** Writes `best` (when improved and enabled) and `last` (when enabled). */
  async save(contents: CheckpointContents, improved: boolean): Promise<void> {
    const both = improved && this.#cfg.saveBest && this.#cfg.saveLast;
    // `best` and `last` of one epoch hold the same tensors: read back and serialize once.
    const data = both ? await serializeCheckpoint(contents) : contents;
    try {
      if (improved && this.#cfg.saveBest) {
        this.bestPath = await writeCheckpoint(`${this.#dir}/best`, data, this.#write);
      }
      if (this.#cfg.saveLast) await this.saveLast(data);
    } finally {
      if ("release" in data) data.release();
    }
  }

  /** Writes `last` (also used on an interruption, whatever `saveLast` says). */
  async saveLast(contents: CheckpointContents | SerializedCheckpoint): Promise<void> {
    this.lastPath = await writeCheckpoint(`${this.#dir}/last`, contents, this.#write);
  }
}

/** Stops training when the monitored metric stops improving (Lightning's `EarlyStopping`). */
export class EarlyStopping {
  /** Best value so far. */
  best: number | null = null;
  /** Validations without improvement. */
  wait: number = 0;
  readonly #cfg: EarlyStoppingConfig;

  /** Creates the callback for a config section. */
  constructor(cfg: EarlyStoppingConfig) {
    this.#cfg = cfg;
  }

  /** Restores the state saved in a checkpoint. */
  restore(s: CallbackState): void {
    this.best = s.esBest ?? null;
    this.wait = s.esWait ?? 0;
  }

  /** Counts one validation; returns whether training should stop. */
  update(metrics: Record<string, number>): boolean {
    const c = this.#cfg;
    const v = monitored(metrics, c.monitor, "earlyStopping.monitor");
    if (isBetter(v, this.best, c.mode, c.minDelta)) {
      this.best = v;
      this.wait = 0;
      return false;
    }
    return ++this.wait >= c.patience;
  }

  /** Why it stopped, for the progress output. */
  message(): string {
    const c = this.#cfg;
    return `early stopping: ${c.monitor} did not improve by more than ${c.minDelta} for ${c.patience} validations (best ${
      formatValue(this.best ?? NaN)
    })`;
  }
}
