/**
 * The im2col family of 2-D convolution: the input unfolded into an [N·OH·OW, C·kh·kw] matrix
 * (`shaders/conv2d_im2col.wgsl`) times the weight on the matmul kernel, and the input gradient
 * folded back (`shaders/conv2d_col2im.wgsl`). It serves small output planes on CPU adapters;
 * GPUs take the implicit GEMM of `conv_igemm.ts`, which needs no im2col matrix. The forward
 * and weight gradient also take f16 inputs (mixed precision, where the adapter has
 * `shader-f16`): the unfolding reads f16 x directly into the f32 matrix, the other operand is
 * widened; both exact, so results are bit-identical to those on f32 widenings.
 *
 * @module
 */

import im2colSrc from "../../shaders/conv2d_im2col.wgsl" with { type: "text" };
import col2imSrc from "../../shaders/conv2d_col2im.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { f16Form } from "../gpu/wgsl_expand.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { matmul } from "./matmul.ts";
import { cast, hasShaderF16 } from "./cast.ts";
import { permute } from "./copy.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

/** The conv geometry as both shaders read it. */
const COLS_PARAMS = {
  total: "u32",
  c: "u32",
  h: "u32",
  w: "u32",
  oh: "u32",
  ow: "u32",
  kh: "u32",
  kw: "u32",
  sh: "u32",
  sw: "u32",
  ph: "u32",
  pw: "u32",
  dh: "u32",
  dw: "u32",
} as const;
const IM2COL = defineKernel("conv2d_im2col", im2colSrc, COLS_PARAMS);
const IM2COL_F16 = defineKernel(
  "conv2d_im2col_f16",
  f16Form(im2colSrc, "conv2d_im2col"),
  COLS_PARAMS,
);
const COL2IM = defineKernel("conv2d_col2im", col2imSrc, COLS_PARAMS);

/** Rows per grid y dimension (within WebGPU's guaranteed 65535). */
const MAX_GRID_Y = 32768;

/**
 * The im2col matrix [N·OH·OW, C·kh·kw] of `x` (see conv2d_im2col.wgsl): one invocation per
 * (row, input channel).
 */
function im2col(x: Tensor, g: Conv2dGeometry): Tensor {
  const rows = g.n * g.oh * g.ow;
  if (x.dtype === "f16" && !hasShaderF16()) {
    throw new Error("conv2d im2col: an f16 input needs the adapter feature shader-f16");
  }
  const def = x.dtype === "f16" ? IM2COL_F16 : IM2COL;
  const cols = Tensor.empty([rows, g.c * g.kh * g.kw]);
  const y = Math.min(rows, MAX_GRID_Y);
  dispatch({
    kernel: def.name,
    code: def.code,
    uniform: def.params.pack({ ...g, total: rows }),
    buffers: [x.buffer, cols.buffer],
    workgroups: [Math.ceil(g.c / 64), y, Math.ceil(rows / y)],
  });
  return cols;
}

/** dy [N, O, OH, OW] as the [N·OH·OW, O] matrix the im2col path multiplies. */
function pixelsByChannel(dy: Tensor, g: Conv2dGeometry): Tensor {
  using v = dy.view([g.n, g.o, g.oh * g.ow]);
  using t = permute(v, [0, 2, 1]);
  return t.view([g.n * g.oh * g.ow, g.o]);
}

/** An f32 operand: `t` itself, or its exact widening when f16 (freed with the result). */
function f32Operand(t: Tensor): Tensor {
  return t.dtype === "f16" ? cast(t, "f32") : t.view(t.shape);
}

/** Conv2d forward as im2col(x) · weightᵀ. */
export function im2colForward(x: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  using cols = im2col(x, g);
  using wf = f32Operand(weight);
  using w2 = wf.view([g.o, g.c * g.kh * g.kw]);
  using yt = matmul(cols, w2, { transB: true });
  using y3 = yt.view([g.n, g.oh * g.ow, g.o]);
  using yp = permute(y3, [0, 2, 1]);
  return yp.view([g.n, g.o, g.oh, g.ow]);
}

/** Input gradient: col2im(dy as pixels × channels · weight). */
export function im2colInputGrad(dy: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  using dyt = pixelsByChannel(dy, g);
  using w2 = weight.view([g.o, g.c * g.kh * g.kw]);
  using dcols = matmul(dyt, w2);
  const dx = Tensor.empty([g.n, g.c, g.h, g.w]);
  dispatch({
    kernel: COL2IM.name,
    code: COL2IM.code,
    uniform: COL2IM.params.pack({ ...g, total: dx.size }),
    buffers: [dcols.buffer, dx.buffer],
    workgroups: gridFor(dx.size, 256),
  });
  return dx;
}

/** Weight gradient: (dy as pixels × channels)ᵀ · im2col(x), shaped as `weightShape`. */
export function im2colWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  using cols = im2col(x, g);
  using dyf = f32Operand(dy);
  using dyt = pixelsByChannel(dyf, g);
  using dw = matmul(dyt, cols, { transA: true });
  return dw.view(weightShape);
}
