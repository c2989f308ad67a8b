/**
 * Differentiable losses.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import {
  crossEntropyBackward,
  crossEntropyForward,
  type CrossEntropyKernelOptions,
  type LossReduction,
} from "../kernels/cross_entropy.ts";
import { isGradEnabled, record } from "./tape.ts";

export type { LossReduction };

/** Options of `crossEntropy` (PyTorch's `CrossEntropyLoss` arguments). */
export interface CrossEntropyOptions {
  /** Per-class weights, f32 `[C]` (default: all ones, which equals no weights). */
  weight?: Tensor | null;
  /** Label smoothing ε in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** Rows whose target equals this are dropped (default −100). */
  ignoreIndex?: number;
  /** "mean" (default; divided by W = Σ w[y_i] over kept rows), "sum", or "none" (`[N]`). */
  reduction?: LossReduction;
}

/**
 * Softmax cross-entropy of `logits` f32 `[N, C]` against class indices `targets` i32 `[N]`,
 * exactly as PyTorch's `CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing)`:
 * `loss = (1−ε)·Σ w[y]·(−logp[y]) / W + (ε/C)·Σ_i Σ_c w[c]·(−logp[c]) / W`. Differentiable
 * with respect to the logits (one fused kernel each way).
 *
 * Targets must lie in `[0, C)` or equal `ignoreIndex`. They live on the GPU here, so they are not
 * checked (a check would cost a readback every step): a row with any other target gets a NaN
 * loss, which makes a "mean" or "sum" loss NaN. NOTE: unlike PyTorch, which raises. Labels that
 * come from `ClassificationDataModule` / `DataLoader` are checked on the host when the loader is
 * built (a `DataError` naming the file or sample); callers who build target tensors themselves
 * should check them the same way (`data.checkLabels`).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const kopts: CrossEntropyKernelOptions = { ...opts };
  const fwd = crossEntropyForward(logits, targets, kopts);
  if (!(isGradEnabled() && logits.requiresGrad)) {
    fwd.stats.dispose();
    fwd.wsum?.dispose();
    return fwd.loss;
  }
  return record(fwd.loss, [logits], "crossEntropy", (g) => {
    const dz = crossEntropyBackward(g, logits, targets, fwd, kopts);
    // The tape calls a backward once and then drops the node: free the saved statistics now.
    fwd.stats.dispose();
    fwd.wsum?.dispose();
    return [dz];
  });
}
