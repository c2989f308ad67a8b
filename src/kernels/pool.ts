/**
 * Pooling kernels (no tape): max pooling with stored argmax and a gather backward
 * (deterministic, overlapping windows accumulate), and global average pooling.
 *
 * @module
 */

import maxFwdSrc from "../../shaders/max_pool2d_forward.wgsl" with { type: "text" };
import maxBwdSrc from "../../shaders/max_pool2d_backward.wgsl" with { type: "text" };
import avgFwdSrc from "../../shaders/avg_pool_forward.wgsl" with { type: "text" };
import avgBwdSrc from "../../shaders/avg_pool_backward.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fmt } from "./shape.ts";

/** Both max-pool shaders read the invocation count (rows), then the plane geometry. */
const MAX_POOL_FIELDS = {
  total: "u32",
  h: "u32",
  w: "u32",
  oh: "u32",
  ow: "u32",
  k: "u32",
  s: "u32",
  pad: "u32",
} as const;
const MAX_FORWARD = defineKernel("max_pool2d_forward", maxFwdSrc, MAX_POOL_FIELDS);
const MAX_BACKWARD = defineKernel("max_pool2d_backward", maxBwdSrc, MAX_POOL_FIELDS);
const AVG_FORWARD = defineKernel("avg_pool_forward", avgFwdSrc, { planes: "u32", hw: "u32" });
const AVG_BACKWARD = defineKernel("avg_pool_backward", avgBwdSrc, { total: "u32", hw: "u32" });

/** Max-pooling window: square kernel, stride (default = kernel size), zero-sized padding by default. */
export interface MaxPoolOptions {
  /** Window size. */
  kernelSize: number;
  /** Step; defaults to `kernelSize` as in PyTorch. */
  stride?: number;
  /** −inf padding on each side; at most kernelSize / 2. */
  padding?: number;
}

function check4(x: Tensor, op: string): void {
  if (x.ndim !== 4 || x.dtype !== "f32") {
    throw new RangeError(
      `${op}: expected an f32 [N, C, H, W] tensor, got ${fmt(x.shape)} ${x.dtype}`,
    );
  }
}

function poolGeometry(x: Tensor, opts: MaxPoolOptions) {
  const k = opts.kernelSize;
  const s = opts.stride ?? k;
  const p = opts.padding ?? 0;
  if (!(k >= 1 && s >= 1 && p >= 0 && 2 * p <= k) || ![k, s, p].every(Number.isInteger)) {
    throw new RangeError(
      `maxPool2d: expected integers kernelSize ≥ 1, stride ≥ 1, 0 ≤ padding ≤ kernelSize/2, got ${k}, ${s}, ${p}`,
    );
  }
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * p - k) / s) + 1;
  const ow = Math.floor((w + 2 * p - k) / s) + 1;
  if (oh < 1 || ow < 1) {
    throw new RangeError(`maxPool2d: output size ${oh}×${ow} < 1 for input ${fmt(x.shape)}`);
  }
  return { n, c, h, w, oh, ow, k, s, p };
}

/** The max-pool shaders' uniform: invocation count, then the plane geometry. */
function poolUniform(total: number, g: ReturnType<typeof poolGeometry>): ArrayBuffer {
  return MAX_FORWARD.params.pack({ ...g, total, pad: g.p });
}

/** Max pooling: values [N, C, OH, OW] and i32 argmax indices (ih·W + iw within the plane). */
export function maxPool2dForward(
  x: Tensor,
  opts: MaxPoolOptions,
): { values: Tensor; indices: Tensor } {
  check4(x, "maxPool2d");
  const g = poolGeometry(x, opts);
  const values = Tensor.empty([g.n, g.c, g.oh, g.ow]);
  const indices = Tensor.empty([g.n, g.c, g.oh, g.ow], "i32");
  dispatch({
    kernel: "max_pool2d_forward",
    code: MAX_FORWARD.code,
    // One invocation per output row.
    uniform: poolUniform(g.n * g.c * g.oh, g),
    buffers: [x.buffer, values.buffer, indices.buffer],
    workgroups: gridFor(g.n * g.c * g.oh, 64),
  });
  return { values, indices };
}

/** Input gradient of max pooling from the output gradient and stored indices. */
export function maxPool2dBackward(
  g: Tensor,
  indices: Tensor,
  opts: MaxPoolOptions & { inputShape: readonly number[] },
): Tensor {
  const dx = Tensor.empty(opts.inputShape);
  check4(dx, "maxPool2dBackward");
  const geo = poolGeometry(dx, opts);
  dispatch({
    kernel: "max_pool2d_backward",
    code: MAX_BACKWARD.code,
    // One invocation per input row.
    uniform: poolUniform(geo.n * geo.c * geo.h, geo),
    buffers: [g.buffer, indices.buffer, dx.buffer],
    workgroups: gridFor(geo.n * geo.c * geo.h, 64),
  });
  return dx;
}

/** Global average pooling: [N, C, H, W] → [N, C, 1, 1]. */
export function adaptiveAvgPool2dForward(x: Tensor): Tensor {
  check4(x, "adaptiveAvgPool2d");
  const [n, c, h, w] = x.shape;
  const out = Tensor.empty([n, c, 1, 1]);
  dispatch({
    kernel: "avg_pool_forward",
    code: AVG_FORWARD.code,
    uniform: AVG_FORWARD.params.pack({ planes: n * c, hw: h * w }),
    buffers: [x.buffer, out.buffer],
    workgroups: gridFor(n * c, 64),
  });
  return out;
}

/** Input gradient of global average pooling: g [N, C, 1, 1] spread as g / (H·W). */
export function adaptiveAvgPool2dBackward(g: Tensor, inputShape: readonly number[]): Tensor {
  const dx = Tensor.empty(inputShape);
  const hw = inputShape[2] * inputShape[3];
  dispatch({
    kernel: "avg_pool_backward",
    code: AVG_BACKWARD.code,
    uniform: AVG_BACKWARD.params.pack({ total: dx.size, hw }),
    buffers: [g.buffer, dx.buffer],
    workgroups: gridFor(dx.size, 256),
  });
  return dx;
}
