/**
 * 2-D convolution kernels (NCHW, no bias, groups = 1): forward, input gradient (dgrad) and
 * weight gradient (wgrad), and the choice among the six algorithm families:
 * `conv_pointwise.ts` (1×1 as a batched matmul), `conv_dense.ts` (a kernel covering its whole
 * input plane as one dense layer), `conv_unfold.ts` (the weight unfolded over a tiny plane, on
 * CPU adapters), `conv_im2col.ts` (im2col matrix × weight),
 * `conv_direct.ts` (register-blocked implicit GEMMs for CPU adapters) and `conv_igemm.ts`
 * (workgroup-tiled implicit GEMMs for GPUs). Geometry lives in `conv_geometry.ts`; taps that only
 * ever read padding are cropped first (`conv_crop.ts`). All reductions run in a fixed order:
 * results are deterministic.
 *
 * @module
 */

import { gpu } from "../gpu/device.ts";
import { refinedCandidate, splitCandidate, tunedChoice } from "../gpu/tune.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  checkDy,
  type Conv2dGeometry,
  conv2dGeometry,
  type Conv2dOptions,
  type TapCrop,
  tapCrop,
} from "./conv_geometry.ts";
import { DIRECT_MAX_KW, directForward, directInputGrad, directWeightGrad } from "./conv_direct.ts";
import { GEMM_TILE_NAMES, type GemmTileName, tunedTile } from "./matmul.ts";
import { igemmForward, igemmInputGrad, igemmWeightGrad } from "./conv_igemm.ts";
import { denseForward, denseInputGrad, denseWeightGrad, isDenseConv } from "./conv_dense.ts";
import { cropWeight, expandWeight } from "./conv_crop.ts";
import { im2colForward, im2colInputGrad, im2colWeightGrad } from "./conv_im2col.ts";
import {
  isUnfoldConv,
  UNFOLD_MAX_PIXELS,
  unfoldForward,
  unfoldInputGrad,
  unfoldOnDevice,
  unfoldWeight,
  unfoldWeightGrad,
} from "./conv_unfold.ts";
import {
  pointwiseForward,
  pointwiseInputGrad,
  pointwiseWeightGrad,
  pointwiseWgradFits,
} from "./conv_pointwise.ts";

export {
  type Conv2dGeometry,
  conv2dGeometry,
  type Conv2dOptions,
  type ConvAlgorithm,
  convOutputSize,
} from "./conv_geometry.ts";
export { type ConvTile, forwardTile, type WgradTile, wgradTile } from "./conv_direct.ts";

/** Largest im2col matrix (elements) the measured choice may pick: 1 GiB of f32. */
export const IM2COL_MAX_COLS = 1 << 28;

/**
 * The kernel family that serves a conv that is not pointwise: the measured one when tuning is
 * on (`src/kernels/tuning.ts`, family `conv2d`), else the heuristic. The heuristic on CPU
 * adapters: the im2col path takes outputs narrower than 8 columns (ResNet's late stages on
 * small images: 4×4, 2×2, 1×1), which would leave most lanes of the row-blocked direct kernels
 * computing padding while their im2col matrices stay small; the direct kernels take the rest.
 * Their register tiles (up to 64 vec4 accumulators per invocation) would spill on a real GPU,
 * which gets the workgroup-tiled implicit GEMM instead.
 */
export function convAlgorithm(
  g: Conv2dGeometry,
  opts: Conv2dOptions = {},
): "direct" | "im2col" | "igemm" {
  return convPlan(g, opts).algorithm;
}

/**
 * The kernel family and, for `igemm`, the tile a non-pointwise conv runs with: `opts.tile`
 * when given, else a tuned one (a `conv2d` table entry `igemm:<tile>`), else none (each product
 * takes `defaultGemmTile`). See `convAlgorithm` for the family.
 */
