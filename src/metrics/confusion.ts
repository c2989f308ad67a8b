/**
 * `ConfusionMatrix` with its counts kept on the GPU.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "../kernels/elementwise.ts";
import { confusionUpdate } from "../kernels/confusion.ts";
import { fmt } from "../kernels/shape.ts";

/** Options of `ConfusionMatrix`. */
export interface ConfusionMatrixOptions {
  /** Number of classes C. */
  numClasses: number;
}

/**
 * A `[C, C]` confusion matrix (rows = target, columns = argmax prediction, the lower class
 * index on ties), accumulated on the GPU over every `update()` since `reset()`. Targets
 * outside [0, C) are skipped.
 */
export class ConfusionMatrix {
  /** Number of classes. */
  readonly numClasses: number;
  #counts: Tensor | null;

  /** Allocates the counts (long-lived, freed by `dispose()`). */
  constructor(opts: ConfusionMatrixOptions) {
    const c = opts.numClasses;
    if (!Number.isInteger(c) || c < 1) {
      throw new RangeError(`ConfusionMatrix: numClasses must be an integer >= 1, got ${c}`);
    }
    this.numClasses = c;
    this.#counts = fillInPlace(Tensor.empty([c, c], "i32"), 0).keep();
  }

  #live(): Tensor {
    if (!this.#counts) throw new Error("ConfusionMatrix: used after dispose()");
    return this.#counts;
  }

  /** Adds a batch: logits f32 `[N, C]`, targets i32 `[N]` (GPU only, no readback). */
  update(logits: Tensor, targets: Tensor): void {
    if (logits.ndim !== 2 || logits.shape[1] !== this.numClasses) {
      throw new RangeError(
        `ConfusionMatrix.update: logits must be [N, ${this.numClasses}], got ${fmt(logits.shape)}`,
      );
    }
    confusionUpdate(logits, targets, { counts: this.#live() });
  }

  /** The counts since the last reset, `m[target][prediction]` (one readback). */
  async compute(): Promise<number[][]> {
    const c = this.numClasses;
    const a = await this.#live().toArray();
    return Array.from({ length: c }, (_, i) => Array.from(a.subarray(i * c, (i + 1) * c)));
  }

  /** Zeroes the counts (on the GPU). */
  reset(): void {
    fillInPlace(this.#live(), 0);
  }

  /** Frees the counts. */
  dispose(): void {
    this.#counts?.dispose();
    this.#counts = null;
  }
}
