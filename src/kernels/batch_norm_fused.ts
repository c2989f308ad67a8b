/**
 * Fused BatchNorm2d apply + ReLU, and apply + residual add + ReLU (no tape): one pass
 * instead of two or three, bit-identical to the separate kernels.
 *
 * @module
 */

import applyReluSrc from "../../shaders/batch_norm_apply_relu.wgsl" with { type: "text" };
import { dispatch } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { type BatchNormStats, bnElementwiseLaunch } from "./batch_norm.ts";
import { fmt } from "./shape.ts";

const APPLY_RELU = defineKernel("batch_norm_apply_relu", applyReluSrc, {
  total4: "u32",
  c: "u32",
  hw: "u32",
  eps: "f32",
});

/**
 * y = max((x − mean)·invstd·γ + β (+ residual), 0) per channel of x [N, C, ...], with batch
 * or running statistics; `residual` has x's shape.
 */
export function batchNormApplyRelu(
  x: Tensor,
  stats: BatchNormStats,
  opts: { weight: Tensor; bias: Tensor; eps: number; residual?: Tensor },
): Tensor {
  if (x.ndim < 2 || x.dtype !== "f32") {
    throw new RangeError(
      `batchNormApplyRelu: expected an f32 [N, C, ...] tensor, got ${fmt(x.shape)} ${x.dtype}`,
    );
  }
  const r = opts.residual;
  if (r && (fmt(r.shape) !== fmt(x.shape) || r.dtype !== "f32")) {
    throw new RangeError(
      `batchNormApplyRelu: residual has shape ${fmt(r.shape)} ${r.dtype}, expected ${
        fmt(x.shape)
      } f32`,
    );
  }
  const [n, c] = x.shape;
  const hw = x.size / (n * c);
  const y = Tensor.empty(x.shape);
  const launch = bnElementwiseLaunch(n, c, hw);
  dispatch({
    kernel: APPLY_RELU.name,
    code: APPLY_RELU.code,
    overrides: {
      EVAL: stats.running ? 1 : 0,
      RESIDUAL: r ? 1 : 0,
      ...launch.overrides,
    },
    uniform: APPLY_RELU.params.pack({ total4: Math.ceil(x.size / 4), c, hw, eps: opts.eps }),
    buffers: [
      x.buffer,
      stats.s1.buffer,
      stats.s2.buffer,
      opts.weight.buffer,
      opts.bias.buffer,
      // Not read when RESIDUAL = 0; x is a read-only binding already, so no aliasing of writes.
      (r ?? x).buffer,
      y.buffer,
    ],
    workgroups: launch.workgroups,
  });
  return y;
}