export function convPlan(g: Conv2dGeometry, opts: Conv2dOptions = {}): ConvCandidate {
  const algorithm = opts.algorithm ?? "auto";
  const withTile = (a: "direct" | "im2col" | "igemm", tuned?: GemmTileName): ConvCandidate => {
    const tile = opts.tile ?? tuned;
    return a === "igemm" && tile ? { algorithm: a, tile } : { algorithm: a };
  };
  if (algorithm === "igemm" || algorithm === "im2col") return withTile(algorithm);
  if (algorithm === "dense" || algorithm === "unfold") {
    throw new RangeError(`convAlgorithm: ${algorithm} is chosen by conv2d itself`);
  }
  // Kernels wider than 7 taps never take the direct path (its tiles would spill).
  const wide = g.kw > DIRECT_MAX_KW;
  if (algorithm === "direct") return { algorithm: wide ? "im2col" : "direct" };
  const colsSize = g.n * g.oh * g.ow * g.c * g.kh * g.kw;
  const heuristic = kernelHeuristic(g);
  const choice = tunedChoice("conv2d", convTuneDims(g), heuristic);
  const { base } = splitCandidate(choice);
  // A table entry that cannot run at this shape (a hand-edited file) keeps the heuristic.
  if (
    (base !== "direct" && base !== "im2col" && base !== "igemm") ||
    (base === "direct" && wide) || (base === "im2col" && colsSize > IM2COL_MAX_COLS)
  ) {
    return withTile(heuristic);
  }
  return withTile(base, tunedTile(choice));
}

/** The kernel family `auto` takes without a measured choice (see `convAlgorithm`). */
function kernelHeuristic(g: Conv2dGeometry): "direct" | "im2col" | "igemm" {
  if (!gpu().adapter.isCpu) return "igemm";
  if (g.kw > DIRECT_MAX_KW) return "im2col";
  const colsSize = g.n * g.oh * g.ow * g.c * g.kh * g.kw;
  if (colsSize > IM2COL_MAX_COLS) return "direct";
  return g.ow < 8 && colsSize <= 1 << 24 ? "im2col" : "direct";
}

/** The conv2d tuning family's shape: [N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw]. */
export function convTuneDims(g: Conv2dGeometry): number[] {
  return [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw];
}

/**
 * Whether this is a pointwise conv (1×1, no padding) that runs as a batched matmul (see
 * conv_pointwise.ts). Planes under 64 pixels would leave the matmul's column tiles mostly
 * empty; the im2col path folds the batch into the rows instead (1×1 output planes: 0.2 vs
 * 8 GFLOP/s).
 */
export function isPointwise(g: Conv2dGeometry, opts: Conv2dOptions): boolean {
  return (opts.algorithm ?? "auto") === "auto" && g.kh === 1 && g.kw === 1 && g.ph === 0 &&
    g.pw === 0 && g.oh * g.ow >= 64;
}

/**
 * Whether the conv runs as a dense layer (conv_dense.ts): forced with `algorithm: "dense"`
 * (which needs a kernel covering the whole unpadded input), or automatically when it is one.
 */
function isDense(g: Conv2dGeometry, opts: Conv2dOptions): boolean {
  const algorithm = opts.algorithm ?? "auto";
  if (algorithm === "dense" && !isDenseConv(g)) {
    throw new RangeError(
      `conv2d: algorithm "dense" needs an unpadded kernel as large as the input plane, got kernel ${g.kh}×${g.kw}, input ${g.h}×${g.w}, padding ${g.ph}×${g.pw}`,
    );
  }
  return algorithm === "dense" || (algorithm === "auto" && isDenseConv(g));
}

/**
 * Whether the conv runs with its weight unfolded over a tiny plane (conv_unfold.ts: a 3×3 conv
 * on a 2×2 plane as one matmul with 2.25× fewer products than im2col): forced with
 * `algorithm: "unfold"` (which needs such a plane), or for an `auto` conv where it applies and
 * is the measured choice (a `conv2d` candidate), else the heuristic (CPU adapters, where it
 * was measured).
 */
