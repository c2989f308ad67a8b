/**
 * Batched matrix multiply with transpose flags: the workhorse that convolution reuses as
 * implicit GEMM. Two kernels: `matmul_register` (register-blocked, vec4 loads, no workgroup
 * memory) for CPU adapters such as lavapipe, and `matmul_tiled` (workgroup-memory tiling)
 * for real GPUs, with several tile shapes (`GEMM_TILES`). Unless `variant` / `tile` say
 * otherwise, the tuner's table picks the kernel and tile per shape bucket (`matmulPlan`), or with
 * tuning off the heuristic: `gpu().adapter.isCpu`, then `defaultGemmTile`. The tiled
 * kernel also has an f16-reading form (`matmulTiledF16`, mixed precision): the same shader
 * with f16 storage for A and B, widened to f32 as tiles are staged.
 *
 * @module
 */

import registerSrc from "../../shaders/cpu/matmul_register.wgsl" with { type: "text" };
import registerSgSrc from "../../shaders/cpu/matmul_register_sg.wgsl" with { type: "text" };
import tiledSrc from "../../shaders/matmul_tiled.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { f16Form } from "../gpu/wgsl_expand.ts";
import { dispatch } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { refinedCandidate, splitCandidate, tunedChoice } from "../gpu/tune.ts";
import { Tensor } from "../gpu/tensor.ts";
import { broadcastForm, SG_LANES } from "./broadcast.ts";
import { hasShaderF16 } from "./cast.ts";
import { fillInPlace } from "./elementwise.ts";
import { stridedCopy } from "./copy.ts";
import { fmt } from "./shape.ts";

/** Which matmul kernel runs: `auto` picks `register` on CPU adapters, `tiled` otherwise. */
export type MatmulVariant = "auto" | "register" | "tiled";

/**
 * One tile shape of `matmul_tiled` (and of the implicit-GEMM conv kernels, which share its
 * tiling): a `wgX`×`wgY` workgroup computes a (wgY·tm)×(wgX·tn) tile of C, `tm`×`tn` outputs
 * per invocation, staging `bk` steps of k at a time in workgroup memory.
 */
export interface GemmTile {
  /** Invocations along N. */
  readonly wgX: number;
  /** Invocations along M. */
  readonly wgY: number;
  /** Rows of C per invocation (a multiple of 4). */
  readonly tm: number;
  /** Columns of C per invocation (a multiple of 4). */
  readonly tn: number;
  /** k per workgroup-memory stage (a multiple of 4). */
  readonly bk: number;
}

/**
 * The tile shapes of the workgroup-tiled GEMM kernels, by name (`<BM>x<BN>_<TM>x<TN>`): the
 * candidates a tuner times. All stay within 256 invocations and 16 KiB of workgroup memory.
 */
export const GEMM_TILES = {
  "32x32_4x4": { wgX: 8, wgY: 8, tm: 4, tn: 4, bk: 16 },
  "64x64_4x4": { wgX: 16, wgY: 16, tm: 4, tn: 4, bk: 16 },
  "128x64_8x4": { wgX: 16, wgY: 16, tm: 8, tn: 4, bk: 16 },
  "64x128_4x8": { wgX: 16, wgY: 16, tm: 4, tn: 8, bk: 16 },
  "128x128_8x8": { wgX: 16, wgY: 16, tm: 8, tn: 8, bk: 8 },
} as const satisfies Record<string, GemmTile>;

/** Name of one of `GEMM_TILES`. */
export type GemmTileName = keyof typeof GEMM_TILES;

/** Every tile name of `GEMM_TILES`, for tuners and tests. */
export const GEMM_TILE_NAMES: readonly GemmTileName[] = Object.keys(GEMM_TILES) as GemmTileName[];

/**
 * The tile the heuristic picks for an M×N (×batch) product: the largest tile that still gives
 * at least 64 workgroups (a GPU needs one or more per core), else the smallest.
 */
export function defaultGemmTile(m: number, n: number, batch = 1): GemmTileName {
  for (const name of ["128x64_8x4", "64x64_4x4"] as const) {
    const t = GEMM_TILES[name];
    const groups = Math.ceil(m / (t.wgY * t.tm)) * Math.ceil(n / (t.wgX * t.tn)) * batch;
    if (groups >= 64) return name;
  }
  return "32x32_4x4";
}

/** Bytes of workgroup memory a tile stages: BK·(BM + BN) f32s. */
export function gemmTileStorageBytes(tile: GemmTile): number {
  return 4 * tile.bk * (tile.wgY * tile.tm + tile.wgX * tile.tn);
}

