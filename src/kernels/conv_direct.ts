/**
 * The direct family of 2-D convolution: implicit GEMMs register-blocked for CPU adapters, with
 * no im2col buffer. Inputs are staged once into a zero-padded, vec4-aligned, stride-phase-split
 * copy (`shaders/cpu/conv2d_pad.wgsl`) so the hot loops read whole vec4 runs without bounds
 * checks, and weights are packed so 4 output channels are one vec4
 * (`shaders/cpu/conv2d_weight_pack.wgsl`). The forward kernel also computes the input gradient
 * (flipped, transposed weights; one pass per stride phase). All reductions run in a fixed
 * order: results are deterministic.
 *
 * @module
 */

import padSrc from "../../shaders/cpu/conv2d_pad.wgsl" with { type: "text" };
import packSrc from "../../shaders/cpu/conv2d_weight_pack.wgsl" with { type: "text" };
import forwardSrc from "../../shaders/cpu/conv2d_forward.wgsl" with { type: "text" };
import forwardSgSrc from "../../shaders/cpu/conv2d_forward_sg.wgsl" with { type: "text" };
import wgradSrc from "../../shaders/cpu/conv2d_wgrad.wgsl" with { type: "text" };
import wgradNhwcSrc from "../../shaders/cpu/conv2d_wgrad_nhwc.wgsl" with { type: "text" };
import wgradNhwcSgSrc from "../../shaders/cpu/conv2d_wgrad_nhwc_sg.wgsl" with { type: "text" };
import { dispatch } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { reduce } from "./reduce.ts";
import { full } from "./elementwise.ts";
import { permute } from "./copy.ts";
import { broadcastForm, SG_LANES, subgroupBroadcasts } from "./broadcast.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

const PAD = defineKernel("conv2d_pad", padSrc, {
  planes: "u32",
  h: "u32",
  w: "u32",
  hp: "u32",
  phs: "u32",
  wq4: "u32",
  top: "i32",
  left: "i32",
  dw: "i32",
});
const PACK = defineKernel("conv2d_weight_pack", packSrc, {
  a: "u32",
  b: "u32",
  kh: "u32",
  kw: "u32",
  cols: "u32",
  th: "u32",
  tw: "u32",
  ky0: "u32",
  kx0: "u32",
  sy: "u32",
  sx: "u32",
});
const FORWARD_FIELDS = {
  c: "u32",
  hp: "u32",
  wq4: "u32",
  oh: "u32",
  ow: "u32",
  owb: "u32",
  o: "u32",
  op4: "u32",
  yh: "u32",
  yw: "u32",
  yr0: "u32",
  ysr: "u32",
  yc0: "u32",
  ysc: "u32",
  n: "u32",
} as const;
const FORWARD = defineKernel("conv2d_forward", forwardSrc, FORWARD_FIELDS);
/** `conv2d_forward` with each kernel row's weights broadcast across a subgroup (the same bits). */
const FORWARD_SG = defineKernel("conv2d_forward_sg", forwardSgSrc, FORWARD_FIELDS);
const WGRAD = defineKernel("conv2d_wgrad", wgradSrc, {
  n: "u32",
  c: "u32",
  o: "u32",
  hp: "u32",
  wq4: "u32",
  oh: "u32",
  ow4: "u32",
  nper: "u32",
  cb: "u32",
  total: "u32",
  kk: "u32",
});
const WGRAD_NHWC_FIELDS = {
  n: "u32",
  c: "u32",
  o4: "u32",
  hp: "u32",
  wq4: "u32",
  oh: "u32",
  ow: "u32",
  nper: "u32",
  cb: "u32",
  total: "u32",
  kk: "u32",
  o: "u32",
} as const;
const WGRAD_NHWC = defineKernel("conv2d_wgrad_nhwc", wgradNhwcSrc, WGRAD_NHWC_FIELDS);
/** `conv2d_wgrad_nhwc` with the dy tile broadcast across a subgroup (the same bits). */
const WGRAD_NHWC_SG = defineKernel("conv2d_wgrad_nhwc_sg", wgradNhwcSgSrc, WGRAD_NHWC_FIELDS);

const roundTo = (v: number, m: number): number => Math.ceil(v / m) * m;
const round4 = (v: number): number => roundTo(v, 4);

