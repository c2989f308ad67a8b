/**
 * Data movement: strided copies for permute, slice, broadcast expansion and block writes.
 *
 * @module
 */

import stridedSrc from "../../shaders/strided_copy.wgsl" with { type: "text" };
import strided4Src from "../../shaders/strided_copy4.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  fmt,
  normAxis,
  pad8,
  perVec4,
  stridesOf,
} from "./shape.ts";

const STRIDED = defineKernel("strided_copy", stridedSrc, {
  n: "u32",
  ndim: "u32",
  src_off: "u32",
  dst_off: "u32",
  shape: "u32x8",
  ss: "u32x8",
  ds: "u32x8",
});

const STRIDED4 = defineKernel("strided_copy4", strided4Src, {
  n: "u32",
  chunks: "u32",
  ndim: "u32",
  src_off: "u32",
  dst_off: "u32",
  step: "u32",
  shape: "u32x8",
  ss: "u32x8",
  ds: "u32x8",
});

/** Options of a raw strided copy; offsets and strides are in elements. */
export interface StridedCopyOptions {
  /** Iteration shape. */
  shape: readonly number[];
  /** Source strides per dim. */
  srcStrides: readonly number[];
  /** Destination strides per dim. */
  dstStrides: readonly number[];
  /** Source start offset. */
  srcOffset?: number;
  /** Destination start offset. */
  dstOffset?: number;
  /** `false` forces the scalar kernel where the vec4 one applies (tests compare). */
  vec4?: boolean;
}

/**
 * How `strided_copy4.wgsl` reads the source of a collapsed copy, or null when it does not
 * apply: the destination must run contiguously along a last dim that is a multiple of 4, from
 * an offset and with other strides that are multiples of 4. The source is then read as vec4s
 * (`vec4`: the same conditions), splat (`splat`: stride 0) or gathered (`gather`).
 */
export function copyVec4Mode(
  shape: readonly number[],
  src: { strides: readonly number[]; offset: number },
  dst: { strides: readonly number[]; offset: number },
): "vec4" | "splat" | "gather" | null {
  const last = shape.length - 1;
  const aligned = (s: readonly number[], off: number) =>
    off % 4 === 0 && s.every((v, d) => d === last || v % 4 === 0);
  if (last < 0 || shape[last] % 4 !== 0) return null;
  if (dst.strides[last] !== 1 || !aligned(dst.strides, dst.offset)) return null;
  if (src.strides[last] === 0) return "splat";
  if (src.strides[last] === 1 && aligned(src.strides, src.offset)) return "vec4";
  return "gather";
}

const SRC_MODES = { vec4: 0, splat: 1, gather: 2 } as const;
/**
 * Vec4s of the last dim one invocation of `strided_copy4.wgsl` copies: runs of 8 on CPU
 * adapters (the index split is paid once per run), 1 elsewhere (neighbouring invocations read
 * neighbouring vec4s, which GPUs coalesce).
 */
function copy4Run(): number {
  return gpu().adapter.isCpu ? 8 : 1;
}