/** The adapter limits a tile shape must fit (a subset of `GPUSupportedLimits`). */
export type GemmTileLimits = Pick<
  GPUSupportedLimits,
  | "maxComputeInvocationsPerWorkgroup"
  | "maxComputeWorkgroupSizeX"
  | "maxComputeWorkgroupSizeY"
  | "maxComputeWorkgroupStorageSize"
>;

/** Whether `tile` fits the device's workgroup limits (invocations, sizes, workgroup memory). */
export function gemmTileFits(tile: GemmTile, limits: GemmTileLimits = gpu().limits): boolean {
  return tile.wgX * tile.wgY <= limits.maxComputeInvocationsPerWorkgroup &&
    tile.wgX <= limits.maxComputeWorkgroupSizeX &&
    tile.wgY <= limits.maxComputeWorkgroupSizeY &&
    gemmTileStorageBytes(tile) <= limits.maxComputeWorkgroupStorageSize;
}

/** The names of the `GEMM_TILES` that fit `limits` (default: this device's), in table order. */
export function gemmTilesFor(limits: GemmTileLimits = gpu().limits): GemmTileName[] {
  return GEMM_TILE_NAMES.filter((name) => gemmTileFits(GEMM_TILES[name], limits));
}

/** The tile named `name`, checked against the table and this device's limits. */
export function gemmTile(name: GemmTileName, op: string): GemmTile {
  const tile: GemmTile | undefined = GEMM_TILES[name];
  if (!tile) {
    throw new RangeError(`${op}: unknown tile "${name}", expected one of ${GEMM_TILE_NAMES}`);
  }
  if (!gemmTileFits(tile)) {
    const l = gpu().limits;
    throw new RangeError(
      `${op}: tile "${name}" needs ${tile.wgX * tile.wgY} invocations and ${
        gemmTileStorageBytes(tile)
      } bytes of workgroup memory, the device allows ${l.maxComputeInvocationsPerWorkgroup} and ${l.maxComputeWorkgroupStorageSize}`,
    );
  }
  return tile;
}

/**
 * The tile named by the refinement of a tuned choice (`tiled:64x64_4x4` → `64x64_4x4`), or
 * undefined when there is none, it names no tile, or the tile does not fit this device (a
 * hand-edited or foreign table: the heuristic tile runs instead).
 */
export function tunedTile(choice: string): GemmTileName | undefined {
  const { detail } = splitCandidate(choice);
  if (detail === undefined || !Object.hasOwn(GEMM_TILES, detail)) return undefined;
  const name = detail as GemmTileName;
  return gemmTileFits(GEMM_TILES[name]) ? name : undefined;
}

/** The tile overrides of `matmul_tiled` and the conv implicit-GEMM kernels. */
export function gemmTileOverrides(tile: GemmTile): Record<string, number> {
  return { WG_X: tile.wgX, WG_Y: tile.wgY, TM: tile.tm, TN: tile.tn, BK: tile.bk };
}

/** One candidate of the matmul family: the kernel and, for `tiled`, its tile. */
export interface MatmulCandidate {
  /** Kernel. */
  readonly variant: "register" | "tiled";
  /** Tile shape of `tiled` (absent for `register`). */
  readonly tile?: GemmTileName;
}

/** Every matmul kernel and tile a tuner may time (each works on every adapter and shape). */
export function matmulCandidates(): MatmulCandidate[] {
  return [
    { variant: "register" },
    ...GEMM_TILE_NAMES.map((tile) => ({ variant: "tiled" as const, tile })),
  ];
}

/**
 * A matmul candidate's name in a tuning table: `register`, `tiled` (the tile `defaultGemmTile`
 * picks for the shape) or `tiled:<tile>`.
 */
export function matmulCandidateName(c: MatmulCandidate): string {
  return c.tile === undefined ? c.variant : refinedCandidate(c.variant, c.tile);
}

