/**
 * Mixed precision as PyTorch's `torch.autocast("cuda", dtype=torch.float16)` (what
 * Lightning's `precision="16-mixed"` runs the steps under): inside `autocast`, conv2d and
 * linear cast their inputs (activations and the f32 master weights) to f16, accumulate in
 * f32 and return f16 activations; batch norm, pooling, softmax/cross-entropy and reductions
 * compute in f32, reading f16 activations through exact widenings. The f16 activations are
 * what the tape keeps for backward, so the memory of a step drops.
 *
 * NOTE: unlike PyTorch, gradients between ops stay f32; they are rounded to f16 (overflow
 * giving ±inf, which dynamic loss scaling detects) where they enter a conv or matmul backward,
 * whose results are rounded to f16 again, as PyTorch's f16 backward GEMMs produce them.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { cast, roundToF16 } from "../kernels/cast.ts";
import type { Conv2dOptions } from "../kernels/conv.ts";
import { conv2dF16, conv2dInputGradF16, conv2dWeightGradF16, matmulF16 } from "../kernels/mixed.ts";
import { isGradEnabled, record } from "./tape.ts";

let enabled = false;

/** Whether ops run in mixed precision now (inside `autocast`). */
export function isAutocastEnabled(): boolean {
  return enabled;
}

/**
 * Runs `fn` with mixed precision on (or off, `on` false), like `torch.autocast`; async
 * functions too (the previous mode returns when the promise settles).
 */
export function autocast<T>(fn: () => T, on = true): T {
  const prev = enabled;
  enabled = on;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    enabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      enabled = prev;
    }) as T;
  }
  enabled = prev;
  return result;
}

/** Whether an op given `x` takes the mixed-precision path. */
export function mixedFor(x: Tensor): boolean {
  return enabled || x.dtype === "f16";
}

/** `x` as f32: itself, or an exact widening of an f16 tensor (which the caller disposes). */
export function widen(x: Tensor): Tensor {
  return x.dtype === "f16" ? cast(x, "f32") : x;
}

/** Disposes `xf` when it is a widening made by `widen(x)`. */
export function dropWidened(xf: Tensor, x: Tensor): void {
  if (xf !== x) xf.dispose();
}

/** An op's f32 result `y` returned as f16 (y is consumed): autocast's f16 activations. */
export function narrow(y: Tensor): Tensor {
  const h = cast(y, "f16");
  y.dispose();
  return h;
}

/** `x` as f16 (itself when it already is), and whether the f16 copy is new. */
function toF16(x: Tensor): { h: Tensor; made: boolean } {
  return x.dtype === "f16" ? { h: x, made: false } : { h: cast(x, "f16"), made: true };
}

/** f16 rounding of a backward result (f32 in, f32 out; consumed). */
function rounded(g: Tensor): Tensor {
  const r = roundToF16(g);
  g.dispose();
  return r;
}

/**
 * `weight` cast to f16 for the duration of `fn`. NOTE: unlike PyTorch's autocast weight
 * cache, which keeps each f16 weight copy from forward to backward, the copy is made again in
 * backward (the same values: the weights change only at the optimizer step), so the step's peak
 * memory does not hold a second, f16, copy of the model.
 */
function withF16Weight<T>(weight: Tensor, fn: (wh: Tensor) => T): T {
  const wh = cast(weight, "f16");
  try {
    return fn(wh);
  } finally {
    wh.dispose();
  }
}

/** `conv2d` (nn_ops) in mixed precision: f16 inputs, f32 accumulation, f16 output. */
export function conv2dMixed(x: Tensor, weight: Tensor, opts: Conv2dOptions): Tensor {
  const xh = toF16(x);
  const y = narrow(withF16Weight(weight, (wh) => conv2dF16(xh.h, wh, opts)));
  const free = () => {
    if (xh.made) xh.h.dispose();
  };
  if (!(isGradEnabled() && (x.requiresGrad || weight.requiresGrad))) {
    free();
    return y;
  }
  return record(y, [x, weight], "conv2d", (g) => {
    const gh = cast(g, "f16");
    const inputShape = x.shape;
    const dx = x.requiresGrad
      ? rounded(withF16Weight(weight, (wh) => conv2dInputGradF16(gh, wh, { ...opts, inputShape })))
      : null;
    const dw = weight.requiresGrad
      ? rounded(conv2dWeightGradF16(xh.h, gh, { ...opts, weightShape: weight.shape }))
      : null;
    gh.dispose();
    free();
    return [dx, dw];
  });
}

/**
 * x·Wᵀ of `linear` in mixed precision: x [N, in] (f16 or f32) and weight [out, in] in f16,
 * f32 accumulation. NOTE: unlike PyTorch, the result stays f32 (the logits, which the loss
 * reads in f32 anyway), so the bias is added in f32 before any f16 rounding.
 */
export function linearMixed(x: Tensor, weight: Tensor): Tensor {
  const xh = toF16(x);
  const y = withF16Weight(weight, (wh) => matmulF16(xh.h, wh, { transB: true }));
  const free = () => {
    if (xh.made) xh.h.dispose();
  };
  if (!(isGradEnabled() && (x.requiresGrad || weight.requiresGrad))) {
    free();
    return y;
  }
  return record(y, [x, weight], "linear", (g) => {
    const gh = cast(g, "f16");
    // y = x·Wᵀ: dx = g·W, dW = gᵀ·x.
    const dx = x.requiresGrad ? rounded(withF16Weight(weight, (wh) => matmulF16(gh, wh))) : null;
    const dw = weight.requiresGrad ? rounded(matmulF16(gh, xh.h, { transA: true })) : null;
    gh.dispose();
    free();
    return [dx, dw];
  });
}