/** Copies elements of `src` into `dst` following explicit strides. */
export function stridedCopy(src: Tensor, dst: Tensor, opts: StridedCopyOptions): void {
  const n = opts.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const c = collapseDims(opts.shape, [opts.srcStrides, opts.dstStrides]);
  const srcOff = opts.srcOffset ?? 0;
  const dstOff = opts.dstOffset ?? 0;
  const mode = opts.vec4 === false ? null : copyVec4Mode(
    c.shape,
    { strides: c.strides[0], offset: srcOff },
    { strides: c.strides[1], offset: dstOff },
  );
  if (mode) {
    const v = perVec4(c.shape, c.strides);
    // Runs of up to `run` vec4s along the last dim, one per invocation.
    const run = copy4Run();
    const len = v.shape[v.shape.length - 1];
    const chunks = Math.ceil(len / run);
    const invocations = (n / 4 / len) * chunks;
    dispatch({
      kernel: STRIDED4.name,
      code: STRIDED4.code,
      overrides: { SRC_MODE: SRC_MODES[mode], RUN: run, WG: 64 },
      uniform: STRIDED4.params.pack({
        n: invocations,
        chunks,
        ndim: v.shape.length,
        src_off: srcOff,
        dst_off: dstOff,
        step: c.strides[0][c.shape.length - 1],
        shape: pad8(v.shape),
        ss: pad8(v.strides[0]),
        ds: pad8(v.strides[1]),
      }),
      buffers: [src.buffer, dst.buffer],
      workgroups: gridFor(invocations, 64),
    });
    return;
  }
  dispatch({
    kernel: STRIDED.name,
    code: STRIDED.code,
    uniform: STRIDED.params.pack({
      n,
      ndim: c.shape.length,
      src_off: opts.srcOffset ?? 0,
      dst_off: opts.dstOffset ?? 0,
      shape: pad8(c.shape),
      ss: pad8(c.strides[0]),
      ds: pad8(c.strides[1]),
    }),
    buffers: [src.buffer, dst.buffer],
    workgroups: gridFor(n, 256),
  });
}

/** A contiguous copy of `x`. */
export function clone(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype);
  const s = stridesOf(x.shape);
  stridedCopy(x, out, { shape: x.shape, srcStrides: s, dstStrides: s });
  return out;
}

/** Reorders dims: `out.shape[i] = x.shape[perm[i]]`. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort().some((p, i) => p !== i)) {
    throw new RangeError(`permute: [${perm}] is not a permutation of ${x.ndim} dims`);
  }
  const shape = perm.map((p) => x.shape[p]);
  const xs = stridesOf(x.shape);
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, out, {
    shape,
    srcStrides: perm.map((p) => xs[p]),
    dstStrides: stridesOf(shape),
  });
  return out;
}

/** Materialises `x` broadcast to `shape`. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const b = broadcastShapes(x.shape, shape, "expand");
  if (fmt(b) !== fmt(shape)) {
    throw new RangeError(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, out, {
    shape,
    srcStrides: broadcastStrides(x.shape, shape),
    dstStrides: stridesOf(shape),
  });
  return out;
}

/** `x` narrowed to `[start, start + length)` along `axis`. */
export function slice(x: Tensor, axis: number, start: number, length: number): Tensor {
  const ax = normAxis(axis, x.ndim, "slice");
  if (start < 0 || length < 0 || start + length > x.shape[ax]) {
    throw new RangeError(
      `slice: [${start}, ${start + length}) out of range for dim ${ax} of ${fmt(x.shape)}`,
    );
  }
  const shape = [...x.shape];
  shape[ax] = length;
  const xs = stridesOf(x.shape);
  const out = Tensor.empty(shape, x.dtype);
  stridedCopy(x, out, {
    shape,
    srcStrides: xs,
    dstStrides: stridesOf(shape),
    srcOffset: start * xs[ax],
  });
  return out;
}

/** Writes `src` into `dst` at `start` along `axis` (in place). */
export function writeSlice(dst: Tensor, src: Tensor, axis: number, start: number): void {
  const ax = normAxis(axis, dst.ndim, "writeSlice");
  const ds = stridesOf(dst.shape);
  stridedCopy(src, dst, {
    shape: src.shape,
    srcStrides: stridesOf(src.shape),
    dstStrides: ds,
    dstOffset: start * ds[ax],
  });
}

/** Concatenates tensors along `axis`. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new RangeError("concat: no tensors");
  const ax = normAxis(axis, xs[0].ndim, "concat");
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((a, t) => a + t.shape[ax], 0);
  const out = Tensor.empty(shape, xs[0].dtype);
  let at = 0;
  for (const t of xs) {
    writeSlice(out, t, ax, at);
    at += t.shape[ax];
  }
  return out;
}
