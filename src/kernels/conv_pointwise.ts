/**
 * Pointwise (1×1, unpadded) 2-D convolution as a batched matmul: Y[n] = W[O, C] · X[n][C, H·W]
 * is NCHW already, so no staging, im2col or transposes are needed (beside the subsampling of
 * a strided one). On lavapipe this beats the direct kernels, whose register tiles have no tap
 * reuse to exploit at 1×1 (256→64 at 14×14: 6.5 → 10.3 GFLOP/s). The products run on
 * `matmul`, or on a caller's `Product` (mixed precision passes one taking f16 operands, which
 * then must be unstrided: the subsampling copy moves f32 elements).
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { reduce } from "./reduce.ts";
import { full } from "./elementwise.ts";
import { matmul, type MatmulOptions } from "./matmul.ts";
import { stridedCopy } from "./copy.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

/** The matrix product a pointwise conv runs on: `matmul`, or one taking other operand types. */
export type Product = (a: Tensor, b: Tensor, opts: MatmulOptions) => Tensor;

/**
 * Largest weight gradient batch (N·O·C elements) the pointwise path takes: its batched product
 * holds that many floats; past 16M the direct kernel avoids that buffer.
 */
export const POINTWISE_WGRAD_MAX = 1 << 24;

/** Whether the pointwise weight gradient's batched partial products fit `POINTWISE_WGRAD_MAX`. */
export function pointwiseWgradFits(g: Conv2dGeometry): boolean {
  return g.n * g.o * g.c <= POINTWISE_WGRAD_MAX;
}

/**
 * Strides of a strided pointwise conv's sample points: `sampled` within [N, C, H, W],
 * `packed` within [N, C, OH, OW].
 */
function sampleStrides(g: Conv2dGeometry): { sampled: number[]; packed: number[] } {
  return {
    sampled: [g.c * g.h * g.w, g.h * g.w, g.sh * g.w, g.sw],
    packed: [g.c * g.oh * g.ow, g.oh * g.ow, g.ow, 1],
  };
}

/** x [N, C, H, W] at the pointwise conv's sample points, as [N, C, OH·OW]. */
function pointwiseInput(x: Tensor, g: Conv2dGeometry): Tensor {
  if (g.sh === 1 && g.sw === 1) return x.view([g.n, g.c, g.h * g.w]);
  if (x.dtype !== "f32") {
    throw new TypeError(`pointwise conv: a strided one expects f32 input, got ${x.dtype}`);
  }
  const xs = Tensor.empty([g.n, g.c, g.oh * g.ow]);
  const { sampled, packed } = sampleStrides(g);
  stridedCopy(x, xs, { shape: [g.n, g.c, g.oh, g.ow], srcStrides: sampled, dstStrides: packed });
  return xs;
}

/** Pointwise conv forward: one batched matmul W · X[n]. */
export function pointwiseForward(
  x: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  product: Product = matmul,
): Tensor {
  using xs = pointwiseInput(x, g);
  using w2 = weight.view([g.o, g.c]);
  using y3 = product(w2, xs, {});
  return y3.view([g.n, g.o, g.oh, g.ow]);
}

/** Pointwise input gradient: Wᵀ · dY[n], scattered to the sample points when strided. */
export function pointwiseInputGrad(
  dy: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  product: Product = matmul,
): Tensor {
  using w2 = weight.view([g.o, g.c]);
  using dy3 = dy.view([g.n, g.o, g.oh * g.ow]);
  using dxs = product(w2, dy3, { transA: true });
  if (g.sh === 1 && g.sw === 1) return dxs.view([g.n, g.c, g.h, g.w]);
  // Strided: the sampled positions get the product, every other position 0.
  const dx = full([g.n, g.c, g.h, g.w], 0);
  const { sampled, packed } = sampleStrides(g);
  stridedCopy(dxs, dx, { shape: [g.n, g.c, g.oh, g.ow], srcStrides: packed, dstStrides: sampled });
  return dx;
}

/** Σ_n dy[n] · xs[n]ᵀ as one batched matmul and a fixed-order sum over n (deterministic). */
export function pointwiseWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
  product: Product = matmul,
): Tensor {
  using xs = pointwiseInput(x, g);
  using dy3 = dy.view([g.n, g.o, g.oh * g.ow]);
  using per = product(dy3, xs, { transB: true });
  using sum = reduce("sum", per, { axis: 0 }).values;
  return sum.view(weightShape);
}
