/**
 * 2-D convolution kernels (NCHW, no bias, groups = 1): forward, input gradient (dgrad) and
 * weight gradient (wgrad). The direct family is implicit GEMMs register-blocked for CPU
 * adapters, with no im2col buffer: inputs are staged once into a zero-padded, vec4-aligned,
 * stride-phase-split copy (`shaders/conv2d_pad.wgsl`) so the hot loops read whole vec4 runs
 * without bounds checks, and weights are packed so 4 output channels are one vec4
 * (`shaders/conv2d_weight_pack.wgsl`). Output planes narrower than 8 columns (and kernels
 * wider than 7) use an im2col matrix and the matmul kernel instead, where that matrix is
 * small. All reductions run in a fixed order: results are deterministic.
 *
 * @module
 */

import padSrc from "../../shaders/conv2d_pad.wgsl" with { type: "text" };
import packSrc from "../../shaders/conv2d_weight_pack.wgsl" with { type: "text" };
import forwardSrc from "../../shaders/conv2d_forward.wgsl" with { type: "text" };
import forwardK7Src from "../../shaders/conv2d_forward_k7.wgsl" with { type: "text" };
import wgradSrc from "../../shaders/conv2d_wgrad.wgsl" with { type: "text" };
import wgradK7Src from "../../shaders/conv2d_wgrad_k7.wgsl" with { type: "text" };
import wgradNhwcSrc from "../../shaders/conv2d_wgrad_nhwc.wgsl" with { type: "text" };
import { dispatch, gridFor, Uniforms } from "../gpu/dispatch.ts";
import { gpu } from "../gpu/device.ts";
import { tunedChoice } from "../gpu/tune.ts";
import { Tensor } from "../gpu/tensor.ts";
import { reduce } from "./reduce.ts";
import { fmt } from "./shape.ts";
import { full } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { permute, stridedCopy } from "./copy.ts";
import im2colSrc from "../../shaders/conv2d_im2col.wgsl" with { type: "text" };
import col2imSrc from "../../shaders/conv2d_col2im.wgsl" with { type: "text" };

/** Stride, padding and dilation of a 2-D convolution, as (height, width) pairs. */
export interface Conv2dOptions {
  /** Step between output positions; default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side; default 0. */
  padding?: number | readonly [number, number];
  /** Spacing between kernel taps; default 1. */
  dilation?: number | readonly [number, number];
  /**
   * Kernel family: `direct` (the row-blocked implicit GEMMs), `im2col` (an im2col matrix times
   * the weight on the matmul kernel) or `auto` (default: unpadded 1×1 convs with output planes
   * of 64+ pixels as a batched matmul straight on NCHW; otherwise on CPU adapters im2col for outputs narrower than 8
   * columns and kernels wider than 7 taps, direct for the rest; on GPUs im2col unless its
   * matrix would exceed 1 GiB).
   */
  algorithm?: "auto" | "direct" | "im2col";
}

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

