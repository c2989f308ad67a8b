/**
 * Convolutions on tiny planes as dense layers over the whole plane: the weight unfolded into a
 * [C·H·W, O·OH·OW] matrix `wu` whose entry for input pixel q and output pixel p is the tap that
 * links them (0 where none does). In NCHW, x is already the [N, C·H·W] matrix and y the
 * [N, O·OH·OW] one, so forward (x · wu), input gradient (dy · wuᵀ) and weight gradient
 * (xᵀ · dy, folded back into taps) are one matmul each: no im2col matrix, no col2im, no
 * transposes. Worth it where nearly every (q, p) pair has a tap: a 3×3 conv (padding 1) on a 2×2
 * plane multiplies 9 taps per output pixel in im2col, of which 5 read padding, while all 16
 * (q, p) pairs of its unfolded weight are taps (2.25× fewer products). The unfolding
 * (`shaders/conv2d_unfold.wgsl`) and the fold (`shaders/conv2d_fold.wgsl`) are compiled per
 * geometry and fully unrolled; every sum has a fixed order (deterministic). It is a `conv2d`
 * tuning candidate where it applies; without a measured choice `auto` takes it on CPU adapters
 * only, where it was measured (lavapipe).
 *
 * @module
 */

import unfoldSrc from "../../shaders/conv2d_unfold.wgsl" with { type: "text" };
import foldSrc from "../../shaders/conv2d_fold.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { dispatch } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { matmul } from "./matmul.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

const UNFOLD = defineKernel("conv2d_unfold", unfoldSrc, { o: "u32", c: "u32" });
const FOLD = defineKernel("conv2d_fold", foldSrc, { o: "u32", c: "u32" });

/** Input planes up to this many pixels may be unfolded (the matrix grows as (H·W)²). */
export const UNFOLD_MAX_PIXELS = 16;

/** The (input, output) index pairs along one dim that some tap links. */
function linkedPairs(size: number, out: number, k: number, s: number, p: number): number {
  let pairs = 0;
  for (let o = 0; o < out; o++) {
    const start = o * s - p;
    pairs += Math.max(0, Math.min(size, start + k) - Math.max(0, start));
  }
  return pairs;
}

/**
 * The share of the unfolded weight's entries that are taps (the rest are zeros the matmul
 * would multiply): 1 for a 3×3 conv with padding 1 on a 2×2 plane; 0 with dilation.
 */
export function unfoldDensity(g: Conv2dGeometry): number {
  if (g.dh !== 1 || g.dw !== 1) return 0;
  const rows = linkedPairs(g.h, g.oh, g.kh, g.sh, g.ph);
  const cols = linkedPairs(g.w, g.ow, g.kw, g.sw, g.pw);
  return (rows * cols) / (g.h * g.w * g.oh * g.ow);
}

/**
 * Whether a conv can run unfolded: dilation 1, an input plane of at most `UNFOLD_MAX_PIXELS`
 * pixels, at least 90 % of the unfolded weight made of taps, C and OH·OW multiples of 4 (the
 * kernels' vec4s). `conv.ts` takes it for `auto` convs on CPU adapters (`unfoldOnDevice`).
 */
export function isUnfoldConv(g: Conv2dGeometry): boolean {
  return g.h * g.w <= UNFOLD_MAX_PIXELS && unfoldDensity(g) >= 0.9 && g.c % 4 === 0 &&
    (g.oh * g.ow) % 4 === 0;
}

/** Whether `auto` picks the unfolded path for `g` here: CPU adapters, where it was measured. */
export function unfoldOnDevice(g: Conv2dGeometry): boolean {
  return gpu().adapter.isCpu && isUnfoldConv(g);
}

function launch(src: Tensor, dst: Tensor, g: Conv2dGeometry, fold: boolean): void {
  const wg = 8;
  const def = fold ? FOLD : UNFOLD;
  dispatch({
    kernel: def.name,
    code: def.code,
    overrides: {
      WG: wg,
      H: g.h,
      W: g.w,
      OH: g.oh,
      OW: g.ow,
      KH: g.kh,
      KW: g.kw,
      SH: g.sh,
      SW: g.sw,
      PH: g.ph,
      PW: g.pw,
    },
    uniform: def.params.pack({ o: g.o, c: g.c }),
    buffers: [src.buffer, dst.buffer],
    workgroups: [Math.ceil(g.o / wg), g.c / 4, 1],
  });
}

/** The weight [O, C, kh, kw] unfolded over the plane: wu [C·H·W, O·OH·OW]. */
export function unfoldWeight(weight: Tensor, g: Conv2dGeometry): Tensor {
  const wu = Tensor.empty([g.c * g.h * g.w, g.o * g.oh * g.ow]);
  launch(weight, wu, g, false);
  return wu;
}

/** Forward: y [N, O·OH·OW] = x [N, C·H·W] · wu. */
export function unfoldForward(x: Tensor, wu: Tensor, g: Conv2dGeometry): Tensor {
  using x2 = x.view([g.n, g.c * g.h * g.w]);
  using y2 = matmul(x2, wu);
  return y2.view([g.n, g.o, g.oh, g.ow]);
}

/** Input gradient: dx [N, C·H·W] = dy [N, O·OH·OW] · wuᵀ. */
export function unfoldInputGrad(dy: Tensor, wu: Tensor, g: Conv2dGeometry): Tensor {
  using dy2 = dy.view([g.n, g.o * g.oh * g.ow]);
  using dx2 = matmul(dy2, wu, { transB: true });
  return dx2.view([g.n, g.c, g.h, g.w]);
}

/** Weight gradient: dwu = xᵀ · dy (one fixed-order matmul), folded back into [O, C, kh, kw]. */
export function unfoldWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  using x2 = x.view([g.n, g.c * g.h * g.w]);
  using dy2 = dy.view([g.n, g.o * g.oh * g.ow]);
  using dwu = matmul(x2, dy2, { transA: true });
  const dw = Tensor.empty(weightShape);
  launch(dwu, dw, g, true);
  return dw;
}