/** The `matmul` options that run the candidate named `name` (see `matmulCandidateName`). */
export function matmulCandidateOptions(name: string): MatmulCandidate {
  const { base, detail } = splitCandidate(name);
  if (base !== "register" && base !== "tiled") {
    throw new RangeError(`matmul: unknown candidate "${name}", expected register or tiled[:tile]`);
  }
  return detail === undefined ? { variant: base } : { variant: base, tile: detail as GemmTileName };
}

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` is stored as [..., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: `b` is stored as [..., N, K]. */
  transB?: boolean;
  /** Add the product into this existing [.., M, N] tensor instead of allocating. */
  accumulateInto?: Tensor;
  /** Kernel choice (default `auto`); tests force each one. */
  variant?: MatmulVariant;
  /** Tile shape of the `tiled` kernel (default: `defaultGemmTile`). */
  tile?: GemmTileName;
}

const TILED_FIELDS = {
  m: "u32",
  n: "u32",
  k: "u32",
  batch: "u32",
  stride_a: "u32",
  stride_b: "u32",
  stride_c: "u32",
} as const;
const TILED = defineKernel("matmul_tiled", tiledSrc, TILED_FIELDS);
const TILED_F16 = defineKernel("matmul_tiled_f16", f16Form(tiledSrc, "matmul_tiled"), TILED_FIELDS);
const REGISTER_FIELDS = {
  m: "u32",
  n4: "u32",
  k4: "u32",
  batch: "u32",
  stride_a: "u32",
  stride_b: "u32",
  stride_c: "u32",
} as const;
const REGISTER = defineKernel("matmul_register", registerSrc, REGISTER_FIELDS);
/** `matmul_register` with the A rows broadcast across a subgroup (the same bits). */
const REGISTER_SG = defineKernel("matmul_register_sg", registerSgSrc, REGISTER_FIELDS);

/** Rows of C per invocation of `matmul_register` (override TM). */
const REG_TM = 32;
/** Columns of C per invocation of `matmul_register` (override TN4, in vec4s). */
const REG_TN4 = 4;
/** Workgroup width of `matmul_register` (override). */
const REG_WG_X = 8;
/**
 * The tile of `matmul_register_sg` (`SG_LANES` lanes): with A loads shared, a
 * narrower tile wins (lavapipe, ResNet-18 step shapes: 32×8 at 20–29 GFLOP/CPU-s against
 * 13–15 for matmul_register's 32×16; 32×16, 64×4 and 16×16 were slower).
 */
const SG_TM = 32;
const SG_TN4 = 2;

interface Geometry {
  m: number;
  n: number;
  k: number;
  batch: number;
  ba: number;
  bb: number;
}

/**
 * The kernel `auto` resolves to on this device: the measured one for the bucket of `dims`
 * ([M, N, K] or [M, N, K, batch]) when tuning is on (`src/gpu/tune.ts`), else the CPU-adapter
 * heuristic.
 */
export function matmulVariant(
  variant: MatmulVariant = "auto",
  dims?: readonly number[],
): "register" | "tiled" {
  return matmulPlan(variant, dims).variant;
}

/**
 * The kernel and tile `matmul` runs with `variant` at `dims` ([M, N, K] or [M, N, K, batch];
 * batch 1 when absent): a forced variant as given; `auto` the tuned candidate of the bucket
 * (its tile too, when the table names one) when tuning is on, else the heuristic (`register` on
 * CPU adapters, else `tiled`). An absent tile means `defaultGemmTile`.
 */
export function matmulPlan(
  variant: MatmulVariant = "auto",
  dims?: readonly number[],
): MatmulCandidate {
  if (variant !== "auto") return { variant };
  const heuristic = gpu().adapter.isCpu ? "register" : "tiled";
  if (!dims) return { variant: heuristic };
  const [m, n, k, batch = 1] = dims;
  const choice = tunedChoice("matmul", [m, n, k, batch], heuristic);
  const { base } = splitCandidate(choice);
  if (base === "register") return { variant: "register" };
  if (base !== "tiled") return { variant: heuristic };
  const tile = tunedTile(choice);
  return tile ? { variant: "tiled", tile } : { variant: "tiled" };
}

/** The sizes of op(A)·op(B), checked. */
function geometry(a: Tensor, b: Tensor, opts: MatmulOptions, op: string): Geometry {
  if (a.ndim < 2 || a.ndim > 3 || b.ndim < 2 || b.ndim > 3) {
    throw new RangeError(
      `${op}: expected 2-D or 3-D tensors, got ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = opts.transA ? ac : ar;
  const k = opts.transA ? ar : ac;
  const kb = opts.transB ? bc : br;
  const n = opts.transB ? br : bc;
  if (k !== kb) {
    throw new RangeError(
      `${op}: inner dims differ: ${fmt(a.shape)}${opts.transA ? "ᵀ" : ""} · ${fmt(b.shape)}${
        opts.transB ? "ᵀ" : ""
      } (${k} vs ${kb})`,
    );
  }
  const ba = a.ndim === 3 ? a.shape[0] : 1;
  const bb = b.ndim === 3 ? b.shape[0] : 1;
  if (ba !== bb && ba !== 1 && bb !== 1) {
    throw new RangeError(`${op}: batch dims differ: ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  return { m, n, k, batch: Math.max(ba, bb), ba, bb };
}

/** The f32 output of a product: `opts.accumulateInto` (checked), else a new tensor. */
function output(a: Tensor, b: Tensor, g: Geometry, opts: MatmulOptions, op: string): Tensor {
  const outShape = a.ndim === 3 || b.ndim === 3 ? [g.batch, g.m, g.n] : [g.m, g.n];
  const out = opts.accumulateInto;
  if (!out) return Tensor.empty(outShape);
  if (out.size !== g.batch * g.m * g.n || out.dtype !== "f32") {
    throw new RangeError(
      `${op}: accumulateInto has shape ${fmt(out.shape)} ${out.dtype}, expected ${
        fmt(outShape)
      } f32`,
    );
  }
  return out;
}

/** The kernel `matmul(a, b, opts)` runs on this device (shapes checked as `matmul` does). */
export function matmulKernel(a: Tensor, b: Tensor, opts: MatmulOptions = {}): "register" | "tiled" {
  const g = geometry(a, b, opts, "matmul");
  return planOf(g, opts).variant;
}

/** The kernel and tile (`opts.tile` first, then a tuned one) of a product. */
function planOf(g: Geometry, opts: MatmulOptions): MatmulCandidate {
  const plan = matmulPlan(opts.variant, [g.m, g.n, g.k, g.batch]);
  return opts.tile ? { ...plan, tile: opts.tile } : plan;
}

/**
 * C = op(A) · op(B) over the last two dims; a leading batch dim on either side
 * (or both, equal) is supported, a missing one broadcasts.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new TypeError(`matmul: expected f32 tensors, got ${a.dtype} and ${b.dtype}`);
  }
  const g = geometry(a, b, opts, "matmul");
  const out = output(a, b, g, opts, "matmul");
  const plan = planOf(g, opts);
  if (plan.variant === "tiled") tiled(a, b, out, g, { ...opts, tile: plan.tile }, TILED);
  else register(a, b, out, g, opts);
  return out;
}

/**
 * `matmul` of f16 `a` and `b` on the tiled kernel reading f16 directly (half the input bytes
 * of f32), accumulated and returned in f32; `opts.variant` is ignored. Products and their
 * order are those of `matmul` with the tiled kernel on the f32 widenings of `a` and `b`, so the
 * results are bit-identical. Needs the adapter feature `shader-f16`.
 */
export function matmulTiledF16(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.dtype !== "f16" || b.dtype !== "f16") {
    throw new TypeError(`matmulTiledF16: expected f16 tensors, got ${a.dtype} and ${b.dtype}`);
  }
  if (!hasShaderF16()) {
    throw new Error(
      "matmulTiledF16: needs the adapter feature shader-f16, which this adapter lacks",
    );
  }
  const g = geometry(a, b, opts, "matmulTiledF16");
  const out = output(a, b, g, opts, "matmulTiledF16");
  // The tile `matmul` would run with (a tuned one included): the same sums, bit for bit.
  const plan = planOf(g, opts);
  tiled(
    a,
    b,
    out,
    g,
    { ...opts, tile: plan.variant === "tiled" ? plan.tile : opts.tile },
    TILED_F16,
  );
  return out;
}

/** The transpose and accumulate overrides of `matmul_tiled` (`matmul_register` has no TRANS_A). */
function flagOverrides(opts: MatmulOptions): Record<string, number> {
  return {
    TRANS_A: opts.transA ? 1 : 0,
    TRANS_B: opts.transB ? 1 : 0,
    ACCUMULATE: opts.accumulateInto ? 1 : 0,
  };
}

function tiled(
  a: Tensor,
  b: Tensor,
  out: Tensor,
  g: Geometry,
  opts: MatmulOptions,
  def: typeof TILED,
): void {
  const { m, n, k, batch } = g;
  const tile = gemmTile(opts.tile ?? defaultGemmTile(m, n, batch), "matmul");
  dispatch({
    kernel: def.name,
    code: def.code,
    overrides: {
      ...flagOverrides(opts),
      ...gemmTileOverrides(tile),
      // vec4 loads and stores where the stored rows are whole vec4s.
      VEC_A: (opts.transA ? m : k) % 4 === 0 ? 1 : 0,
      VEC_B: (opts.transB ? k : n) % 4 === 0 ? 1 : 0,
      VEC_C: n % 4 === 0 ? 1 : 0,
    },
    uniform: def.params.pack({
      m,
      n,
      k,
      batch,
      stride_a: g.ba === 1 ? 0 : m * k,
      stride_b: g.bb === 1 ? 0 : k * n,
      stride_c: m * n,
    }),
    buffers: [a.buffer, b.buffer, out.buffer],
    workgroups: [Math.ceil(n / (tile.wgX * tile.tn)), Math.ceil(m / (tile.wgY * tile.tm)), batch],
  });
}

const up4 = (x: number): number => Math.ceil(x / 4) * 4;

/**
 * `x` ([batch?, r, c]) copied into a zero-filled [batch, rows, cols] tensor, or null when it
 * already has that shape.
 */
function padded(x: Tensor, rows: number, cols: number): Tensor | null {
  const [r, c] = x.shape.slice(-2);
  if (r === rows && c === cols) return null;
  const bx = x.ndim === 3 ? x.shape[0] : 1;
  const z = fillInPlace(Tensor.empty([bx, rows, cols]), 0);
  copyBlocks(x, z, { shape: [bx, r, c], from: [r, c], to: [rows, cols] });
  return z;
}

/** Copies the [b, r, c] top-left blocks of `src`'s `from` matrices into `dst`'s `to` ones. */
function copyBlocks(
  src: Tensor,
  dst: Tensor,
  o: { shape: [number, number, number]; from: [number, number]; to: [number, number] },
): void {
  const [r1, c1] = o.from;
  const [r2, c2] = o.to;
  stridedCopy(src, dst, {
    shape: o.shape,
    srcStrides: [r1 * c1, c1, 1],
    dstStrides: [r2 * c2, c2, 1],
  });
}

/**
 * `op(x)` (x, or its transpose when `trans`: x stored [batch?, cols, rows]) as a contiguous
 * [batch, rowsP, colsP] tensor zero-padded to `rowsP`×`colsP`, or null when x already is one.
 */
function laidOut(x: Tensor, trans: boolean, rowsP: number, colsP: number): Tensor | null {
  if (!trans) return padded(x, rowsP, colsP);
  const [c, r] = x.shape.slice(-2);
  const bx = x.ndim === 3 ? x.shape[0] : 1;
  const t = Tensor.empty([bx, rowsP, colsP]);
  if (r !== rowsP || c !== colsP) fillInPlace(t, 0);
  stridedCopy(x, t, {
    shape: [bx, r, c],
    srcStrides: [r * c, 1, r],
    dstStrides: [rowsP * colsP, colsP, 1],
  });
  return t;
}

function register(a: Tensor, b: Tensor, out: Tensor, g: Geometry, opts: MatmulOptions): void {
  const { m, n, k, batch } = g;
  // vec4 loads need K and N to be multiples of 4: pad with zeros. The kernel has no TRANS_A
  // (one pipeline fewer, see its header): a transposed A is copied into place. The k order of
  // each sum is the same either way, so results are bit-identical to transposing in registers.
  const kP = up4(k);
  const nP = up4(n);
  const aP = laidOut(a, !!opts.transA, m, kP);
  const bP = opts.transB ? padded(b, nP, kP) : padded(b, kP, nP);
  let cP: Tensor | null = null;
  if (nP !== n) {
    if (opts.accumulateInto) {
      const v = out.view([batch, m, n]);
      cP = padded(v, m, nP);
      v.dispose();
    } else {
      cP = Tensor.empty([batch, m, nP]);
    }
  }
  const c = cP ?? out;
  const uniform = REGISTER.params.pack({
    m,
    n4: nP / 4,
    k4: kP / 4,
    batch,
    stride_a: g.ba === 1 ? 0 : (m * kP) / 4,
    stride_b: g.bb === 1 ? 0 : (kP * nP) / 4,
    stride_c: (m * nP) / 4,
  });
  const { kernel, code, sg } = broadcastForm(REGISTER, REGISTER_SG);
  const flags = { TRANS_B: opts.transB ? 1 : 0, ACCUMULATE: opts.accumulateInto ? 1 : 0 };
  const [tm, tn4, lanes] = sg ? [SG_TM, SG_TN4, SG_LANES] : [REG_TM, REG_TN4, REG_WG_X];
  dispatch({
    kernel,
    code,
    overrides: sg
      ? { ...flags, TM: tm, TN4: tn4, SG: lanes }
      : { ...flags, TM: tm, TN4: tn4, WG_X: lanes, WG_Y: 1 },
    uniform,
    buffers: [(aP ?? a).buffer, (bP ?? b).buffer, c.buffer],
    workgroups: [Math.ceil(nP / (4 * tn4 * lanes)), Math.ceil(m / tm), batch],
  });
  if (cP) {
    copyBlocks(cP, out, { shape: [batch, m, n], from: [m, nP], to: [m, n] });
    cP.dispose();
  }
  aP?.dispose();
  bP?.dispose();
}
