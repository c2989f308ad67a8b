/**
 * Deterministic reductions (sum, mean, max with argmax) over one axis.
 *
 * @module
 */

import serialSrc from "../../shaders/reduce_serial.wgsl" with { type: "text" };
import treeSrc from "../../shaders/reduce_tree.wgsl" with { type: "text" };
import serial4Src from "../../shaders/reduce_serial4.wgsl" with { type: "text" };
import subgroupSrc from "../../shaders/reduce_subgroup.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { tunedChoice } from "../gpu/tune.ts";
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { normAxis } from "./shape.ts";
import { subgroupCode } from "./broadcast.ts";

/** Both reductions read [outer, r, inner]: r reduced, outer and inner kept. */
const REDUCE_FIELDS = { outer: "u32", r: "u32", inner: "u32" } as const;
const SERIAL = defineKernel("reduce_serial", serialSrc, REDUCE_FIELDS);
const TREE = defineKernel("reduce_tree", treeSrc, REDUCE_FIELDS);
const SUBGROUP = defineKernel("reduce_subgroup", subgroupSrc, REDUCE_FIELDS);
const SERIAL4 = defineKernel("reduce_serial4", serial4Src, {
  outer: "u32",
  r: "u32",
  inner4: "u32",
});

/** Reduction kind. */
export type ReduceOp = "sum" | "mean" | "max";

const OPS: Record<ReduceOp, number> = { sum: 0, mean: 1, max: 2 };

/** Result of a reduction: values, and for max the index of the first maximum (i32). */
export interface ReduceResult {
  /** Reduced values; the axis is removed (or kept as 1 with keepDim). */
  values: Tensor;
  /** For max: i32 indices along the axis; null otherwise. */
  indices: Tensor | null;
}

/** Options of `reduce`. */
export interface ReduceOptions {
  /** The reduced axis (negative counts from the end). */
  axis: number;
  /** Keep the reduced axis as size 1. */
  keepDim?: boolean;
  /**
   * Whether the serial reduction reads vec4s where `inner` is a multiple of 4 (the same
   * bits either way). Default: the measured choice when tuning is on (family `reduce`, see
   * `src/kernels/tuning.ts`), else on GPUs only; on lavapipe it is slower (sum over axis 0 of
   * [1024, 4096]: 21 vs 11 ms of CPU per call), its scalar loads being contiguous per lane.
   */
  vec4?: boolean;
  /**
   * Whether long reductions combine with subgroup operations (`reduce_subgroup.wgsl`) instead
   * of a workgroup-memory tree. Default: where the device has the `subgroups` feature; without
   * it the tree runs whatever this says. Max and argmax are the same bits either way; sums
   * round in the subgroup's order.
   */
  subgroups?: boolean;
}

/** The kernels a reduction may run (see `reduceKernel`). */
export type ReduceKernel = "serial" | "serial4" | "tree" | "subgroup";

/**
 * The kernel that reduces [outer, r, inner] over r: a workgroup per output (`subgroup` where
 * the device offers subgroups, else `tree`) for long axes with few outputs, otherwise an
 * invocation per output (`serial4`: four at a time, see `ReduceOptions.vec4`).
 */
export function reduceKernel(
  dims: { outer: number; r: number; inner: number },
  opts: Pick<ReduceOptions, "vec4" | "subgroups"> = {},
): ReduceKernel {
  const { features, isCpu } = gpu().adapter;
  if (dims.r > 64 && dims.outer * dims.inner < 4096) {
    return (opts.subgroups ?? true) && features.includes("subgroups") ? "subgroup" : "tree";
  }
  if (dims.inner % 4 !== 0) return "serial";
  if (opts.vec4 !== undefined) return opts.vec4 ? "serial4" : "serial";
  // Measured choice when tuning is on (src/kernels/tuning.ts, family "reduce").
  const heuristic = isCpu ? "serial" : "serial4";
  return tunedChoice("reduce", [dims.outer, dims.r, dims.inner], heuristic);
}

/** Reduces `x` over `axis` (an empty axis sums to 0 and averages to NaN, as in PyTorch). */
export function reduce(op: ReduceOp, x: Tensor, opts: ReduceOptions): ReduceResult {
  if (x.dtype !== "f32") throw new TypeError(`${op}: expected an f32 tensor, got ${x.dtype}`);
  const shape = x.ndim === 0 ? [1] : x.shape;
  const ax = normAxis(opts.axis, shape.length, op);
  const outer = shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const r = shape[ax];
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  if (r === 0 && op === "max") {
    throw new RangeError(`max: cannot reduce an empty axis ${ax} (no identity)`);
  }
  const outShape = opts.keepDim
    ? shape.map((d, i) => (i === ax ? 1 : d))
    : shape.filter((_, i) => i !== ax);
  const values = Tensor.empty(outShape);
  const indices = op === "max" ? Tensor.empty(outShape, "i32") : null;
  const scratch = indices ?? Tensor.empty([1], "i32");
  const outputs = outer * inner;
  const kernel = reduceKernel({ outer, r, inner }, opts);
  if (kernel === "serial4") {
    // Four adjacent outputs per invocation, each in the serial kernel's order: the same bits.
    dispatch({
      kernel: `reduce_serial4.${op}`,
      code: SERIAL4.code,
      overrides: { OP: OPS[op] },
      uniform: SERIAL4.params.pack({ outer, r, inner4: inner / 4 }),
      buffers: [x.buffer, values.buffer, scratch.buffer],
      workgroups: gridFor(outputs / 4, 64),
    });
    if (!indices) scratch.dispose();
    return { values, indices };
  }
  const tree = kernel !== "serial";
  dispatch({
    kernel: `reduce_${kernel}.${op}`,
    code: kernel === "subgroup" ? subgroupCode(SUBGROUP) : tree ? TREE.code : SERIAL.code,
    overrides: { OP: OPS[op] },
    uniform: SERIAL.params.pack({ outer, r, inner }),
    buffers: [x.buffer, values.buffer, scratch.buffer],
    workgroups: tree ? gridFor(outputs, 1) : gridFor(outputs, 64),
  });
  if (!indices) scratch.dispose();
  return { values, indices };
}

/** Sum over all elements, as a scalar tensor. */
export function sumAll(x: Tensor): Tensor {
  const flat = x.view([x.size]);
  const { values } = reduce("sum", flat, { axis: 0 });
  flat.dispose();
  const s = values.view([]);
  values.dispose();
  return s;
}
