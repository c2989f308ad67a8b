/**
 * Types shared by models and the trainer (`Batch` lives in `src/nn/batch.ts`).
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";

export type { Batch } from "../nn/batch.ts";

/** How a logged value is aggregated (Lightning's `self.log` flags). */
export interface LogOptions {
  /** Log the value at this step (default: true in training steps, false otherwise). */
  onStep?: boolean;
  /** Accumulate a batch-size-weighted mean over the epoch and log it at epoch end. */
  onEpoch?: boolean;
  /** Show in the progress bar. */
  progBar?: boolean;
  /** Weight of this value in the epoch mean (the batch size). */
  batchSize?: number;
}

/**
 * Where models send metrics; the trainer implements it. A `Tensor` value is a scalar on the
 * GPU, valid only until the current step's scope closes: a sink must copy or accumulate it
 * and must not read it back per step (each readback costs ~11 ms in Deno).
 */
export interface LogSink {
  /** Records one named value. */
  log(name: string, value: Tensor | number, options?: LogOptions): void;
}
