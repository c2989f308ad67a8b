/**
 * Differentiable neural-network ops (the functional API, like `torch.nn.functional`):
 * conv2d, batchNorm2d, maxPool2d, adaptiveAvgPool2d, linear, flatten. Each forward calls the
 * raw kernels and records its backward beside it.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import {
  conv2d as convForward,
  conv2dGeometry,
  conv2dInputGrad,
  type Conv2dOptions,
  conv2dWeightGrad,
  convRoute,
} from "../kernels/conv.ts";
import { type Conv2dGeometry, type TapCrop, tapCrop } from "../kernels/conv_geometry.ts";
import { cropWeight, expandWeight } from "../kernels/conv_crop.ts";
import { unfoldForward, unfoldInputGrad, unfoldWeight } from "../kernels/conv_unfold.ts";
import {
  batchNormApply,
  batchNormBackward,
  type BatchNormStats,
  batchNormStats,
} from "../kernels/batch_norm.ts";
import {
  adaptiveAvgPool2dBackward,
  adaptiveAvgPool2dForward,
  maxPool2dBackward,
  maxPool2dForward,
} from "../kernels/pool.ts";
import { batchNormApplyRelu } from "../kernels/batch_norm_fused.ts";
import { binary } from "../kernels/elementwise.ts";
import { fmt } from "../kernels/shape.ts";
import { add, matmul, reshape } from "./ops.ts";
import { isGradEnabled, record } from "./tape.ts";
import { conv2dMixed, dropWidened, linearMixed, mixedFor, narrow, widen } from "./autocast.ts";

/** Stride, padding, dilation (and kernel family) of `conv2d`: the raw kernels' options. */
export type { Conv2dOptions };

/**
 * 2-D cross-correlation, NCHW: x [N, C, H, W] ⋆ weight [O, C, kh, kw] → [N, O, OH, OW] with
 * OH = ⌊(H + 2p − d·(kh − 1) − 1)/s⌋ + 1. No bias, groups = 1 (as ResNet uses it). Inside
 * `autocast`, or for an f16 `x`, it runs in mixed precision and returns f16.
 */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  if (mixedFor(x)) return conv2dMixed(x, weight, opts);
  const training = isGradEnabled() && (x.requiresGrad || weight.requiresGrad);
  const crop = training && (opts.algorithm ?? "auto") === "auto" ? tapCrop(g) : null;
  if (crop) return croppedConv2d(x, weight, g, crop, opts);
  if (training && convRoute(g, opts, "forward").kind === "unfold") {
    return unfoldedConv2d(x, weight, g, opts);
  }
  const out = convForward(x, weight, opts);
  return record(out, [x, weight], "conv2d", (g) => [
    x.requiresGrad ? conv2dInputGrad(g, weight, { ...opts, inputShape: x.shape }) : null,
    weight.requiresGrad ? conv2dWeightGrad(x, g, { ...opts, weightShape: weight.shape }) : null,
  ]);
}

/**
 * `conv2d` on a plane so small that some taps only ever read padding (see `tapCrop`): the
 * kernels would crop the weight in each of forward and input gradient; here it is cropped once
 * and kept for the backward pass, which disposes it.
 */
function croppedConv2d(
  x: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  crop: TapCrop,
  opts: Conv2dOptions,
): Tensor {
  const wc = cropWeight(weight, g, crop);
  const cropped = { ...opts, padding: [crop.ph, crop.pw] as const };
  const out = convForward(x, wc, cropped);
  return record(out, [x, weight], "conv2d", (gy) => {
    const dx = x.requiresGrad ? conv2dInputGrad(gy, wc, { ...cropped, inputShape: x.shape }) : null;
    let dw: Tensor | null = null;
    if (weight.requiresGrad) {
      using dwc = conv2dWeightGrad(x, gy, { ...cropped, weightShape: wc.shape });
      dw = expandWeight(dwc, g, crop);
    }
    wc.dispose();
    return [dx, dw];
  });
}

/**
 * `conv2d` on a tiny plane that runs with its weight unfolded over the plane (see
 * `conv_unfold.ts`): the kernels would unfold the weight in each of forward and input
 * gradient; here it is unfolded once and kept for the backward pass, which disposes it.
 */
