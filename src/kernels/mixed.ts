/**
 * The f16-input forms of the conv and matmul kernels (mixed precision): inputs are f16
 * tensors, products accumulate in f32 and results are f32, as on tensor cores.
 *
 * NOTE: unlike PyTorch's f16 GEMMs, which read f16 from memory throughout, only the
 * workgroup-tiled matmul reads f16 directly (`matmulTiledF16`, where the adapter offers
 * `shader-f16` and the tiled kernel is the one that would run: GPU adapters, or `variant:
 * "tiled"`). The other kernels (the CPU register matmul, the convolutions) widen their f16
 * inputs to f32 (one exact cast each) and run the f32 kernels. Both ways the results are the
 * f32 kernels' on the f16-rounded values (the f16-reading tiled kernel is bit-identical to the
 * widening path); the memory saved is that of the f16 tensors kept between ops (activations
 * saved for backward), and the f16-reading kernel also halves its input bandwidth.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { cast, hasShaderF16 } from "./cast.ts";
import { conv2d, conv2dInputGrad, type Conv2dOptions, conv2dWeightGrad } from "./conv.ts";
import { matmul, matmulKernel, type MatmulOptions, matmulTiledF16 } from "./matmul.ts";

function expectF16(op: string, xs: Tensor[]): void {
  for (const x of xs) {
    if (x.dtype !== "f16") throw new TypeError(`${op}: expected f16 inputs, got ${x.dtype}`);
  }
}

/** Runs `fn` on f32 widenings of `xs` (all f16), freeing the widenings afterwards. */
function widened<T>(op: string, xs: Tensor[], fn: (xf: Tensor[]) => T): T {
  expectF16(op, xs);
  const xf = xs.map((x) => cast(x, "f32"));
  try {
    return fn(xf);
  } finally {
    for (const t of xf) t.dispose();
  }
}

/** `conv2d` of f16 `x` and `weight`, accumulated and returned in f32. */
export function conv2dF16(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  return widened("conv2dF16", [x, weight], ([xf, wf]) => conv2d(xf, wf, opts));
}

/** `conv2dInputGrad` of f16 `grad` and `weight`, in f32. */
export function conv2dInputGradF16(
  grad: Tensor,
  weight: Tensor,
  opts: Conv2dOptions & { inputShape: readonly number[] },
): Tensor {
  return widened("conv2dInputGradF16", [grad, weight], ([g, w]) => conv2dInputGrad(g, w, opts));
}

/** `conv2dWeightGrad` of f16 `x` and `grad`, in f32. */
export function conv2dWeightGradF16(
  x: Tensor,
  grad: Tensor,
  opts: Conv2dOptions & { weightShape: readonly number[] },
): Tensor {
  return widened("conv2dWeightGradF16", [x, grad], ([xf, g]) => conv2dWeightGrad(xf, g, opts));
}

/**
 * `matmul` of f16 `a` and `b`, accumulated and returned in f32: read as f16 by the tiled kernel
 * when it is the one that runs and the adapter has `shader-f16`, else widened.
 */
export function matmulF16(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  expectF16("matmulF16", [a, b]);
  if (hasShaderF16() && matmulKernel(a, b, opts) === "tiled") return matmulTiledF16(a, b, opts);
  return widened("matmulF16", [a, b], ([af, bf]) => matmul(af, bf, opts));
}
