/**
 * BatchNorm2d kernels (no tape): batch statistics with in-place running-statistic updates,
 * normalisation, and the backward pair (per-channel sums, then the input gradient). All
 * reductions are per-channel workgroup trees in a fixed order: deterministic.
 *
 * @module
 */

import statsSrc from "../../shaders/batch_norm_stats.wgsl" with { type: "text" };
import applySrc from "../../shaders/batch_norm_apply.wgsl" with { type: "text" };
import reduceSrc from "../../shaders/batch_norm_backward_reduce.wgsl" with { type: "text" };
import backApplySrc from "../../shaders/batch_norm_backward_apply.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { tunedChoice } from "../gpu/tune.ts";
import { fmt } from "./shape.ts";

const STATS = defineKernel("batch_norm_stats", statsSrc, {
  n: "u32",
  c: "u32",
  hw: "u32",
  eps: "f32",
  momentum: "f32",
});
const APPLY = defineKernel("batch_norm_apply", applySrc, {
  total4: "u32",
  c: "u32",
  hw: "u32",
  eps: "f32",
});
const BACKWARD_REDUCE = defineKernel("batch_norm_backward_reduce", reduceSrc, {
  n: "u32",
  c: "u32",
  hw: "u32",
  eps: "f32",
});
const BACKWARD_APPLY = defineKernel("batch_norm_backward_apply", backApplySrc, {
  total4: "u32",
  c: "u32",
  hw: "u32",
  eps: "f32",
  inv_m: "f32",
});

/** Per-channel statistics a normalisation used: batch (mean, invstd) or running (mean, var). */
export interface BatchNormStats {
  /** Batch mean, or running mean. */
  s1: Tensor;
  /** Batch 1/√(var_b + eps), or running variance. */
  s2: Tensor;
  /** True when s1/s2 are running statistics (eval mode). */
  running: boolean;
}

function dims(x: Tensor, op: string): { n: number; c: number; hw: number } {
  if (x.ndim < 2 || x.dtype !== "f32") {
    throw new RangeError(
      `${op}: expected an f32 [N, C, ...] tensor, got ${fmt(x.shape)} ${x.dtype}`,
    );
  }
  const [n, c] = x.shape;
  return { n, c, hw: x.size / (n * c) };
}

/** Vec4s of a channel's plane one invocation of the per-element kernels walks (RUNS = 1). */
const BN_RUN = 16;

/**
 * Overrides and grid of the per-element BN kernels (apply, apply + ReLU, input gradient) over
 * x [N, C, HW]: on CPU adapters with HW % 4 == 0, runs of a channel's plane with the channels as
 * lanes (no per-vec4 index splitting, which costs lavapipe more than the pass); elsewhere one
 * vec4 per invocation over the flat index.
 */
export function bnElementwiseLaunch(
  n: number,
  c: number,
  hw: number,
): { overrides: Record<string, number>; workgroups: [number, number, number?] } {
  const aligned = hw % 4 === 0;
  if (aligned && gpu().adapter.isCpu) {
    const wg = 8;
    return {
      overrides: { ALIGNED: 1, RUNS: 1, RUN: BN_RUN, WG: wg },
      workgroups: [Math.ceil(c / wg), Math.ceil(hw / 4 / BN_RUN), n],
    };
  }
  return {
    overrides: { ALIGNED: aligned ? 1 : 0 },
    workgroups: gridFor(Math.ceil((n * c * hw) / 4), 256),
  };
}

/**
 * Workgroup size of the per-channel reductions (a power of two, 8..256): about 8 values per
 * invocation. Late ResNet stages have few values per channel (32 at 1×1, batch 32), and a
 * 256-wide tree there costs more in barriers than the sums themselves (on lavapipe every
 * barrier switches between all the invocations of the workgroup).
 */
export function channelReduceWorkgroup(valuesPerChannel: number): number {
  const want = Math.ceil(valuesPerChannel / 8);
  return Math.min(256, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, want)))));
}

/** Values each invocation of a per-channel reduction reads: vec4s when aligned. */
function channelItems(n: number, hw: number): number {
  return hw % 4 === 0 ? n * hw / 4 : n * hw;
}

/** Candidate workgroup sizes of the per-channel reductions (the `bn_reduce` tuning family). */
export const BN_REDUCE_WORKGROUPS = ["8", "16", "32", "64", "128", "256"] as const;

/**
 * Workgroup size of the reductions over x [N, C, HW]: `wg` when given (the tuner's bench),
 * else the measured choice for the shape's bucket when tuning is on, else the heuristic.
 */
function reduceWorkgroup(n: number, c: number, hw: number, wg?: number): number {
  if (wg) return wg;
  const heuristic = String(channelReduceWorkgroup(channelItems(n, hw)));
  return Number(tunedChoice("bn_reduce", [n, c, hw], heuristic));
}

/**
 * Batch mean and invstd of `x` [N, C, ...] per channel; updates `runningMean` /
 * `runningVar` in place (momentum, unbiased variance) and adds 1 to `numBatchesTracked`
 * when given.
 */
