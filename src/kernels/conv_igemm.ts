/**
 * The implicit-GEMM family of 2-D convolution for real GPUs (`shaders/conv2d_igemm.wgsl`):
 * forward, input gradient and weight gradient as products on the workgroup tiling of
 * `matmul_tiled`, with the operands gathered from x, w and dy while they are staged, so no
 * im2col matrix exists and its size cap does not apply. Operands are f32, or all f16 (mixed
 * precision, where the adapter has `shader-f16`): the kernel's f16 form reads them directly
 * and widens them exactly, so results are bit-identical to those on f32 widenings.
 *
 * @module
 */

import igemmSrc from "../../shaders/conv2d_igemm.wgsl" with { type: "text" };
import { dispatch } from "../gpu/dispatch.ts";
import { f16Form } from "../gpu/wgsl_expand.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { reduce } from "./reduce.ts";
import { hasShaderF16 } from "./cast.ts";
import {
  defaultGemmTile,
  type GemmTile,
  gemmTile,
  type GemmTileName,
  gemmTileOverrides,
} from "./matmul.ts";
import type { Conv2dGeometry } from "./conv_geometry.ts";

const IGEMM_FIELDS = {
  rows: "u32",
  cols: "u32",
  inner: "u32",
  chunk: "u32",
  c: "u32",
  h: "u32",
  w: "u32",
  o: "u32",
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
const IGEMM = defineKernel("conv2d_igemm", igemmSrc, IGEMM_FIELDS);
const IGEMM_F16 = defineKernel(
  "conv2d_igemm_f16",
  f16Form(igemmSrc, "conv2d_igemm"),
  IGEMM_FIELDS,
);

/** The kernel for the operands' dtype: f32, or f16 (both; needs `shader-f16`). */
function kernelFor(s0: Tensor, s1: Tensor): typeof IGEMM {
  if (s0.dtype === "f32" && s1.dtype === "f32") return IGEMM;
  if (s0.dtype !== "f16" || s1.dtype !== "f16") {
    throw new TypeError(
      `conv2d igemm: expected two f32 or two f16 operands, got ${s0.dtype} and ${s1.dtype}`,
    );
  }
  if (!hasShaderF16()) {
    throw new Error("conv2d igemm: f16 operands need the adapter feature shader-f16");
  }
  return IGEMM_F16;
}

/** Product of one MODE: rows × cols over `inner`, split in `parts` along k. */
interface Product {
  mode: 0 | 1 | 2;
  rows: number;
  cols: number;
  inner: number;
}

/** Workgroups a weight-gradient product aims for before it splits its (long) k range. */
const WGRAD_TARGET_GROUPS = 128;
/** Smallest k range of one weight-gradient part. */
const WGRAD_MIN_CHUNK = 256;

function resolveTile(name: GemmTileName | undefined, p: Product): GemmTile {
  return gemmTile(name ?? defaultGemmTile(p.rows, p.cols), "conv2d");
}

function run(
  p: Product,
  g: Conv2dGeometry,
  s0: Tensor,
  s1: Tensor,
  out: Tensor,
  o: { tile: GemmTile; parts: number; chunk: number },
): void {
  const { tile } = o;
  const def = kernelFor(s0, s1);
  dispatch({
    kernel: def.name,
    code: def.code,
    overrides: { MODE: p.mode, ...gemmTileOverrides(tile) },
    uniform: def.params.pack({
      ...g,
      rows: p.rows,
      cols: p.cols,
      inner: p.inner,
      chunk: o.chunk,
    }),
    buffers: [s0.buffer, s1.buffer, out.buffer],
    workgroups: [
      Math.ceil(p.cols / (tile.wgX * tile.tn)),
      Math.ceil(p.rows / (tile.wgY * tile.tm)),
      o.parts,
    ],
  });
}

/** Forward: y [N, O, OH, OW] = w [O, C·kh·kw] · im2col(x), gathered on the fly. */
export function igemmForward(
  x: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  tile?: GemmTileName,
): Tensor {
  const p: Product = { mode: 0, rows: g.o, cols: g.n * g.oh * g.ow, inner: g.c * g.kh * g.kw };
  const y = Tensor.empty([g.n, g.o, g.oh, g.ow]);
  run(p, g, weight, x, y, { tile: resolveTile(tile, p), parts: 1, chunk: p.inner });
  return y;
}

/** Input gradient: dx [N, C, H, W] = wᵀ · (dy taps landing on each input pixel). */
export function igemmInputGrad(
  dy: Tensor,
  weight: Tensor,
  g: Conv2dGeometry,
  tile?: GemmTileName,
): Tensor {
  const p: Product = { mode: 1, rows: g.c, cols: g.n * g.h * g.w, inner: g.o * g.kh * g.kw };
  const dx = Tensor.empty([g.n, g.c, g.h, g.w]);
  run(p, g, weight, dy, dx, { tile: resolveTile(tile, p), parts: 1, chunk: p.inner });
  return dx;
}

/**
 * How many parts the k range (N·OH·OW) of a weight gradient is split into: enough for
 * `WGRAD_TARGET_GROUPS` workgroups, each part at least `WGRAD_MIN_CHUNK` long.
 */
export function wgradParts(tiles: number, inner: number): number {
  const want = Math.ceil(WGRAD_TARGET_GROUPS / Math.max(1, tiles));
  return Math.max(1, Math.min(want, Math.floor(inner / WGRAD_MIN_CHUNK), 65535));
}

/**
 * Weight gradient: dw [O, C·kh·kw] = dy [O, N·OH·OW] · im2col(x), the k range split in parts
 * whose partial products are summed in a fixed order (deterministic).
 */
export function igemmWeightGrad(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  weightShape: readonly number[],
  tile?: GemmTileName,
): Tensor {
  const p: Product = { mode: 2, rows: g.o, cols: g.c * g.kh * g.kw, inner: g.n * g.oh * g.ow };
  const t = resolveTile(tile, p);
  const tiles = Math.ceil(p.cols / (t.wgX * t.tn)) * Math.ceil(p.rows / (t.wgY * t.tm));
  const parts = wgradParts(tiles, p.inner);
  // Parts start on stage boundaries.
  const chunk = Math.ceil(Math.ceil(p.inner / parts) / t.bk) * t.bk;
  const used = Math.max(1, Math.ceil(p.inner / chunk));
  if (used === 1) {
    const dw = Tensor.empty(weightShape);
    run(p, g, dy, x, dw, { tile: t, parts: 1, chunk: Math.max(chunk, p.inner) });
    return dw;
  }
  using partial = Tensor.empty([used, p.rows * p.cols]);
  run(p, g, dy, x, partial, { tile: t, parts: used, chunk });
  using sum = reduce("sum", partial, { axis: 0 }).values;
  return sum.view(weightShape);
}
