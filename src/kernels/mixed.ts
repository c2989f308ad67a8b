/**
 * The f16-input forms of the conv and matmul kernels (mixed precision): inputs are f16
 * tensors, products accumulate in f32 and results are f32, as on tensor cores.
 *
 * NOTE: unlike PyTorch's f16 GEMMs, which read f16 from memory throughout, only some kernels
 * read f16 directly, where the adapter offers `shader-f16`: the workgroup-tiled matmul
 * (`matmulTiledF16`, where the tiled kernel is the one that would run: GPU adapters, or
 * `variant: "tiled"`), also for the pointwise convs that run as batched matmuls (not the
 * forward and weight gradient of strided ones); the implicit-GEMM convs (forward, dgrad,
 * wgrad); and the im2col convs' unfolding of x (forward and wgrad; their other operand is
 * widened). The other kernels (the CPU register matmul, the direct and dense convolutions, the
 * im2col dgrad, cropped convs) widen their f16 inputs to f32 (one exact cast each) and run the
 * f32 kernels. Every way the results are the f32 kernels' on the f16-rounded values, bit for
 * bit (same kernel, tile and summation order; widening is exact); the memory saved is that of
 * the f16 tensors kept between ops (activations saved for backward), and the f16-reading
 * kernels also save the widened copies and halve their input bandwidth.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { cast, hasShaderF16 } from "./cast.ts";
import {
  conv2d,
  conv2dInputGrad,
  type Conv2dOptions,
  conv2dWeightGrad,
  type ConvCandidate,
  convRoute,
  isPointwise,
} from "./conv.ts";
import { igemmForward, igemmInputGrad, igemmWeightGrad } from "./conv_igemm.ts";
import { im2colForward, im2colWeightGrad } from "./conv_im2col.ts";
import { checkDy, type Conv2dGeometry, conv2dGeometry } from "./conv_geometry.ts";
import {
  pointwiseForward,
  pointwiseInputGrad,
  pointwiseWeightGrad,
  pointwiseWgradFits,
  type Product,
} from "./conv_pointwise.ts";
import {
  matmul,
  matmulKernel,
  type MatmulOptions,
  matmulTiledF16,
  type MatmulVariant,
} from "./matmul.ts";

/** Options of the f16 convs: those of the f32 ones, and the kernel of a pointwise conv's matmul. */
export interface Conv2dF16Options extends Conv2dOptions {
  /**
   * Matmul kernel of a pointwise conv (default `auto`); on `tiled` its f16 operands are read
   * directly (as by `matmulF16`). Tests force it.
   */
  matmulVariant?: MatmulVariant;
}

function expectF16(op: string, xs: Tensor[]): void {
  for (const x of xs) {
    if (x.dtype !== "f16") throw new TypeError(`${op}: expected f16 inputs, got ${x.dtype}`);
  }
}

/** The pointwise conv's products on f16 operands: `matmulF16` with the requested kernel. */
function f16Product(opts: Conv2dF16Options): Product {
  return (a, b, o) => matmulF16(a, b, { ...o, variant: opts.matmulVariant });
}

/**
 * Whether `conv2d` takes the pointwise path for `g` and `opts` and it can take f16 operands:
 * the forward and weight gradient subsample strided inputs with an f32 copy, so they must be
 * unstrided.
 */
function f16Pointwise(g: Conv2dGeometry, opts: Conv2dOptions, stridedOk: boolean): boolean {
  return isPointwise(g, opts) && (stridedOk || (g.sh === 1 && g.sw === 1));
}

/** Runs `fn` on f32 widenings of `xs` (all f16), freeing the widenings afterwards. */
function widened<T>(xs: Tensor[], fn: (xf: Tensor[]) => T): T {
  const xf = xs.map((x) => cast(x, "f32"));
  try {
    return fn(xf);
  } finally {
    for (const t of xf) t.dispose();
  }
}

/**
 * The kernel family and tile that `conv2d` & co. would run `pass` on, when that kernel can
 * read f16 (igemm; im2col for forward and wgrad) and the adapter has `shader-f16`; else null
 * (the caller widens).
 */
function f16Kernel(
  g: Conv2dGeometry,
  opts: Conv2dOptions,
  pass: "forward" | "dgrad" | "wgrad",
): ConvCandidate | null {
  if (!hasShaderF16()) return null;
  const route = convRoute(g, opts, pass);
  if (route.kind !== "kernel") return null;
  const { algorithm } = route.plan;
  return algorithm === "igemm" || (algorithm === "im2col" && pass !== "dgrad") ? route.plan : null;
}

/** `conv2d` of f16 `x` and `weight`, accumulated and returned in f32. */
export function conv2dF16(x: Tensor, weight: Tensor, opts: Conv2dF16Options = {}): Tensor {
  expectF16("conv2dF16", [x, weight]);
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  if (f16Pointwise(g, opts, false)) return pointwiseForward(x, weight, g, f16Product(opts));
  const k = f16Kernel(g, opts, "forward");
  if (k?.algorithm === "igemm") return igemmForward(x, weight, g, k.tile);
  if (k?.algorithm === "im2col") return im2colForward(x, weight, g);
  return widened([x, weight], ([xf, wf]) => conv2d(xf, wf, opts));
}

/** `conv2dInputGrad` of f16 `grad` and `weight`, in f32. */
export function conv2dInputGradF16(
  grad: Tensor,
  weight: Tensor,
  opts: Conv2dF16Options & { inputShape: readonly number[] },
): Tensor {
  expectF16("conv2dInputGradF16", [grad, weight]);
  const g = conv2dGeometry(opts.inputShape, weight.shape, opts);
  checkDy("conv2dInputGradF16", grad, g);
  if (f16Pointwise(g, opts, true)) return pointwiseInputGrad(grad, weight, g, f16Product(opts));
  const k = f16Kernel(g, opts, "dgrad");
  if (k?.algorithm === "igemm") return igemmInputGrad(grad, weight, g, k.tile);
  return widened([grad, weight], ([gf, w]) => conv2dInputGrad(gf, w, opts));
}

/** `conv2dWeightGrad` of f16 `x` and `grad`, in f32. */
export function conv2dWeightGradF16(
  x: Tensor,
  grad: Tensor,
  opts: Conv2dF16Options & { weightShape: readonly number[] },
): Tensor {
  expectF16("conv2dWeightGradF16", [x, grad]);
  const g = conv2dGeometry(x.shape, opts.weightShape, opts);
  checkDy("conv2dWeightGradF16", grad, g);
  if (f16Pointwise(g, opts, false) && pointwiseWgradFits(g)) {
    return pointwiseWeightGrad(x, grad, g, opts.weightShape, f16Product(opts));
  }
  const k = f16Kernel(g, opts, "wgrad");
  if (k?.algorithm === "igemm") return igemmWeightGrad(x, grad, g, opts.weightShape, k.tile);
  if (k?.algorithm === "im2col") return im2colWeightGrad(x, grad, g, opts.weightShape);
  return widened([x, grad], ([xf, gf]) => conv2dWeightGrad(xf, gf, opts));
}

/**
 * `matmul` of f16 `a` and `b`, accumulated and returned in f32: read as f16 by the tiled kernel
 * when it is the one that runs and the adapter has `shader-f16`, else widened.
 */
export function matmulF16(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  expectF16("matmulF16", [a, b]);
  if (hasShaderF16() && matmulKernel(a, b, opts) === "tiled") return matmulTiledF16(a, b, opts);
  return widened([a, b], ([af, bf]) => matmul(af, bf, opts));
}