function isUnfold(g: Conv2dGeometry, opts: Conv2dOptions): boolean {
  const algorithm = opts.algorithm ?? "auto";
  if (algorithm === "unfold" && !isUnfoldConv(g)) {
    throw new RangeError(
      `conv2d: algorithm "unfold" needs a dilation-1 conv on a plane of at most ${UNFOLD_MAX_PIXELS} pixels whose unfolded weight is 90 % taps, with C and OH·OW multiples of 4; got input ${g.c}×${g.h}×${g.w}, kernel ${g.kh}×${g.kw}, output ${g.oh}×${g.ow}`,
    );
  }
  if (algorithm !== "auto") return algorithm === "unfold";
  if (!isUnfoldConv(g)) return false;
  const heuristic = unfoldOnDevice(g) ? "unfold" : kernelHeuristic(g);
  return tunedChoice("conv2d", convTuneDims(g), heuristic) === "unfold";
}

/**
 * The taps of an `auto` conv worth cropping: on planes so small that some taps only ever read
 * padding (ResNet's 1×1 and 2×2 planes), the conv runs on the smaller kernel, which skips those
 * multiplications by zero (3×3 on a 1×1 plane: 9× fewer).
 */
function autoCrop(g: Conv2dGeometry, opts: Conv2dOptions): TapCrop | null {
  return (opts.algorithm ?? "auto") === "auto" ? tapCrop(g) : null;
}

/** `opts` for the cropped conv (its padding; the algorithm stays `auto`). */
function croppedOpts<T extends Conv2dOptions>(opts: T, crop: TapCrop): T {
  return { ...opts, padding: [crop.ph, crop.pw] };
}

/** One candidate of the conv family: the kernel family and, for `igemm`, its tile. */
export interface ConvCandidate {
  /** Kernel family (forced through `Conv2dOptions.algorithm`). */
  readonly algorithm: "direct" | "im2col" | "igemm";
  /** Tile of the `igemm` kernels (`Conv2dOptions.tile`). */
  readonly tile?: GemmTileName;
}

/**
 * Every conv kernel family and igemm tile a tuner may time for a non-pointwise conv (each
 * works on every adapter; `direct` falls back to im2col for kernels wider than 7 taps).
 */
export function convCandidates(): ConvCandidate[] {
  return [
    { algorithm: "direct" },
    { algorithm: "im2col" },
    ...GEMM_TILE_NAMES.map((tile) => ({ algorithm: "igemm" as const, tile })),
  ];
}

/**
 * A conv candidate's name in a tuning table: `direct`, `im2col`, `igemm` (each product takes
 * the tile `defaultGemmTile` picks) or `igemm:<tile>`.
 */
export function convCandidateName(c: ConvCandidate): string {
  return c.tile === undefined ? c.algorithm : refinedCandidate(c.algorithm, c.tile);
}

/**
 * The `conv2d` options that run the candidate named `name` (see `convCandidateName`; also
 * `unfold`, the tuner's candidate for tiny planes).
 */
export function convCandidateOptions(
  name: string,
): ConvCandidate | { readonly algorithm: "unfold" } {
  const { base, detail } = splitCandidate(name);
  if (base === "unfold" && detail === undefined) return { algorithm: "unfold" };
  if (base !== "direct" && base !== "im2col" && base !== "igemm") {
    throw new RangeError(
      `conv2d: unknown candidate "${name}", expected direct, im2col, igemm[:tile] or unfold`,
    );
  }
  return detail === undefined
    ? { algorithm: base }
    : { algorithm: base, tile: detail as GemmTileName };
}

/** Which path a conv takes (see `convRoute`). */
export type ConvRoute =
  | { readonly kind: "pointwise" }
  | { readonly kind: "crop"; readonly crop: TapCrop }
  | { readonly kind: "dense" }
  | { readonly kind: "unfold" }
  | { readonly kind: "kernel"; readonly plan: ConvCandidate };

/**
 * The path `conv2d` (`pass` forward), `conv2dInputGrad` (dgrad) or `conv2dWeightGrad` (wgrad)
 * takes for `g` and `opts`, in the order they try them: a pointwise matmul, the cropped conv
 * (then routed again), a dense layer, the weight unfolded over a tiny plane, else a kernel
 * family and tile (`convPlan`).
 */
