/**
 * Gradient clipping, entirely on the GPU (no readback): PyTorch's `clip_grad_norm_` and
 * `clip_grad_value_`.
 *
 * @module
 */

import { scope, type Tensor } from "../gpu/tensor.ts";
import { binary, full, unary } from "../kernels/elementwise.ts";
import { sumAll } from "../kernels/reduce.ts";

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` (PyTorch's
 * `clip_grad_norm_`: coef = maxNorm / (norm + 1e-6), clamped to 1), entirely on the GPU.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): void {
  const withGrad = params.filter((p) => p.grad);
  if (!withGrad.length) return;
  scope(() => {
    let total: Tensor | null = null;
    for (const p of withGrad) {
      const g = p.grad as Tensor;
      const sq = sumAll(unary("square", g)).view([1]);
      total = total ? binary("add", total, sq) : sq;
    }
    const norm = unary("sqrt", total as Tensor);
    const coef = unary("reciprocal", unary("affine", norm, 1 / maxNorm, 1e-6 / maxNorm));
    const clamped = binary("minimum", coef, full([1], 1));
    for (const p of withGrad) {
      const g = p.grad as Tensor;
      p.grad = binary("mul", g, clamped).keep();
      g.dispose();
    }
  });
}

/** Clamps every gradient element to [-v, v] (`clip_grad_value_`). */
export function clipGradValue(params: readonly Tensor[], v: number): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    p.grad = unary("clamp", g, -v, v).keep();
    g.dispose();
  }
}

/** Clips by `algorithm` ("norm" or "value") at `threshold`; null disables clipping. */
export function clipGradients(
  params: readonly Tensor[],
  threshold: number | null,
  algorithm: "norm" | "value",
): void {
  if (threshold === null) return;
  if (algorithm === "norm") clipGradNorm(params, threshold);
  else clipGradValue(params, threshold);
}
