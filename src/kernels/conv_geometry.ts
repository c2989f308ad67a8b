/**
 * Geometry of a 2-D convolution (NCHW, groups = 1): the options every conv layer takes, their
 * checks and the resolved sizes the kernels work from.
 *
 * @module
 */

import { fmt } from "./shape.ts";
import type { GemmTileName } from "./matmul.ts";

/** Stride, padding and dilation of a 2-D convolution, as (height, width) pairs. */
export interface Conv2dOptions {
  /** Step between output positions; default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side; default 0. */
  padding?: number | readonly [number, number];
  /** Spacing between kernel taps; default 1. */
  dilation?: number | readonly [number, number];
  /**
   * Kernel family: `direct` (the register-blocked implicit GEMMs for CPU adapters), `im2col`
   * (an im2col matrix times the weight on the matmul kernel), `igemm` (the workgroup-tiled
   * implicit GEMM, no im2col matrix), `dense` (an unpadded kernel as large as its input plane
   * as one matmul), `unfold` (the weight unfolded over a tiny input plane, one matmul each way;
   * see conv_unfold.ts) or `auto` (default: unpadded 1×1 convs with output planes of 64+ pixels
   * as a batched matmul straight on NCHW; taps that only ever read padding cropped; dense layers
   * as one matmul; then the measured choice when tuning is on, else on CPU adapters unfold
   * where it applies,
   * im2col for outputs narrower than 8 columns and kernels wider than 7 taps, direct for the
   * rest; on GPUs igemm).
   */
  algorithm?: ConvAlgorithm;
  /** Tile shape of the `igemm` kernels (default: by the product's size, `defaultGemmTile`). */
  tile?: GemmTileName;
}

/** A conv kernel family (see `Conv2dOptions.algorithm`). */
export type ConvAlgorithm = "auto" | "direct" | "im2col" | "igemm" | "dense" | "unfold";

/** Resolved conv geometry. */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  o: number;
  /** Kernel height. */
  kh: number;
  /** Kernel width. */
  kw: number;
  /** Stride height. */
  sh: number;
  /** Stride width. */
  sw: number;
  /** Padding height. */
  ph: number;
  /** Padding width. */
  pw: number;
  /** Dilation height. */
  dh: number;
  /** Dilation width. */
  dw: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
}

function pair(
  v: number | readonly [number, number] | undefined,
  dflt: number,
  name: string,
): [number, number] {
  const p: [number, number] = v === undefined
    ? [dflt, dflt]
    : typeof v === "number"
    ? [v, v]
    : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`conv2d: ${name} must be non-negative integers, got ${p}`);
  }
  return p;
}

/** Output size ⌊(in + 2p − d·(k − 1) − 1)/s⌋ + 1, as PyTorch computes it. */
export function convOutputSize(inSize: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((inSize + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Checks shapes and resolves the geometry of `conv2d(x [N,C,H,W], w [O,C,kh,kw])`. */
export function conv2dGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dOptions = {},
): Conv2dGeometry {
  if (xShape.length !== 4 || wShape.length !== 4 || xShape[1] !== wShape[1]) {
    throw new RangeError(
      `conv2d: expected x [N, C, H, W] and weight [O, C, kh, kw], got ${fmt(xShape)} and ${
        fmt(wShape)
      }`,
    );
  }
  const [n, c, h, w] = xShape;
  const [o, , kh, kw] = wShape;
  const [sh, sw] = pair(opts.stride, 1, "stride");
  const [ph, pw] = pair(opts.padding, 0, "padding");
  const [dh, dw] = pair(opts.dilation, 1, "dilation");
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1) {
    throw new RangeError(`conv2d: stride and dilation must be ≥ 1, got ${[sh, sw]}, ${[dh, dw]}`);
  }
  const oh = convOutputSize(h, kh, sh, ph, dh);
  const ow = convOutputSize(w, kw, sw, pw, dw);
  if (oh < 1 || ow < 1) {
    throw new RangeError(
      `conv2d: output size ${oh}×${ow} < 1 for input ${fmt(xShape)}, kernel ${kh}×${kw}`,
    );
  }
  return { n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow };
}

/** Throws unless `dy` has the output shape [N, O, OH, OW] of `g`. */
export function checkDy(fn: string, dy: { shape: readonly number[] }, g: Conv2dGeometry): void {
  if (fmt(dy.shape) !== fmt([g.n, g.o, g.oh, g.ow])) {
    throw new RangeError(
      `${fn}: dy has shape ${fmt(dy.shape)}, expected ${fmt([g.n, g.o, g.oh, g.ow])}`,
    );
  }
}

/** Taps of a conv kept after cropping those that only ever read padding (see `tapCrop`). */
export interface TapCrop {
  /** First kept tap row and column. */
  ky0: number;
  /** First kept tap column. */
  kx0: number;
  /** Kept tap rows. */
  kh: number;
  /** Kept tap columns. */
  kw: number;
  /** Padding of the cropped conv (rows). */
  ph: number;
  /** Padding of the cropped conv (columns). */
  pw: number;
}

/**
 * The first and last tap along one dim that some output reads inside the input (taps outside
 * only ever multiply padding), or null when every tap is read.
 */
function keptTaps(
  size: number,
  k: number,
  s: number,
  p: number,
  d: number,
  out: number,
): [number, number] | null {
  const reads = (t: number): boolean => {
    for (let o = 0; o < out; o++) {
      const i = o * s - p + t * d;
      if (i >= size) return false;
      if (i >= 0) return true;
    }
    return false;
  };
  let lo = 0;
  while (lo < k - 1 && !reads(lo)) lo++;
  let hi = k - 1;
  while (hi > lo && !reads(hi)) hi--;
  if (lo === 0 && hi === k - 1) return null;
  // The cropped conv pads by p − lo·d on both sides: it must be ≥ 0 and keep the output size.
  const pad = p - lo * d;
  if (pad < 0 || convOutputSize(size, hi - lo + 1, s, pad, d) !== out) return null;
  return [lo, hi];
}

/**
 * The smaller kernel that computes the same conv where a plane is so small that some taps only
 * ever read zero padding (3×3, padding 1 on a 1×1 plane: the centre tap alone; stride 2 on a
 * 2×2 plane: the 2×2 taps that reach it), or null when every tap reads input somewhere. The
 * cropped taps' products are all zero, and their weight gradients are exactly zero.
 */
export function tapCrop(g: Conv2dGeometry): TapCrop | null {
  const rows = keptTaps(g.h, g.kh, g.sh, g.ph, g.dh, g.oh);
  const cols = keptTaps(g.w, g.kw, g.sw, g.pw, g.dw, g.ow);
  if (!rows && !cols) return null;
  const [ky0, ky1] = rows ?? [0, g.kh - 1];
  const [kx0, kx1] = cols ?? [0, g.kw - 1];
  return {
    ky0,
    kx0,
    kh: ky1 - ky0 + 1,
    kw: kx1 - kx0 + 1,
    ph: g.ph - ky0 * g.dh,
    pw: g.pw - kx0 * g.dw,
  };
}