function pair(v: number | readonly [number, number] | undefined, dflt: number, name: string) {
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

const roundTo = (v: number, m: number) => Math.ceil(v / m) * m;
const round4 = (v: number) => roundTo(v, 4);

/**
 * Staging copy of [P, H, W] planes into [P, hp, phs, wq] (see conv2d_pad.wgsl); one phase,
 * no offset and no dilation unless given.
 */
function stage(
  x: Tensor,
  planes: number,
  h: number,
  w: number,
  o: {
    hp: number;
    wq: number;
    phs?: number;
    top?: number;
    left?: number;
    dh?: number;
    dw?: number;
  },
): Tensor {
  const { phs = 1, top = 0, left = 0, dh = 1, dw = 1 } = o;
  const out = Tensor.empty([planes, o.hp, phs, o.wq]);
  const rows = planes * o.hp * phs;
  dispatch({
    kernel: "conv2d_pad",
    code: padSrc,
    uniform: new Uniforms().u32(rows).u32(h).u32(w).u32(o.hp).u32(phs).u32(o.wq / 4)
      .i32(top).i32(left).i32(dh).i32(dw).bytes(),
    buffers: [x.buffer, out.buffer],
    workgroups: gridFor(rows, 64),
  });
  return out;
}

/** Which taps a flipped (input-gradient) packing takes: th × tw from (ky0, kx0) backwards. */
interface FlipTaps {
  th: number;
  tw: number;
  ky0: number;
  kx0: number;
  sy: number;
  sx: number;
}

function packWeight(w: Tensor, cols: number, flip: FlipTaps | null): Tensor {
  const [a, b, kh, kw] = w.shape;
  const t = flip ?? { th: kh, tw: kw, ky0: 0, kx0: 0, sy: 0, sx: 0 };
  const rows = (flip ? a : b) * t.th * t.tw;
  const out = Tensor.empty([rows, cols]);
  dispatch({
    kernel: "conv2d_weight_pack",
    code: packSrc,
    overrides: { FLIP: flip ? 1 : 0 },
    uniform: new Uniforms().u32(rows * cols).u32(a).u32(b).u32(kh).u32(kw).u32(cols).u32(t.th)
      .u32(t.tw).u32(t.ky0).u32(t.kx0).u32(t.sy).u32(t.sx).bytes(),
    buffers: [w.buffer, out.buffer],
    workgroups: gridFor(rows * cols, 256),
  });
  return out;
}

/** Tile shape of the forward kernel: 4·tm4 output channels × tn output columns × nb images. */
export interface ConvTile {
  /** Output channels per invocation, in vec4s. */
  tm4: number;
  /** Output columns per invocation (a multiple of 4). */
  tn: number;
  /** Images per invocation (nb·tn ≤ 32, nb·(tn/4 + 1) ≤ 16). */
  nb: number;
}

/**
 * Picks the forward tile for `outChannels` × `outWidth` outputs of `batch` images. Wide column
 * runs pay off most on lavapipe, where input loads dominate: the column count (a multiple of
 * 4, ≤ 32) minimises padded width × (1 + 8/tn), a rough count of loads per output column.
 */
export function forwardTile(outChannels: number, outWidth: number, batch = 1): ConvTile {
  let tn = 4;
  let best = Infinity;
  for (let t = 32; t >= 4; t -= 4) {
    const cost = Math.ceil(outWidth / t) * t * (1 + 8 / t);
    if (cost < best - 1e-9) [best, tn] = [cost, t];
  }
  // Up to 32 columns per invocation, from several images on narrow planes, × 16 output
  // channels: 128 vec4 accumulators measured best (3×3 at 32×32: 16.8 GFLOP/s on one lavapipe
  // thread; 8×8 planes 4 images at a time: 16.3).
  const nb = Math.max(1, Math.min(batch, Math.floor(32 / tn), Math.floor(16 / (tn / 4 + 1))));
  const tm4 = Math.min(4, Math.ceil(outChannels / 4));
  return { tm4, tn, nb };
}

/** The kernel size, stride and dilation overrides every direct conv shader takes. */
function tapOverrides(
  g: { kh: number; kw: number; sh: number; sw: number; dh: number; dw: number },
): Record<string, number> {
  return { KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw };
}

/**
 * The shared implicit-GEMM launch: y[n, o, r, q] = Σ xq[n, c, r·sh + ky·dh, q·sw + kx·dw] ·
 * wp[(c·kh + ky)·kw + kx, o] over an already staged `xq` [n, c, hp, sw, wq] and packed `wp`,
 * written to `into.y` at rows r0 + r·sr, columns c0 + q·sc when given.
 */
function convCore(
  xq: Tensor,
  wp: Tensor,
  g: {
    n: number;
    c: number;
    hp: number;
    wq: number;
    o: number;
    kh: number;
    kw: number;
    sh: number;
    sw: number;
    dh: number;
    dw: number;
    oh: number;
    ow: number;
  },
  tile: ConvTile,
  into?: { y: Tensor; r0: number; sr: number; c0: number; sc: number },
): Tensor {
  const y = into?.y ?? Tensor.empty([g.n, g.o, g.oh, g.ow]);
  const place = into ?? { r0: 0, sr: 1, c0: 0, sc: 1 };
  const owb = Math.ceil(g.ow / tile.tn);
  const op4 = wp.shape[1] / 4;
  const wgX = 8;
  const wgY = 1;
  // The 3-wide shader unrolls kernel rows and columns; larger kernels take the 7-wide one.
  const narrow = g.kw <= 3 && g.kh <= 3;
  dispatch({
    kernel: narrow ? "conv2d_forward" : "conv2d_forward_k7",
    code: narrow ? forwardSrc : forwardK7Src,
    overrides: {
      ...tapOverrides(g),
      TM4: tile.tm4,
      TN: tile.tn,
      NB: tile.nb,
      WG_X: wgX,
      WG_Y: wgY,
    },
    uniform: new Uniforms().u32(g.c).u32(g.hp).u32(g.wq / 4).u32(g.oh).u32(g.ow).u32(owb)
      .u32(g.o).u32(op4).u32(y.shape[2]).u32(y.shape[3]).u32(place.r0).u32(place.sr).u32(place.c0)
      .u32(place.sc).u32(g.n).bytes(),
    buffers: [xq.buffer, wp.buffer, y.buffer],
    workgroups: [
      Math.ceil((g.oh * owb) / wgX),
      Math.ceil(op4 / tile.tm4 / wgY),
      Math.ceil(g.n / tile.nb),
    ],
  });
  return y;
}

/**
 * Width of one staged phase row for a kernel reading output columns [0, cols): the largest
 * tap offset ⌊(kw − 1)·dw / sw⌋ plus the vec4 over-read of unaligned taps.
 */
function stagedWidth(cols: number, sw: number, kw: number, dw: number): number {
  const amax = Math.floor(((kw - 1) * dw) / sw);
  return round4(cols + amax + (amax > 0 ? 4 : 0));
}

/** Stages `x` [N, C, H, W] for the conv kernels (or passes it through when already fit). */
function stageInput(
  x: Tensor,
  g: Conv2dGeometry,
  cols: number,
): { xq: Tensor; hp: number; wq: number; owned: boolean } {
  const wq = stagedWidth(cols, g.sw, g.kw, g.dw);
  const hpNeed = (g.oh - 1) * g.sh + g.dh * (g.kh - 1) + 1;
  if (g.ph === 0 && g.pw === 0 && g.sw === 1 && hpNeed <= g.h && wq === g.w) {
    return { xq: x, hp: g.h, wq, owned: false };
  }
  const xq = stage(x, g.n * g.c, g.h, g.w, { hp: hpNeed, wq, phs: g.sw, top: g.ph, left: g.pw });
  return { xq, hp: hpNeed, wq, owned: true };
}

/**
 * Whether the im2col + matmul path serves this conv: outputs narrower than 8 columns (ResNet's
 * late stages on small images: 4×4, 2×2, 1×1) would leave most lanes of the row-blocked
 * kernels computing padding, while their im2col matrices stay small.
 */
function useIm2col(g: Conv2dGeometry, opts: Conv2dOptions): boolean {
  // Kernels wider than the unrolled 7 taps always take this path.
  if (g.kw > 7 || opts.algorithm === "im2col") return true;
  if (opts.algorithm === "direct") return false;
  const colsSize = g.n * g.oh * g.ow * g.c * g.kh * g.kw;
  // The direct kernels' register tiles (up to 64 vec4 accumulators per invocation) suit CPU
  // adapters; a real GPU would spill them, while its workgroup-tiled matmul is at home with
  // an im2col matrix (up to 1 GiB of it).
  const heuristic = gpu().adapter.isCpu ? g.ow < 8 && colsSize <= 1 << 24 : colsSize <= 1 << 28;
  if (colsSize > 1 << 28) return false;
  // Measured choice when tuning is on (src/kernels/tuning.ts, family "conv2d").
  return tunedChoice("conv2d", convTuneDims(g), heuristic ? "im2col" : "direct") === "im2col";
}

/** The conv2d tuning family's shape: [N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw]. */
export function convTuneDims(g: Conv2dGeometry): number[] {
  return [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw];
}

/** Fills `out` from `src` with conv2d_im2col or conv2d_col2im, one invocation per output. */
function colsPass(
  kernel: "conv2d_im2col" | "conv2d_col2im",
  src: Tensor,
  out: Tensor,
  g: Conv2dGeometry,
): Tensor {
  dispatch({
    kernel,
    code: kernel === "conv2d_im2col" ? im2colSrc : col2imSrc,
    uniform: new Uniforms().u32(out.size).u32(g.c).u32(g.h).u32(g.w).u32(g.oh).u32(g.ow)
      .u32(g.kh).u32(g.kw).u32(g.sh).u32(g.sw).u32(g.ph).u32(g.pw).u32(g.dh).u32(g.dw).bytes(),
    buffers: [src.buffer, out.buffer],
    workgroups: gridFor(out.size, 256),
  });
  return out;
}

/** The im2col matrix [N·OH·OW, C·kh·kw] of `x` (see conv2d_im2col.wgsl). */
function im2col(x: Tensor, g: Conv2dGeometry): Tensor {
  return colsPass("conv2d_im2col", x, Tensor.empty([g.n * g.oh * g.ow, g.c * g.kh * g.kw]), g);
}

/** dx [N, C, H, W] gathered from the gradient of the im2col matrix. */
function col2im(dcols: Tensor, g: Conv2dGeometry): Tensor {
  return colsPass("conv2d_col2im", dcols, Tensor.empty([g.n, g.c, g.h, g.w]), g);
}

/** dy [N, O, OH, OW] as the [N·OH·OW, O] matrix the im2col path multiplies. */
function pixelsByChannel(dy: Tensor, g: Conv2dGeometry): Tensor {
  const v = dy.view([g.n, g.o, g.oh * g.ow]);
  const t = permute(v, [0, 2, 1]);
  v.dispose();
  const r = t.view([g.n * g.oh * g.ow, g.o]);
  t.dispose();
  return r;
}

function forwardIm2col(x: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  const cols = im2col(x, g);
  const w2 = weight.view([g.o, g.c * g.kh * g.kw]);
  const yt = matmul(cols, w2, { transB: true });
  cols.dispose();
  w2.dispose();
  const y3 = yt.view([g.n, g.oh * g.ow, g.o]);
  yt.dispose();
  const yp = permute(y3, [0, 2, 1]);
  y3.dispose();
  const y = yp.view([g.n, g.o, g.oh, g.ow]);
  yp.dispose();
  return y;
}

/**
 * Whether this is a pointwise conv (1×1, no padding) that runs as a batched matmul: Y[n] =
 * W[O, C] · X[n][C, H·W] is NCHW already, so no staging, im2col or transposes are needed
 * (beside the subsampling of a strided one). On lavapipe this beats the direct kernels, whose
 * register tiles have no tap reuse to exploit at 1×1 (256→64 at 14×14: 6.5 → 10.3 GFLOP/s).
 */
function isPointwise(g: Conv2dGeometry, opts: Conv2dOptions): boolean {
  // Planes under 64 pixels would leave the matmul's column tiles mostly empty; the im2col
  // path folds the batch into the rows instead (1×1 output planes: 0.2 vs 8 GFLOP/s).
  return (opts.algorithm ?? "auto") === "auto" && g.kh === 1 && g.kw === 1 && g.ph === 0 &&
    g.pw === 0 && g.oh * g.ow >= 64;
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
  const xs = Tensor.empty([g.n, g.c, g.oh * g.ow]);
  const { sampled, packed } = sampleStrides(g);
  stridedCopy(x, xs, { shape: [g.n, g.c, g.oh, g.ow], srcStrides: sampled, dstStrides: packed });
  return xs;
}

function pointwiseForward(x: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  const xs = pointwiseInput(x, g);
  const w2 = weight.view([g.o, g.c]);
  const y3 = matmul(w2, xs);
  xs.dispose();
  w2.dispose();
  const y = y3.view([g.n, g.o, g.oh, g.ow]);
  y3.dispose();
  return y;
}

function pointwiseInputGrad(dy: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  const w2 = weight.view([g.o, g.c]);
  const dy3 = dy.view([g.n, g.o, g.oh * g.ow]);
  const dxs = matmul(w2, dy3, { transA: true });
  w2.dispose();
  dy3.dispose();
  if (g.sh === 1 && g.sw === 1) {
    const dx = dxs.view([g.n, g.c, g.h, g.w]);
    dxs.dispose();
    return dx;
  }
  // Strided: the sampled positions get the product, every other position 0.
  const dx = full([g.n, g.c, g.h, g.w], 0);
  const { sampled, packed } = sampleStrides(g);
  stridedCopy(dxs, dx, { shape: [g.n, g.c, g.oh, g.ow], srcStrides: packed, dstStrides: sampled });
  dxs.dispose();
  return dx;
}

/** Σ_n dy[n] · xs[n]ᵀ as one batched matmul and a fixed-order sum over n (deterministic). */
function pointwiseWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  const xs = pointwiseInput(x, g);
  const dy3 = dy.view([g.n, g.o, g.oh * g.ow]);
  const per = matmul(dy3, xs, { transB: true });
  xs.dispose();
  dy3.dispose();
  const sum = reduce("sum", per, { axis: 0 }).values;
  per.dispose();
  const dw = sum.view(weightShape);
  sum.dispose();
  return dw;
}

