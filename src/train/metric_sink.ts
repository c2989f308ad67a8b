/**
 * The trainer's metric sink: what models' `log()` calls feed. Values stay on the GPU,
 * accumulated there, and are read back only when the loop asks (once per logging interval
 * and once per epoch): each readback costs ~11 ms in Deno.
 *
 * A model logs through a `LogSink` view that the loop hands it for the current hook
 * (`logger(stage, …)`): the view carries the stage's defaults (Lightning's: `onStep` in
 * training steps, `onEpoch` elsewhere) and whether this step's values are kept for a
 * step record. The sink itself has no mode to flip.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { readBackAll } from "../gpu/readback.ts";
import { binary, unary } from "../kernels/elementwise.ts";
import type { LogOptions, LogSink } from "../models/types.ts";

/** Which hook a value is logged from. */
export type Stage = "train" | "val" | "test" | "epochEnd";

interface Accum {
  sum: Tensor | null;
  host: number;
  weight: number;
  /** Kept for the NaN guard only, not reported as a metric. */
  hidden: boolean;
}

const GUARD_KEY = "\0loss";

/** The epoch accumulators as plain numbers: what a mid-epoch checkpoint keeps. */
export interface SinkEpochState {
  /** Weighted sum, total weight and whether it is the guard's hidden sum, per key. */
  sums: Record<string, { sum: number; weight: number; hidden: boolean }>;
  /** The key whose sum the NaN guard reads. */
  lossKey: string | null;
}

/** GPU accumulation of logged values, read back on request. */
export class MetricSink {
  /** Names shown in the progress bar (`progBar: true`). */
  readonly progBar: Set<string> = new Set<string>();
  #step = new Map<string, Tensor | number>();
  #epoch = new Map<string, Accum>();
  /** Tensors logged on-epoch since the last `trackLoss`, with their accumulator key. */
  #logged = new Map<Tensor, string>();
  #lossKey: string | null = null;

  /**
   * The `LogSink` a model logs to from a hook of `stage`. With `captureStep`, training
   * step values are kept (cloned) for the next `readStep`; otherwise only the epoch
   * accumulators see them, so most steps cost no copy.
   */
  logger(stage: Stage, options: { captureStep?: boolean } = {}): LogSink {
    const capture = stage === "train" && (options.captureStep ?? false);
    return {
      log: (name: string, value: Tensor | number, o: LogOptions = {}) =>
        this.#log(stage === "train", capture, name, value, o),
    };
  }

