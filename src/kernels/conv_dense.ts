/**
 * Convolutions that are dense layers: a kernel that covers its whole, unpadded input plane
 * (kh = H, kw = W, stride and dilation irrelevant, a 1×1 output). In NCHW, x [N, C·H·W] and the
 * weight [O, C·kh·kw] are already the two matrices, so forward, input gradient and weight
 * gradient are one matmul each with no im2col matrix, no transposes and no copies. ResNet's
 * last stage on small images is made of these once `conv.ts` has cropped the taps that only
 * ever read padding (3×3 on a 1×1 plane → 1×1; 3×3 stride 2 on a 2×2 plane → 2×2).
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { matmul } from "./matmul.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

/** Whether `g` is a dense layer: an unpadded kernel as large as the input plane. */
export function isDenseConv(g: Conv2dGeometry): boolean {
  return g.ph === 0 && g.pw === 0 && g.kh === g.h && g.kw === g.w && g.dh === 1 && g.dw === 1;
}

/** Dense forward: y [N, O] = x [N, C·H·W] · weight [O, C·H·W]ᵀ. */
export function denseForward(x: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  using x2 = x.view([g.n, g.c * g.h * g.w]);
  using w2 = weight.view([g.o, g.c * g.h * g.w]);
  using y2 = matmul(x2, w2, { transB: true });
  return y2.view([g.n, g.o, 1, 1]);
}

/** Dense input gradient: dx [N, C·H·W] = dy [N, O] · weight [O, C·H·W]. */
export function denseInputGrad(dy: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  using dy2 = dy.view([g.n, g.o]);
  using w2 = weight.view([g.o, g.c * g.h * g.w]);
  using dx2 = matmul(dy2, w2);
  return dx2.view([g.n, g.c, g.h, g.w]);
}

/** Dense weight gradient: dw [O, C·H·W] = dy [N, O]ᵀ · x [N, C·H·W] (one fixed-order matmul). */
export function denseWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  using x2 = x.view([g.n, g.c * g.h * g.w]);
  using dy2 = dy.view([g.n, g.o]);
  using dw = matmul(dy2, x2, { transA: true });
  return dw.view(weightShape);
}