/** Conv2d forward: x [N, C, H, W] ⋆ weight [O, C, kh, kw] → [N, O, OH, OW] (no bias). */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry(x.shape, weight.shape, opts);
  if (isPointwise(g, opts)) return pointwiseForward(x, weight, g);
  if (useIm2col(g, opts)) return forwardIm2col(x, weight, g);
  const tile = forwardTile(g.o, g.ow, g.n);
  const { xq, hp, wq, owned } = stageInput(x, g, Math.ceil(g.ow / tile.tn) * tile.tn);
  const wp = packWeight(weight, roundTo(g.o, 4 * tile.tm4), null);
  const y = convCore(xq, wp, { ...g, hp, wq }, tile);
  if (owned) xq.dispose();
  wp.dispose();
  return y;
}

function checkDy(fn: string, dy: Tensor, g: Conv2dGeometry): void {
  if (fmt(dy.shape) !== fmt([g.n, g.o, g.oh, g.ow])) {
    throw new RangeError(
      `${fn}: dy has shape ${fmt(dy.shape)}, expected ${fmt([g.n, g.o, g.oh, g.ow])}`,
    );
  }
}

/**
 * Input gradient of `conv2d`: dx [N, C, H, W] from dy [N, O, OH, OW], on the forward kernel
 * with the weight transposed and flipped. Stride 1: one conv of dy padded by d·(k − 1) − p.
 * Stride s > 1 with dilation 1: one conv per output phase (ih mod s, iw mod s), each over dy
 * with only the taps that reach that phase, written to its strided positions of dx (no
 * zero-inserted dy, so no wasted FLOPs). Other dilated strided convs use zero insertion.
 */