/** Widest kernel the direct kernels take (wider ones go to im2col). */
export const DIRECT_MAX_KW = 7;

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
  const wg = 64;
  dispatch({
    kernel: PAD.name,
    code: PAD.code,
    overrides: { DH: dh, WG: wg },
    uniform: PAD.params.pack({ planes, h, w, hp: o.hp, phs, wq4: o.wq / 4, top, left, dw }),
    buffers: [x.buffer, out.buffer],
    workgroups: [Math.ceil(planes / wg), o.hp, phs],
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
  const chans = flip ? a : b;
  const out = Tensor.empty([chans * t.th * t.tw, cols]);
  const wg = 8;
  dispatch({
    kernel: PACK.name,
    code: PACK.code,
    overrides: { FLIP: flip ? 1 : 0, WG: wg },
    uniform: PACK.params.pack({ ...t, a, b, kh, kw, cols }),
    buffers: [w.buffer, out.buffer],
    workgroups: [Math.ceil(cols / 4 / wg), t.th * t.tw, chans],
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
 * `broadcast`: the tile of `conv2d_forward_sg`, whose weights cost a broadcast rather than a
 * load per lane, so twice the output channels for half the images (the same 128 accumulators).
 */
export function forwardTile(
  outChannels: number,
  outWidth: number,
  batch = 1,
  broadcast = false,
): ConvTile {
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
  // conv2d_forward_sg, 3×3 64→64 at 8×8 and the 7×7 stem, forward + input gradient alternated
  // in one process on lavapipe: 1.13–1.23× faster with 32 output channels × 2 images (× 1).
  const wide = Math.min(8, Math.ceil(outChannels / 4));
  if (broadcast && wide > 4) return { tm4: wide, tn, nb: Math.max(1, Math.floor(nb / 2)) };
  return { tm4, tn, nb };
}

/** The kernel size, stride and dilation overrides every direct conv shader takes. */
function tapOverrides(
  g: { kh: number; kw: number; sh: number; sw: number; dh: number; dw: number },
): Record<string, number> {
  return { KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, DH: g.dh, DW: g.dw };
}

/** Where the forward kernel writes output (r, q): y rows r0 + r·sr, columns c0 + q·sc. */
interface Placement {
  y: Tensor;
  r0: number;
  sr: number;
  c0: number;
  sc: number;
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
  into?: Placement,
): Tensor {
  const y = into?.y ?? Tensor.empty([g.n, g.o, g.oh, g.ow]);
  const place = into ?? { r0: 0, sr: 1, c0: 0, sc: 1 };
  const owb = Math.ceil(g.ow / tile.tn);
  const op4 = wp.shape[1] / 4;
  const wgX = 8;
  const wgY = 1;
  const { kernel, code, sg } = broadcastForm(FORWARD, FORWARD_SG);
  const sizes = { TM4: tile.tm4, TN: tile.tn, NB: tile.nb };
  dispatch({
    kernel,
    code,
    // The _sg form's workgroup is SG_LANES (= wgX) row blocks, wgY = 1: the same grid.
    overrides: sg
      ? { ...tapOverrides(g), ...sizes, SG: SG_LANES }
      : { ...tapOverrides(g), ...sizes, WG_X: wgX, WG_Y: wgY },
    uniform: FORWARD.params.pack({
      c: g.c,
      hp: g.hp,
      wq4: g.wq / 4,
      oh: g.oh,
      ow: g.ow,
      owb,
      o: g.o,
      op4,
      yh: y.shape[2],
      yw: y.shape[3],
      yr0: place.r0,
      ysr: place.sr,
      yc0: place.c0,
      ysc: place.sc,
      n: g.n,
    }),
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

/** `x` [N, C, H, W] staged for the conv kernels, or x itself when already fit (`owned` false). */
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

/** Direct conv2d forward: stage x, pack the weight, one implicit-GEMM pass. */
export function directForward(x: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  const tile = forwardTile(g.o, g.ow, g.n, subgroupBroadcasts());
  const { xq, hp, wq, owned } = stageInput(x, g, Math.ceil(g.ow / tile.tn) * tile.tn);
  using _staged = owned ? xq : null;
  using wp = packWeight(weight, roundTo(g.o, 4 * tile.tm4), null);
  return convCore(xq, wp, { ...g, hp, wq }, tile);
}

/**
 * Direct input gradient: dx [N, C, H, W] from dy [N, O, OH, OW], on the forward kernel with
 * the weight transposed and flipped. Stride 1: one conv of dy padded by d·(k − 1) − p.
 * Stride s > 1 with dilation 1: one conv per output phase (ih mod s, iw mod s), each over dy
 * with only the taps that reach that phase, written to its strided positions of dx (no
 * zero-inserted dy, so no wasted FLOPs). Other dilated strided convs use zero insertion.
 */
export function directInputGrad(dy: Tensor, weight: Tensor, g: Conv2dGeometry): Tensor {
  if ((g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1) return inputGradPhased(dy, weight, g);
  const tile = forwardTile(g.c, g.w, g.n, subgroupBroadcasts());
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
  using _staged = passthrough ? null : dyq;
  return flippedConv(dyq, weight, g, {
    taps: { th: g.kh, tw: g.kw, ky0: g.kh - 1, kx0: g.kw - 1, sy: 1, sx: 1 },
    hp,
    wq,
    dh: g.dh,
    dw: g.dw,
    oh: g.h,
    ow: g.w,
    tile,
  });
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
    into?: Placement;
  },
): Tensor {
  using wp = packWeight(weight, roundTo(g.c, 4 * k.tile.tm4), k.taps);
  return convCore(
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
}

/**
 * One stride phase along a dim: outputs i = r + s·i' (i' < count) receive the taps
 * k = k0 − u·s (u < taps) from dy[i' + e + u], e = (r + p − k0)/s.
 */
function phaseTaps(
  r: number,
  s: number,
  p: number,
  k: number,
  size: number,
): { count: number; taps: number; k0: number; e: number } {
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
      const tile = forwardTile(g.c, pc.count, g.n, subgroupBroadcasts());
      const wq = stagedWidth(Math.ceil(pc.count / tile.tn) * tile.tn, 1, pc.taps, 1);
      const hp = pr.count + pr.taps - 1;
      using dyq = stage(dy, g.n * g.o, g.oh, g.ow, { hp, wq, top: -pr.e, left: -pc.e });
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
  using parts = out;
  using summed = parts.shape[0] === 1
    ? parts.view(parts.shape)
    : reduce("sum", parts, { axis: 0 }).values;
  return summed.view(weightShape);
}

/**
 * Direct weight gradient: dw [O, C, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] ·
 * x[n, c, oh·s − p + ky·d, ow·s − p + kx·d]. Deterministic: each output is one invocation's
 * sum in a fixed order (split over batch chunks, then a fixed-order sum).
 */
export function directWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
): Tensor {
  // 1×1 kernels keep the ow-lane kernel: too few taps to pay for transposing dy.
  if (g.kh <= 3 && g.kw <= 3 && g.kh * g.kw > 1 && g.o % 4 === 0) {
    return weightGradNhwc(x, dy, g, weightShape);
  }
  const owp = round4(g.ow);
  const dyp = owp === g.ow ? dy : stage(dy, g.n * g.o, g.oh, g.ow, { hp: g.oh, wq: owp });
  using _paddedDy = dyp === dy ? null : dyp;
  const { xq, hp, wq, owned } = stageInput(x, g, owp);
  using _staged = owned ? xq : null;
  const tile = wgradTile(g);
  const out = Tensor.empty([tile.split, g.o, g.c, g.kh, g.kw]);
  const ob = Math.ceil(g.o / tile.to);
  const cb = Math.ceil(g.c / tile.tc);
  const wgX = 8;
  dispatch({
    kernel: WGRAD.name,
    code: WGRAD.code,
    overrides: { ...tapOverrides(g), TO: tile.to, TC: tile.tc, WG_X: wgX },
    uniform: WGRAD.params.pack({
      n: g.n,
      c: g.c,
      o: g.o,
      hp,
      wq4: wq / 4,
      oh: g.oh,
      ow4: owp / 4,
      nper: Math.ceil(g.n / tile.split),
      cb,
      total: ob * cb * g.kh,
      kk: g.kh * g.kw,
    }),
    buffers: [xq.buffer, dyp.buffer, out.buffer],
    workgroups: [Math.ceil((ob * cb * g.kh) / wgX), tile.split, 1],
  });
  return sumSplits(out, weightShape);
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
  using dyt = permute(dy, [0, 2, 3, 1]);
  const { xq, hp, wq, owned } = stageInput(x, g, Math.ceil(g.ow / tp) * tp);
  using _staged = owned ? xq : null;
  const ob = Math.ceil(g.o / 4 / to4);
  const cb = Math.ceil(g.c / tc);
  const total = ob * cb;
  const split = batchSplit(total, g.n);
  const out = Tensor.empty([split, g.o, g.c, g.kh, g.kw]);
  const wgX = 8;
  const { kernel, code, sg } = broadcastForm(WGRAD_NHWC, WGRAD_NHWC_SG);
  dispatch({
    kernel,
    code,
    overrides: sg
      ? { ...tapOverrides(g), TO4: to4, TC: tc, TP: tp, SG: SG_LANES }
      : { ...tapOverrides(g), TO4: to4, TC: tc, TP: tp, WG_X: wgX },
    uniform: WGRAD_NHWC.params.pack({
      n: g.n,
      c: g.c,
      o4: g.o / 4,
      hp,
      wq4: wq / 4,
      oh: g.oh,
      ow: g.ow,
      nper: Math.ceil(g.n / split),
      cb,
      total,
      kk: g.kh * g.kw,
      o: g.o,
    }),
    buffers: [xq.buffer, dyt.buffer, out.buffer],
    // The _sg form: one workgroup per SG_LANES input-channel blocks of an output-channel block.
    workgroups: [sg ? ob * Math.ceil(cb / SG_LANES) : Math.ceil(total / wgX), split, 1],
  });
  return sumSplits(out, weightShape);
}