function unfoldedConv2d(
  x: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  opts: Conv2dOptions,
): Tensor {
  const wu = unfoldWeight(weight, g);
  const out = unfoldForward(x, wu, g);
  return record(out, [x, weight], "conv2d", (gy) => {
    const dx = x.requiresGrad ? unfoldInputGrad(gy, wu, g) : null;
    const dw = weight.requiresGrad
      ? conv2dWeightGrad(x, gy, { ...opts, weightShape: weight.shape })
      : null;
    wu.dispose();
    return [dx, dw];
  });
}

/** Parameters and buffers of a BatchNorm2d layer (owned by the layer). */
export interface BatchNormState {
  /** γ [C]. */
  weight: Tensor;
  /** β [C]. */
  bias: Tensor;
  /** Running mean [C], updated in place in training mode. */
  runningMean: Tensor;
  /** Running (unbiased) variance [C], updated in place in training mode. */
  runningVar: Tensor;
  /** i32 scalar [] incremented in place by each training-mode call, when present. */
  numBatchesTracked?: Tensor;
}

/** Mode and constants of `batchNorm2d`. */
export interface BatchNormOptions {
  /** Batch statistics (and running-statistic updates) when true, running statistics when false. */
  training: boolean;
  /** Weight of the new batch statistic in the running averages; default 0.1. */
  momentum?: number;
  /** Added to the variance; default 1e-5. */
  eps?: number;
}

/**
 * Batch normalisation over N, H, W per channel of x [N, C, H, W] (any [N, C, ...] works).
 * Training: normalises with the batch mean and biased variance and updates the running
 * statistics in place on the GPU (momentum, unbiased variance) and `numBatchesTracked`.
 * Eval: uses the running statistics. Gradients flow to x, weight (γ) and bias (β).
 * An f16 `x` (mixed precision) is computed in f32 and gives an f16 result, as under autocast.
 */
export function batchNorm2d(x: Tensor, state: BatchNormState, opts: BatchNormOptions): Tensor {
  return batchNormOp(x, state, opts, "batchNorm2d");
}

/**
 * `relu(batchNorm2d(x) + residual)` (or `relu(batchNorm2d(x))` without `residual`) in one
 * kernel: what ResNet blocks do after each conv. Values and gradients are bit-identical to
 * the three separate ops; memory is lower, as neither the BN output nor the sum is kept.
 * Gradients flow to x, weight, bias and residual.
 */
export function batchNormRelu(
  x: Tensor,
  state: BatchNormState,
  opts: BatchNormOptions,
  residual?: Tensor,
): Tensor {
  return batchNormOp(x, state, opts, "batchNormRelu", { residual: residual ?? null });
}

/** Shared body of `batchNorm2d` (fused = null) and `batchNormRelu`: forward and backward. */
function batchNormOp(
  x: Tensor,
  state: BatchNormState,
  opts: BatchNormOptions,
  op: string,
  fused: { residual: Tensor | null } | null = null,
): Tensor {
  const c = x.shape[1];
  for (
    const [name, t] of [["weight", state.weight], ["bias", state.bias], [
      "runningMean",
      state.runningMean,
    ], ["runningVar", state.runningVar]] as const
  ) {
    if (t.size !== c) {
      throw new RangeError(
        `${op}: ${name} has shape ${fmt(t.shape)}, expected [${c}] for input ${fmt(x.shape)}`,
      );
    }
  }
  const residual = fused?.residual ?? undefined;
  if (residual && fmt(residual.shape) !== fmt(x.shape)) {
    throw new RangeError(
      `${op}: residual has shape ${fmt(residual.shape)}, expected ${fmt(x.shape)}`,
    );
  }
  const eps = opts.eps ?? 1e-5;
  // Mixed precision: f16 activations are widened for the f32 kernels, and the result is f16.
  const xIn = widen(x);
  const rIn = residual && widen(residual);
  const stats: BatchNormStats = opts.training
    ? batchNormStats(xIn, {
      eps,
      momentum: opts.momentum ?? 0.1,
      runningMean: state.runningMean,
      runningVar: state.runningVar,
      numBatchesTracked: state.numBatchesTracked,
    })
    : { s1: state.runningMean, s2: state.runningVar, running: true };
  const affine = { weight: state.weight, bias: state.bias, eps };
  const yF = fused
    ? batchNormApplyRelu(xIn, stats, { ...affine, residual: rIn })
    : batchNormApply(xIn, stats, affine);
  dropWidened(xIn, x);
  if (rIn && residual) dropWidened(rIn, residual);
  const y = x.dtype === "f16" ? narrow(yF) : yF;
  const inputs = residual ? [x, state.weight, state.bias, residual] : [x, state.weight, state.bias];
  const freeStats = () => {
    if (opts.training) {
      stats.s1.dispose();
      stats.s2.dispose();
    }
  };
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) {
    freeStats();
    return y;
  }
  return record(y, inputs, op, (g) => {
    // Through the ReLU: y > 0 exactly where its input was, so y serves as the mask.
    const yIn = fused ? widen(y) : y;
    const gm = fused ? binary("reluGrad", g, yIn) : g;
    dropWidened(yIn, y);
    const xB = widen(x);
    const r = batchNormBackward(xB, gm, {
      stats,
      weight: state.weight,
      eps,
      needInput: x.requiresGrad,
    });
    dropWidened(xB, x);
    freeStats();
    // The sum's gradient reaches the residual unchanged.
    let gr: Tensor | null = null;
    if (residual?.requiresGrad) gr = gm;
    else if (fused) gm.dispose();
    return residual ? [r.dx, r.dweight, r.dbias, gr] : [r.dx, r.dweight, r.dbias];
  });
}

