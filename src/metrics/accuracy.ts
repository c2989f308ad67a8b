/**
 * `MulticlassAccuracy`: torchmetrics' multiclass accuracy with counters kept on the GPU.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "../kernels/elementwise.ts";
import { topkUpdate } from "../kernels/topk.ts";
import { fmt } from "../kernels/shape.ts";

/** How per-class values are combined. */
export type AccuracyAverage = "micro" | "macro" | "none";

/** Options of `MulticlassAccuracy`. */
export interface MulticlassAccuracyOptions {
  /** Number of classes C. */
  numClasses: number;
  /** A sample counts as correct when its target is among the top-k logits (default 1). */
  topK?: number;
  /** "micro" (default here), "macro" or "none" (per class). */
  average?: AccuracyAverage;
}

/**
 * Multiclass top-k accuracy, global over every `update()` since the last `reset()` (not a
 * mean of batch values). Per-class hits and support accumulate in i32 counters on the GPU;
 * `compute()` reads them back once.
 *
 * - micro: hits / samples.
 * - none: top-k recall of each class, 0 for a class with no target samples (torchmetrics).
 * - macro: the mean of per-class recall over the classes that have target samples
 *   (torchmetrics' macro differs between versions; this is our definition).
 *
 * NOTE: unlike torchmetrics, `average` defaults to "micro" (the seed always passes it).
 * Targets outside [0, C) are skipped.
 */
export class MulticlassAccuracy {
  /** Number of classes. */
  readonly numClasses: number;
  /** k of top-k. */
  readonly topK: number;
  /** Averaging mode. */
  readonly average: AccuracyAverage;
  #counts: Tensor | null;

  /** Allocates the counters (long-lived, freed by `dispose()`). */
  constructor(opts: MulticlassAccuracyOptions) {
    const { numClasses, topK = 1, average = "micro" } = opts;
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(
        `MulticlassAccuracy: numClasses must be an integer >= 1, got ${numClasses}`,
      );
    }
    if (!Number.isInteger(topK) || topK < 1 || topK > numClasses) {
      throw new RangeError(`MulticlassAccuracy: topK must be in [1, ${numClasses}], got ${topK}`);
    }
    if (!["micro", "macro", "none"].includes(average)) {
      throw new RangeError(
        `MulticlassAccuracy: average must be micro, macro or none, got "${average}"`,
      );
    }
    this.numClasses = numClasses;
    this.topK = topK;
    this.average = average;
    this.#counts = fillInPlace(Tensor.empty([2, numClasses], "i32"), 0).keep();
  }

  #live(): Tensor {
    if (!this.#counts) throw new Error("MulticlassAccuracy: used after dispose()");
    return this.#counts;
  }

  /** Adds a batch: logits f32 `[N, C]`, targets i32 `[N]` (GPU only, no readback). */
  update(logits: Tensor, targets: Tensor): void {
    if (logits.ndim !== 2 || logits.shape[1] !== this.numClasses) {
      throw new RangeError(
        `MulticlassAccuracy.update: logits must be [N, ${this.numClasses}], got ${
          fmt(logits.shape)
        }`,
      );
    }
    topkUpdate(logits, targets, { counts: this.#live(), k: this.topK });
  }

  /** The accuracy since the last reset: a number (micro, macro) or per-class values (none). */
  async compute(): Promise<number | Float32Array> {
    const c = this.numClasses;
    const counts = await this.#live().toArray();
    const per = new Float32Array(c);
    let hits = 0;
    let support = 0;
    let present = 0;
    let recallSum = 0;
    for (let i = 0; i < c; i++) {
      const h = counts[i];
      const s = counts[c + i];
      hits += h;
      support += s;
      if (s > 0) {
        per[i] = h / s;
        recallSum += h / s;
        present++;
      }
    }
    if (this.average === "none") return per;
    if (this.average === "macro") return present > 0 ? recallSum / present : 0;
    return support > 0 ? hits / support : 0;
  }

  /**
   * The counters since the last reset (hits per class, then support per class), read back:
   * what a mid-epoch checkpoint keeps so that a resumed epoch reports the whole epoch.
   */
  async stateDict(): Promise<number[]> {
    return [...(await this.#live().toArray())];
  }

  /** Restores counters saved by `stateDict()`. */
  loadStateDict(counts: readonly number[]): void {
    const c = this.numClasses;
    if (counts.length !== 2 * c || !counts.every((v) => Number.isInteger(v) && v >= 0)) {
      throw new RangeError(
        `MulticlassAccuracy.loadStateDict: expected ${
          2 * c
        } non-negative integer counts, got ${counts.length} values`,
      );
    }
    const next = Tensor.fromArray(Int32Array.from(counts), [2, c], { dtype: "i32" }).keep();
    this.#live().dispose();
    this.#counts = next;
  }

  /** Zeroes the counters (on the GPU). */
  reset(): void {
    fillInPlace(this.#live(), 0);
  }

  /** Frees the counters. */
  dispose(): void {
    this.#counts?.dispose();
    this.#counts = null;
  }
}
