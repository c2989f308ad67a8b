/**
 * Fused softmax cross-entropy kernels (no tape): per-class weights, label smoothing,
 * `ignoreIndex`, reductions mean / sum / none, normalised as PyTorch's `CrossEntropyLoss`.
 * Log-sum-exp keeps logits of ±1e4 finite; reductions run in one workgroup with a fixed
 * order (no float atomics), so results are identical on every run.
 *
 * @module
 */

import fwdSrc from "../../shaders/cross_entropy_forward.wgsl" with { type: "text" };
import reduceSrc from "../../shaders/cross_entropy_reduce.wgsl" with { type: "text" };
import bwdSrc from "../../shaders/cross_entropy_backward.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fmt } from "./shape.ts";

/** Forward and backward share one uniform block (`zero` builds a NaN at run time). */
const CE_FIELDS = { n: "u32", c: "u32", ignore: "i32", zero: "u32", eps: "f32" } as const;
const FORWARD = defineKernel("cross_entropy_forward", fwdSrc, CE_FIELDS);
const BACKWARD = defineKernel("cross_entropy_backward", bwdSrc, CE_FIELDS);
const PARAMS = FORWARD.params;
const REDUCE = defineKernel("cross_entropy_reduce", reduceSrc, { n: "u32" });

/** How per-row losses are combined. */
export type LossReduction = "mean" | "sum" | "none";

/** Options of the cross-entropy kernels. */
export interface CrossEntropyKernelOptions {
  /** Per-class weights, f32 `[C]` (default: all ones). */
  weight?: Tensor | null;
  /** Label smoothing ε in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** Target value whose rows are dropped (default −100). */
  ignoreIndex?: number;
  /** Reduction (default "mean"). */
  reduction?: LossReduction;
}

/** What the forward kernel produces. */
export interface CrossEntropyForward {
  /** The loss: a scalar `[]` for mean/sum, `[N]` for none. */
  loss: Tensor;
  /** Per-row statistics `[N, 4]` = (max, log Σ exp, w[y] or 0, Σ_c w[c]) for the backward. */
  stats: Tensor;
  /** W = Σ w[y_i] over non-ignored rows, `[1]` (null for "none"). */
  wsum: Tensor | null;
}

const REDUCTIONS: Record<LossReduction, number> = { none: 0, sum: 1, mean: 2 };

function check(logits: Tensor, targets: Tensor, opts: CrossEntropyKernelOptions): void {
  if (logits.ndim !== 2 || logits.dtype !== "f32") {
    throw new TypeError(
      `crossEntropy: logits must be f32 [N, C], got ${fmt(logits.shape)} ${logits.dtype}`,
    );
  }
  const [n, c] = logits.shape;
  if (targets.dtype !== "i32" || targets.ndim !== 1 || targets.shape[0] !== n) {
    throw new TypeError(
      `crossEntropy: targets must be i32 [${n}], got ${fmt(targets.shape)} ${targets.dtype}`,
    );
  }
  const w = opts.weight;
  if (w && (w.dtype !== "f32" || w.ndim !== 1 || w.shape[0] !== c)) {
    throw new TypeError(`crossEntropy: weight must be f32 [${c}], got ${fmt(w.shape)} ${w.dtype}`);
  }
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) {
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  }
  const red = opts.reduction ?? "mean";
  if (!(red in REDUCTIONS)) {
    throw new RangeError(`crossEntropy: reduction must be mean, sum or none, got "${red}"`);
  }
}

function params(n: number, c: number, opts: CrossEntropyKernelOptions): ArrayBuffer {
  return PARAMS.pack({
    n,
    c,
    ignore: opts.ignoreIndex ?? -100,
    zero: 0,
    eps: opts.labelSmoothing ?? 0,
  });
}

/**
 * Forward: per-row losses and statistics, then (for mean/sum) one deterministic reduction.
 * A target outside [0, C) that is not `ignoreIndex` gives NaN (PyTorch raises; we cannot
 * check without a readback).
 */
export function crossEntropyForward(
  logits: Tensor,
  targets: Tensor,
  opts: CrossEntropyKernelOptions = {},
): CrossEntropyForward {
  check(logits, targets, opts);
  const [n, c] = logits.shape;
  const red = opts.reduction ?? "mean";
  const w = opts.weight ?? null;
  const rows = Tensor.empty([n]);
  const stats = Tensor.empty([n, 4]);
  dispatch({
    kernel: "cross_entropy_forward",
    code: FORWARD.code,
    overrides: { HAS_W: w ? 1 : 0 },
    uniform: params(n, c, opts),
    buffers: [logits.buffer, targets.buffer, (w ?? logits).buffer, rows.buffer, stats.buffer],
    workgroups: gridFor(n, 64),
  });
  if (red === "none") return { loss: rows, stats, wsum: null };
  const loss = Tensor.empty([]);
  const wsum = Tensor.empty([1]);
  dispatch({
    kernel: `cross_entropy_reduce.${red}`,
    code: REDUCE.code,
    overrides: { MEAN: red === "mean" ? 1 : 0 },
    uniform: REDUCE.params.pack({ n }),
    buffers: [rows.buffer, stats.buffer, loss.buffer, wsum.buffer],
    workgroups: [1],
  });
  rows.dispose();
  return { loss, stats, wsum };
}

/** Backward: the gradient of the loss with respect to the logits, `[N, C]`. */
export function crossEntropyBackward(
  grad: Tensor,
  logits: Tensor,
  targets: Tensor,
  fwd: CrossEntropyForward,
  opts: CrossEntropyKernelOptions = {},
): Tensor {
  check(logits, targets, opts);
  const [n, c] = logits.shape;
  const red = opts.reduction ?? "mean";
  const w = opts.weight ?? null;
  const want = red === "none" ? n : 1;
  if (grad.size !== want) {
    throw new RangeError(
      `crossEntropyBackward: gradient must have ${want} elements, got ${fmt(grad.shape)}`,
    );
  }
  const dz = Tensor.empty([n, c]);
  dispatch({
    kernel: `cross_entropy_backward.${red}`,
    code: BACKWARD.code,
    overrides: { HAS_W: w ? 1 : 0, REDUCTION: REDUCTIONS[red] },
    uniform: params(n, c, opts),
    buffers: [
      grad.buffer,
      logits.buffer,
      targets.buffer,
      (w ?? logits).buffer,
      fwd.stats.buffer,
      (fwd.wsum ?? fwd.stats).buffer,
      dz.buffer,
    ],
    workgroups: gridFor(n * c, 256),
  });
  return dz;
}