export function conv2dInputGrad(
  dy: Tensor,
  weight: Tensor,
  opts: Conv2dOptions & { inputShape: readonly number[] },
): Tensor {
  const g = conv2dGeometry(opts.inputShape, weight.shape, opts);
  checkDy("conv2dInputGrad", dy, g);
  if (isPointwise(g, opts)) return pointwiseInputGrad(dy, weight, g);
  if (useIm2col(g, opts)) {
    const dyt = pixelsByChannel(dy, g);
    const w2 = weight.view([g.o, g.c * g.kh * g.kw]);
    const dcols = matmul(dyt, w2);
    dyt.dispose();
    w2.dispose();
    const dx = col2im(dcols, g);
    dcols.dispose();
    return dx;
  }
  if ((g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1) return inputGradPhased(dy, weight, g);
  const tile = forwardTile(g.c, g.w, g.n);
  const wq = stagedWidth(Math.ceil(g.w / tile.tn) * tile.tn, 1, g.kw, g.dw);
  const hp = g.h + g.dh * (g.kh - 1);
  const top = g.dh * (g.kh - 1) - g.ph;
  const left = g.dw * (g.kw - 1) - g.pw;
  // A 1×1-like geometry whose dy already has the staged shape needs no copy.
  const passthrough = top === 0 && left === 0 && g.sh === 1 && g.sw === 1 && hp === g.oh &&
    wq === g.ow;
  const dyq = passthrough
    ? dy
    : stage(dy, g.n * g.o, g.oh, g.ow, { hp, wq, top, left, dh: g.sh, dw: g.sw });
  const dx = flippedConv(dyq, weight, g, {
    taps: { th: g.kh, tw: g.kw, ky0: g.kh - 1, kx0: g.kw - 1, sy: 1, sx: 1 },
    hp,
    wq,
    dh: g.dh,
    dw: g.dw,
    oh: g.h,
    ow: g.w,
    tile,
  });
  if (!passthrough) dyq.dispose();
  return dx;
}

/**
 * The forward kernel over staged dy `dyq` [N, O, hp, 1, wq] with the weight transposed and
 * flipped to `taps`, read at dilation (dh, dw): an oh × ow input-gradient plane per channel,
 * written into `into` when given.
 */
function flippedConv(
  dyq: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  k: {
    taps: FlipTaps;
    hp: number;
    wq: number;
    dh: number;
    dw: number;
    oh: number;
    ow: number;
    tile: ConvTile;
    into?: { y: Tensor; r0: number; sr: number; c0: number; sc: number };
  },
): Tensor {
  const wp = packWeight(weight, roundTo(g.c, 4 * k.tile.tm4), k.taps);
  const dx = convCore(
    dyq,
    wp,
    {
      n: g.n,
      c: g.o,
      hp: k.hp,
      wq: k.wq,
      o: g.c,
      kh: k.taps.th,
      kw: k.taps.tw,
      sh: 1,
      sw: 1,
      dh: k.dh,
      dw: k.dw,
      oh: k.oh,
      ow: k.ow,
    },
    k.tile,
    k.into,
  );
  wp.dispose();
  return dx;
}

/**
 * One stride phase along a dim: outputs i = r + s·i' (i' < count) receive the taps
 * k = k0 − u·s (u < taps) from dy[i' + e + u], e = (r + p − k0)/s.
 */
function phaseTaps(r: number, s: number, p: number, k: number, size: number) {
  const count = Math.ceil((size - r) / s);
  let first = -1;
  for (let kk = 0; kk < k; kk++) {
    if ((((r + p - kk) % s) + s) % s === 0) {
      first = kk;
      break;
    }
  }
  if (first < 0 || count <= 0) return { count, taps: 0, k0: 0, e: 0 };
  const taps = Math.floor((k - 1 - first) / s) + 1;
  const k0 = first + (taps - 1) * s;
  return { count, taps, k0, e: (r + p - k0) / s };
}

function inputGradPhased(dy: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  const rows = Array.from({ length: g.sh }, (_, r) => phaseTaps(r, g.sh, g.ph, g.kh, g.h));
  const cols = Array.from({ length: g.sw }, (_, c) => phaseTaps(c, g.sw, g.pw, g.kw, g.w));
  const someEmpty = rows.some((t) => t.taps === 0 && t.count > 0) ||
    cols.some((t) => t.taps === 0 && t.count > 0);
  const dx = someEmpty ? full([g.n, g.c, g.h, g.w], 0) : Tensor.empty([g.n, g.c, g.h, g.w]);
  rows.forEach((pr, r) => {
    cols.forEach((pc, c) => {
      if (pr.taps === 0 || pc.taps === 0 || pr.count <= 0 || pc.count <= 0) return;
      const tile = forwardTile(g.c, pc.count, g.n);
      const wq = stagedWidth(Math.ceil(pc.count / tile.tn) * tile.tn, 1, pc.taps, 1);
      const hp = pr.count + pr.taps - 1;
      const dyq = stage(dy, g.n * g.o, g.oh, g.ow, { hp, wq, top: -pr.e, left: -pc.e });
      flippedConv(dyq, weight, g, {
        taps: { th: pr.taps, tw: pc.taps, ky0: pr.k0, kx0: pc.k0, sy: g.sh, sx: g.sw },
        hp,
        wq,
        dh: 1,
        dw: 1,
        oh: pr.count,
        ow: pc.count,
        tile,
        into: { y: dx, r0: r, sr: g.sh, c0: c, sc: g.sw },
      });
      dyq.dispose();
    });
  });
  return dx;
}

/** Tile of the weight-gradient kernel: to output channels × tc input channels per invocation. */
export interface WgradTile {
  /** Output channels per invocation. */
  to: number;
  /** Input channels per invocation. */
  tc: number;
  /** Batch chunks reduced separately, then summed in a fixed order. */
  split: number;
}

/** Picks the wgrad tile (8 output × 4–8 input channels measured best on lavapipe). */
export function wgradTile(g: Conv2dGeometry): WgradTile {
  const to = Math.min(8, g.o);
  const tc = Math.min(g.kw === 1 ? 8 : g.kw <= 3 ? 4 : 1, g.c);
  const inv = Math.ceil(g.o / to) * Math.ceil(g.c / tc) * g.kh;
  return { to, tc, split: batchSplit(inv, g.n) };
}

/** Batch chunks that bring `invocations` up to about 256 (at most one chunk per image). */
function batchSplit(invocations: number, n: number): number {
  return invocations >= 256 ? 1 : Math.min(n, Math.ceil(256 / invocations));
}

/** The fixed-order sum of [split, O, C, kh, kw] partial weight gradients, as `weightShape`. */
function sumSplits(out: Tensor, weightShape: readonly number[]): Tensor {
  const summed = out.shape[0] === 1 ? out.view(out.shape) : reduce("sum", out, { axis: 0 }).values;
  out.dispose();
  const r = summed.view(weightShape);
  summed.dispose();
  return r;
}

/**
 * Weight gradient of `conv2d`: dw [O, C, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] ·
 * x[n, c, oh·s − p + ky·d, ow·s − p + kx·d]. Deterministic: each output is one invocation's
 * sum in a fixed order (split over batch chunks, then a fixed-order sum).
 */
export function conv2dWeightGrad(
  x: Tensor,
  dy: Tensor,
  opts: Conv2dOptions & { weightShape: readonly number[] },
): Tensor {
  const g = conv2dGeometry(x.shape, opts.weightShape, opts);
  checkDy("conv2dWeightGrad", dy, g);
  // The batched product holds N·O·C floats; past 16M the direct kernel avoids that buffer.
  if (isPointwise(g, opts) && g.n * g.o * g.c <= 1 << 24) {
    return pointwiseWeightGrad(x, dy, g, opts.weightShape);
  }
  if (useIm2col(g, opts)) {
    const cols = im2col(x, g);
    const dyt = pixelsByChannel(dy, g);
    const dw = matmul(dyt, cols, { transA: true });
    cols.dispose();
    dyt.dispose();
    const r = dw.view(opts.weightShape);
    dw.dispose();
    return r;
  }
  // 1×1 kernels keep the ow-lane kernel: too few taps to pay for transposing dy.
  if (g.kh <= 3 && g.kw <= 3 && g.kh * g.kw > 1 && g.o % 4 === 0) {
    return weightGradNhwc(x, dy, g, opts.weightShape);
  }
  const owp = round4(g.ow);
  const dyp = owp === g.ow ? dy : stage(dy, g.n * g.o, g.oh, g.ow, { hp: g.oh, wq: owp });
  const { xq, hp, wq, owned } = stageInput(x, g, owp);
  const tile = wgradTile(g);
  const kk = g.kh * g.kw;
  const out = Tensor.empty([tile.split, g.o, g.c, g.kh, g.kw]);
  const nPer = Math.ceil(g.n / tile.split);
  const ob = Math.ceil(g.o / tile.to);
  const cb = Math.ceil(g.c / tile.tc);
  const wgX = 8;
  const narrow = g.kw <= 3;
  dispatch({
    kernel: narrow ? "conv2d_wgrad" : "conv2d_wgrad_k7",
    code: narrow ? wgradSrc : wgradK7Src,
    overrides: {
      ...tapOverrides(g),
      TO: tile.to,
      TC: tile.tc,
      WG_X: wgX,
    },
    uniform: new Uniforms().u32(g.n).u32(g.c).u32(g.o).u32(hp).u32(wq / 4).u32(g.oh)
      .u32(owp / 4).u32(nPer).u32(cb).u32(ob * cb * g.kh).u32(kk).bytes(),
    buffers: [xq.buffer, dyp.buffer, out.buffer],
    workgroups: [Math.ceil((ob * cb * g.kh) / wgX), tile.split, 1],
  });
  if (owned) xq.dispose();
  if (dyp !== dy) dyp.dispose();
  return sumSplits(out, opts.weightShape);
}

/**
 * Weight gradient for kernels up to 3×3 (O % 4 == 0) with output channels as vec4 lanes: dy is
 * transposed to [N, OH, OW, O] once, then conv2d_wgrad_nhwc.wgsl accumulates 4 output channels
 * per FMA against broadcast input values, as the forward kernel does with weights.
 */
function weightGradNhwc(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  // 16 output × 4 input channels × 8 columns measured best (3×3 64→64 at 32×32: 14.8
  // GFLOP/s on one lavapipe thread, against 10.8 for the ow-lane kernel).
  const to4 = Math.min(4, g.o / 4);
  const tc = Math.min(4, g.c);
  const tp = g.ow > 4 ? 8 : 4;
  const dyt = permute(dy, [0, 2, 3, 1]);
  const { xq, hp, wq, owned } = stageInput(x, g, Math.ceil(g.ow / tp) * tp);
  const ob = Math.ceil(g.o / 4 / to4);
  const cb = Math.ceil(g.c / tc);
  const total = ob * cb;
  const split = batchSplit(total, g.n);
  const nPer = Math.ceil(g.n / split);
  const out = Tensor.empty([split, g.o, g.c, g.kh, g.kw]);
  const wgX = 8;
  dispatch({
    kernel: "conv2d_wgrad_nhwc",
    code: wgradNhwcSrc,
    overrides: {
      ...tapOverrides(g),
      TO4: to4,
      TC: tc,
      TP: tp,
      WG_X: wgX,
    },
    uniform: new Uniforms().u32(g.n).u32(g.c).u32(g.o / 4).u32(hp).u32(wq / 4).u32(g.oh)
      .u32(g.ow).u32(nPer).u32(cb).u32(total).u32(g.kh * g.kw).u32(g.o).bytes(),
    buffers: [xq.buffer, dyt.buffer, out.buffer],
    workgroups: [Math.ceil(total / wgX), split, 1],
  });
  dyt.dispose();
  if (owned) xq.dispose();
  return sumSplits(out, weightShape);
}