export function convRoute(
  g: Conv2dGeometry,
  opts: Conv2dOptions,
  pass: "forward" | "dgrad" | "wgrad",
): ConvRoute {
  if (isPointwise(g, opts) && (pass !== "wgrad" || pointwiseWgradFits(g))) {
    return { kind: "pointwise" };
  }
  const crop = autoCrop(g, opts);
  if (crop) return { kind: "crop", crop };
  if (isDense(g, opts)) return { kind: "dense" };
  if (isUnfold(g, opts)) return { kind: "unfold" };
  return { kind: "kernel", plan: convPlan(g, opts) };
}

/** Conv2d forward: x [N, C, H, W] ⋆ weight [O, C, kh, kw] → [N, O, OH, OW] (no bias). */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  const route = convRoute(g, opts, "forward");
  if (route.kind === "pointwise") return pointwiseForward(x, weight, g);
  if (route.kind === "crop") {
    using wc = cropWeight(weight, g, route.crop);
    return conv2d(x, wc, croppedOpts(opts, route.crop));
  }
  if (route.kind === "dense") return denseForward(x, weight, g);
  if (route.kind === "unfold") {
    using wu = unfoldWeight(weight, g);
    return unfoldForward(x, wu, g);
  }
  const { plan } = route;
  switch (plan.algorithm) {
    case "igemm":
      return igemmForward(x, weight, g, plan.tile);
    case "im2col":
      return im2colForward(x, weight, g);
    case "direct":
      return directForward(x, weight, g);
  }
}

/** Input gradient of `conv2d`: dx [N, C, H, W] from dy [N, O, OH, OW]. */
export function conv2dInputGrad(
  dy: Tensor,
  weight: Tensor,
  opts: Conv2dOptions & { inputShape: readonly number[] },
): Tensor {
  const g = conv2dGeometry(opts.inputShape, weight.shape, opts);
  checkDy("conv2dInputGrad", dy, g);
  const route = convRoute(g, opts, "dgrad");
  if (route.kind === "pointwise") return pointwiseInputGrad(dy, weight, g);
  if (route.kind === "crop") {
    using wc = cropWeight(weight, g, route.crop);
    return conv2dInputGrad(dy, wc, croppedOpts(opts, route.crop));
  }
  if (route.kind === "dense") return denseInputGrad(dy, weight, g);
  if (route.kind === "unfold") {
    using wu = unfoldWeight(weight, g);
    return unfoldInputGrad(dy, wu, g);
  }
  const { plan } = route;
  switch (plan.algorithm) {
    case "igemm":
      return igemmInputGrad(dy, weight, g, plan.tile);
    case "im2col":
      return im2colInputGrad(dy, weight, g);
    case "direct":
      return directInputGrad(dy, weight, g);
  }
}

/**
 * Weight gradient of `conv2d`: dw [O, C, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] ·
 * x[n, c, oh·s − p + ky·d, ow·s − p + kx·d]. Deterministic on every path.
 */
export function conv2dWeightGrad(
  x: Tensor,
  dy: Tensor,
  opts: Conv2dOptions & { weightShape: readonly number[] },
): Tensor {
  const g = conv2dGeometry(x.shape, opts.weightShape, opts);
  checkDy("conv2dWeightGrad", dy, g);
  const route = convRoute(g, opts, "wgrad");
  if (route.kind === "pointwise") return pointwiseWeightGrad(x, dy, g, opts.weightShape);
  if (route.kind === "crop") {
    // The cropped taps' gradients are exactly zero.
    const { crop } = route;
    const shape = [g.o, g.c, crop.kh, crop.kw];
    using dwc = conv2dWeightGrad(x, dy, { ...croppedOpts(opts, crop), weightShape: shape });
    return expandWeight(dwc, g, crop);
  }
  if (route.kind === "dense") return denseWeightGrad(x, dy, g, opts.weightShape);
  if (route.kind === "unfold") return unfoldWeightGrad(x, dy, g, opts.weightShape);
  const { plan } = route;
  switch (plan.algorithm) {
    case "igemm":
      return igemmWeightGrad(x, dy, g, opts.weightShape, plan.tile);
    case "im2col":
      return im2colWeightGrad(x, dy, g, opts.weightShape);
    case "direct":
      return directWeightGrad(x, dy, g, opts.weightShape);
  }
}