export function batchNormStats(
  x: Tensor,
  opts: {
    eps: number;
    momentum: number;
    runningMean?: Tensor;
    runningVar?: Tensor;
    numBatchesTracked?: Tensor;
    /** Workgroup size of the reduction (default: tuned or heuristic). */
    workgroup?: number;
  },
): BatchNormStats {
  const { n, c, hw } = dims(x, "batchNormStats");
  if (n * hw < 2) {
    throw new RangeError(
      `batchNorm2d: expected more than 1 value per channel when training, got input ${
        fmt(x.shape)
      }`,
    );
  }
  const s1 = Tensor.empty([c]);
  const s2 = Tensor.empty([c]);
  const update = !!(opts.runningMean && opts.runningVar);
  const track = !!opts.numBatchesTracked;
  // Unused bindings still need buffers; each gets its own so no writable buffer aliases.
  const dummies: Tensor[] = [];
  const orDummy = (t: Tensor | undefined, dtype: "f32" | "i32") => {
    if (t) return t.buffer;
    const d = Tensor.empty([1], dtype);
    dummies.push(d);
    return d.buffer;
  };
  dispatch({
    kernel: STATS.name,
    code: STATS.code,
    overrides: {
      UPDATE: update ? 1 : 0,
      TRACK: track ? 1 : 0,
      ALIGNED: hw % 4 === 0 ? 1 : 0,
      WG: reduceWorkgroup(n, c, hw, opts.workgroup),
    },
    uniform: STATS.params.pack({ n, c, hw, eps: opts.eps, momentum: opts.momentum }),
    buffers: [
      x.buffer,
      s1.buffer,
      s2.buffer,
      orDummy(update ? opts.runningMean : undefined, "f32"),
      orDummy(update ? opts.runningVar : undefined, "f32"),
      orDummy(opts.numBatchesTracked, "i32"),
    ],
    workgroups: [c],
  });
  for (const d of dummies) d.dispose();
  return { s1, s2, running: false };
}

/** y = (x − mean)·invstd·γ + β per channel, with batch or running statistics. */
export function batchNormApply(
  x: Tensor,
  stats: BatchNormStats,
  opts: { weight: Tensor; bias: Tensor; eps: number },
): Tensor {
  const { n, c, hw } = dims(x, "batchNormApply");
  const y = Tensor.empty(x.shape);
  const launch = bnElementwiseLaunch(n, c, hw);
  dispatch({
    kernel: APPLY.name,
    code: APPLY.code,
    overrides: { EVAL: stats.running ? 1 : 0, ...launch.overrides },
    uniform: APPLY.params.pack({ total4: Math.ceil(x.size / 4), c, hw, eps: opts.eps }),
    buffers: [
      x.buffer,
      stats.s1.buffer,
      stats.s2.buffer,
      opts.weight.buffer,
      opts.bias.buffer,
      y.buffer,
    ],
    workgroups: launch.workgroups,
  });
  return y;
}

/** Gradients of batch normalisation for x, γ and β given the output gradient `g`. */
export function batchNormBackward(
  x: Tensor,
  g: Tensor,
  opts: {
    stats: BatchNormStats;
    weight: Tensor;
    eps: number;
    needInput?: boolean;
    /** Workgroup size of the reduction (default: tuned or heuristic). */
    workgroup?: number;
  },
): { dx: Tensor | null; dweight: Tensor; dbias: Tensor } {
  const { n, c, hw } = dims(x, "batchNormBackward");
  const { stats } = opts;
  const dweight = Tensor.empty([c]);
  const dbias = Tensor.empty([c]);
  const evalFlag = stats.running ? 1 : 0;
  dispatch({
    kernel: BACKWARD_REDUCE.name,
    code: BACKWARD_REDUCE.code,
    overrides: {
      EVAL: evalFlag,
      ALIGNED: hw % 4 === 0 ? 1 : 0,
      WG: reduceWorkgroup(n, c, hw, opts.workgroup),
    },
    uniform: BACKWARD_REDUCE.params.pack({ n, c, hw, eps: opts.eps }),
    buffers: [x.buffer, g.buffer, stats.s1.buffer, stats.s2.buffer, dweight.buffer, dbias.buffer],
    workgroups: [c],
  });
  let dx: Tensor | null = null;
  if (opts.needInput ?? true) {
    dx = Tensor.empty(x.shape);
    const launch = bnElementwiseLaunch(n, c, hw);
    dispatch({
      kernel: BACKWARD_APPLY.name,
      code: BACKWARD_APPLY.code,
      overrides: { EVAL: evalFlag, ...launch.overrides },
      uniform: BACKWARD_APPLY.params.pack({
        total4: Math.ceil(x.size / 4),
        c,
        hw,
        eps: opts.eps,
        inv_m: 1 / (n * hw),
      }),
      buffers: [
        x.buffer,
        g.buffer,
        stats.s1.buffer,
        stats.s2.buffer,
        opts.weight.buffer,
        dweight.buffer,
        dbias.buffer,
        dx.buffer,
      ],
      workgroups: launch.workgroups,
    });
  }
  return { dx, dweight, dbias };
}