  #log(inTrain: boolean, capture: boolean, name: string, value: Tensor | number, o: LogOptions) {
    const onStep = o.onStep ?? inTrain;
    const onEpoch = o.onEpoch ?? !inTrain;
    const both = onStep && onEpoch;
    if (onStep && capture) {
      const key = both ? `${name}_step` : name;
      const old = this.#step.get(key);
      if (old instanceof Tensor) old.dispose();
      this.#step.set(
        key,
        typeof value === "number" ? value : unary("affine", value.view([1]), 1, 0).keep(),
      );
      if (o.progBar) this.progBar.add(key);
    }
    if (onEpoch) {
      const key = both ? `${name}_epoch` : name;
      this.#accumulate(key, value, o.batchSize ?? 1, false);
      if (value instanceof Tensor && inTrain) this.#logged.set(value, key);
      if (o.progBar) this.progBar.add(key);
    }
  }

  #accumulate(key: string, value: Tensor | number, w: number, hidden: boolean): void {
    let a = this.#epoch.get(key);
    if (!a) {
      a = { sum: null, host: 0, weight: 0, hidden };
      this.#epoch.set(key, a);
    }
    if (typeof value === "number") a.host += value * w;
    else {
      const scaled = unary("affine", value.size === 1 ? value.view([1]) : value, w, 0);
      if (a.sum) {
        const next = binary("add", a.sum, scaled);
        a.sum.dispose();
        scaled.dispose();
        a.sum = next.keep();
      } else a.sum = scaled.keep();
    }
    a.weight += w;
  }

  /**
   * Tells the sink which tensor the training step returned as its loss, for the NaN
   * guard. When the model logged that very tensor on-epoch, its accumulator serves the
   * guard (nothing is added); otherwise the loss goes into a hidden accumulator.
   */
  trackLoss(loss: Tensor): void {
    const key = this.#logged.get(loss);
    this.#logged.clear();
    if (key !== undefined) this.#lossKey = key;
    else {
      this.#accumulate(GUARD_KEY, loss, 1, true);
      this.#lossKey = GUARD_KEY;
    }
  }

  #lossSum(): Tensor[] {
    const a = this.#lossKey === null ? undefined : this.#epoch.get(this.#lossKey);
    return a?.sum ? [a.sum] : [];
  }

  /**
   * Reads back the kept step values and the epoch's loss sum so far (one readback), and
   * clears the step values. `lossSum` is undefined when no loss was tracked.
   */
  async readStep(): Promise<{ values: Record<string, number>; lossSum?: number }> {
    const entries = [...this.#step];
    const tensors = entries.filter(([, v]) => v instanceof Tensor).map(([, v]) => v as Tensor);
    const guard = this.#lossSum();
    const host = await readBackAll([...tensors, ...guard]);
    const values: Record<string, number> = {};
    let ti = 0;
    for (const [k, v] of entries) values[k] = v instanceof Tensor ? host[ti++][0] : v;
    for (const t of tensors) t.dispose();
    this.#step.clear();
    return { values, lossSum: guard.length ? host[tensors.length][0] : undefined };
  }

  /**
   * Reads back the epoch means (one readback) and clears the accumulators. `lossSum` is
   * the epoch's training-loss sum (for the NaN guard), undefined when none was tracked.
   */
  async readEpoch(): Promise<{ metrics: Record<string, number>; lossSum?: number }> {
    const metrics: Record<string, number> = {};
    let lossSum: number | undefined;
    for (const [k, a, total] of await this.#totals()) {
      if (k === this.#lossKey) lossSum = total;
      if (!a.hidden) metrics[k] = total / (a.weight || 1);
    }
    this.clearEpoch();
    return { metrics, lossSum };
  }

  /** Each accumulator with its weighted sum so far (GPU part read back in one readback). */
  async #totals(): Promise<[string, Accum, number][]> {
    const entries = [...this.#epoch];
    const host = await readBackAll(entries.filter(([, a]) => a.sum).map(([, a]) => a.sum!));
    let ti = 0;
    return entries.map(([k, a]) => [k, a, (a.sum ? host[ti++][0] : 0) + a.host]);
  }

  /**
   * The epoch accumulators so far as plain numbers (one readback), for a mid-epoch
   * checkpoint; `loadEpochState` puts them back so the resumed epoch's means cover it whole.
   */
  async epochState(): Promise<SinkEpochState> {
    const sums: SinkEpochState["sums"] = {};
    for (const [k, a, total] of await this.#totals()) {
      sums[k] = { sum: total, weight: a.weight, hidden: a.hidden };
    }
    return { sums, lossKey: this.#lossKey };
  }

  /** Restores `epochState()` into empty accumulators (the sums continue on the host side). */
  loadEpochState(state: SinkEpochState): void {
    this.clearEpoch();
    for (const [k, a] of Object.entries(state.sums)) {
      this.#epoch.set(k, { sum: null, host: a.sum, weight: a.weight, hidden: a.hidden });
    }
    this.#lossKey = state.lossKey;
  }

  /** Drops the epoch accumulators. */
  clearEpoch(): void {
    for (const a of this.#epoch.values()) a.sum?.dispose();
    this.#epoch.clear();
    this.#logged.clear();
    this.#lossKey = null;
  }

  /** Frees every kept tensor. */
  dispose(): void {
    this.clearEpoch();
    for (const v of this.#step.values()) if (v instanceof Tensor) v.dispose();
    this.#step.clear();
  }
}
