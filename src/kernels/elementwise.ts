/**
 * Elementwise kernels: broadcasting binary ops, unary ops with two scalars, fill.
 *
 * @module
 */

import binarySrc from "../../shaders/binary.wgsl" with { type: "text" };
import binarySameSrc from "../../shaders/binary_same.wgsl" with { type: "text" };
import binaryBroadcast4Src from "../../shaders/binary_broadcast4.wgsl" with { type: "text" };
import unarySrc from "../../shaders/unary.wgsl" with { type: "text" };
import fillSrc from "../../shaders/fill.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { type DType, Tensor } from "../gpu/tensor.ts";
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  fmt,
  pad8,
  perVec4,
  stridesOf,
  vec4Modes,
} from "./shape.ts";

const BINARY = defineKernel("binary", binarySrc, {
  n: "u32",
  ndim: "u32",
  shape: "u32x8",
  sa: "u32x8",
  sb: "u32x8",
});
const BROADCAST_FIELDS = {
  n4: "u32",
  ndim: "u32",
  shape: "u32x8",
  sa: "u32x8",
  sb: "u32x8",
} as const;
const BINARY_BROADCAST4 = defineKernel("binary_broadcast4", binaryBroadcast4Src, BROADCAST_FIELDS);
const BINARY_SAME = defineKernel("binary_same", binarySameSrc, { n4: "u32" });
const UNARY = defineKernel("unary", unarySrc, { n4: "u32", alpha: "f32", beta: "f32" });
const FILL = defineKernel("fill", fillSrc, { n: "u32", bits: "u32" });

/** Binary op codes of `shaders/binary.wgsl`. */
export const BINARY_OPS = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
  reluGrad: 6,
  gt: 7,
  pow: 8,
  eq: 9,
} as const;

/** Name of a binary op. */
export type BinaryOp = keyof typeof BINARY_OPS;

/** Unary op codes of `shaders/unary.wgsl`. */
export const UNARY_OPS = {
  affine: 0,
  relu: 1,
  neg: 2,
  exp: 3,
  log: 4,
  sqrt: 5,
  rsqrt: 6,
  abs: 7,
  square: 8,
  sigmoid: 9,
  tanh: 10,
  powScalar: 11,
  reciprocal: 12,
  clamp: 13,
  stepGt: 14,
} as const;

/** Name of a unary op. */
export type UnaryOp = keyof typeof UNARY_OPS;

function checkF32(t: Tensor, op: string): void {
  if (t.dtype !== "f32") throw new TypeError(`${op}: expected an f32 tensor, got ${t.dtype}`);
}

/** Options of `binary`. */
export interface BinaryOptions {
  /** `false` forces the scalar broadcast kernel where the vec4 one applies (tests compare). */
  vec4?: boolean;
}

/**
 * `op(a, b)` with broadcasting; returns a new f32 tensor of the broadcast shape. Same-shape
 * operands take the vec4 kernel `binary_same.wgsl`; broadcasts whose collapsed last dim is a
 * multiple of 4 take `binary_broadcast4.wgsl` (the same bits, four outputs per invocation).
 */
export function binary(op: BinaryOp, a: Tensor, b: Tensor, opts: BinaryOptions = {}): Tensor {
  checkF32(a, op);
  checkF32(b, op);
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = Tensor.empty(shape);
  const same = fmt(a.shape) === fmt(shape) && fmt(b.shape) === fmt(shape);
  if (same) {
    // vec4 path: 4 elements per invocation (the last vec4 may cover buffer padding).
    const n4 = Math.ceil(out.size / 4);
    dispatch({
      kernel: `binary_same.${op}`,
      code: BINARY_SAME.code,
      overrides: { OP: BINARY_OPS[op] },
      uniform: BINARY_SAME.params.pack({ n4 }),
      buffers: [a.buffer, b.buffer, out.buffer],
      workgroups: gridFor(n4, 256),
    });
    return out;
  }
  const c = collapseDims(shape, [
    stridesOf(shape),
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  ]);
  const modes = opts.vec4 === false ? null : vec4Modes(c.shape, c.strides.slice(1));
  if (modes) {
    const v = perVec4(c.shape, c.strides);
    const n4 = out.size / 4;
    dispatch({
      kernel: `binary_broadcast4.${op}`,
      code: BINARY_BROADCAST4.code,
      overrides: {
        OP: BINARY_OPS[op],
        A_SPLAT: modes[0] === "splat" ? 1 : 0,
        B_SPLAT: modes[1] === "splat" ? 1 : 0,
      },
      uniform: BINARY_BROADCAST4.params.pack({
        n4,
        ndim: v.shape.length,
        shape: pad8(v.shape),
        sa: pad8(v.strides[1]),
        sb: pad8(v.strides[2]),
      }),
      buffers: [a.buffer, b.buffer, out.buffer],
      workgroups: gridFor(n4, 256),
    });
    return out;
  }
  dispatch({
    kernel: `binary.${op}`,
    code: BINARY.code,
    overrides: { OP: BINARY_OPS[op], BROADCAST: 1 },
    uniform: BINARY.params.pack({
      n: out.size,
      ndim: c.shape.length,
      shape: pad8(c.shape),
      sa: pad8(c.strides[1]),
      sb: pad8(c.strides[2]),
    }),
    buffers: [a.buffer, b.buffer, out.buffer],
    workgroups: gridFor(out.size, 256),
  });
  return out;
}

/** `op(x; alpha, beta)` elementwise (four elements per invocation); returns a new f32 tensor. */
export function unary(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  checkF32(x, op);
  const out = Tensor.empty(x.shape);
  dispatch({
    kernel: `unary.${op}`,
    code: UNARY.code,
    overrides: { OP: UNARY_OPS[op] },
    uniform: UNARY.params.pack({ n4: Math.ceil(x.size / 4), alpha, beta }),
    buffers: [x.buffer, out.buffer],
    workgroups: gridFor(Math.ceil(x.size / 4), 256),
  });
  return out;
}

/** Writes `value` into every element of `t` (in place); returns `t`. */
export function fillInPlace(t: Tensor, value: number): Tensor {
  const bits = new DataView(new ArrayBuffer(4));
  if (t.dtype === "f32") bits.setFloat32(0, value, true);
  else bits.setInt32(0, value, true);
  dispatch({
    kernel: "fill",
    code: FILL.code,
    uniform: FILL.params.pack({ n: t.size, bits: bits.getUint32(0, true) }),
    buffers: [t.buffer],
    workgroups: gridFor(t.size, 256),
  });
  return t;
}

/** A new tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
  return fillInPlace(Tensor.empty(shape, dtype), value);
}