/** Window of `maxPool2d`. */
export interface MaxPool2dOptions {
  /** Square window size. */
  kernelSize: number;
  /** Step; defaults to `kernelSize`. */
  stride?: number;
  /** −inf padding on each side; default 0. */
  padding?: number;
}

/**
 * Max pooling over square windows (−inf padding, floor mode; an f16 `x` gives f16). The first maximum in
 * row-major window order receives the gradient; overlapping windows accumulate.
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const xIn = widen(x);
  const r = maxPool2dForward(xIn, opts);
  dropWidened(xIn, x);
  const { indices } = r;
  const values = x.dtype === "f16" ? narrow(r.values) : r.values;
  if (!isGradEnabled() || !x.requiresGrad) {
    indices.dispose();
    return values;
  }
  return record(values, [x], "maxPool2d", (g) => {
    const dx = maxPool2dBackward(g, indices, { ...opts, inputShape: x.shape });
    indices.dispose();
    return [dx];
  });
}

/**
 * Global average pooling (AdaptiveAvgPool2d with output size 1): [N, C, H, W] → [N, C, 1, 1],
 * computed in f32 (an f16 `x` gives f16).
 */
export function adaptiveAvgPool2d(x: Tensor): Tensor {
  const xIn = widen(x);
  const outF = adaptiveAvgPool2dForward(xIn);
  dropWidened(xIn, x);
  const out = x.dtype === "f16" ? narrow(outF) : outF;
  return record(out, [x], "adaptiveAvgPool2d", (g) => [adaptiveAvgPool2dBackward(g, x.shape)]);
}

/** Options of `linear`. */
export interface LinearOptions {
  /** Bias [out], added to every row. */
  bias?: Tensor;
}

/**
 * Affine map y = x·Wᵀ + b: x [N, in], weight [out, in], bias [out] → [N, out] (f32; in mixed
 * precision the product reads f16 inputs, see `autocast.ts`).
 */
export function linear(x: Tensor, weight: Tensor, opts: LinearOptions = {}): Tensor {
  if (x.ndim !== 2 || weight.ndim !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new RangeError(
      `linear: expected x [N, in] and weight [out, in], got ${fmt(x.shape)} and ${
        fmt(weight.shape)
      }`,
    );
  }
  const y = mixedFor(x) ? linearMixed(x, weight) : matmul(x, weight, { transB: true });
  if (!opts.bias) return y;
  if (fmt(opts.bias.shape) !== fmt([weight.shape[0]])) {
    y.dispose();
    throw new RangeError(
      `linear: bias has shape ${fmt(opts.bias.shape)}, expected [${weight.shape[0]}]`,
    );
  }
  return add(y, opts.bias);
}

/** Options of `flatten`. */
export interface FlattenOptions {
  /** First dim to merge (with all later ones); default 1, as `torch.nn.Flatten`. */
  startDim?: number;
}

/** Merges dims `startDim..` into one: [N, C, H, W] → [N, C·H·W] by default. */
export function flatten(x: Tensor, opts: FlattenOptions = {}): Tensor {
  const start = opts.startDim ?? 1;
  const s = start < 0 ? start + x.ndim : start;
  if (!Number.isInteger(s) || s < 0 || s >= Math.max(1, x.ndim)) {
    throw new RangeError(`flatten: startDim ${start} is out of range for ${fmt(x.shape)}`);
  }
  const rest = x.shape.slice(s).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), rest]);
}
