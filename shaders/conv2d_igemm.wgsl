// 2-D convolution (NCHW, groups = 1) as an implicit GEMM for real GPUs: the tiling of
// matmul_tiled.wgsl, with the operands gathered from the tensors while they are staged in
// workgroup memory, so no im2col matrix is ever stored. MODE picks the product:
//   0 forward: y[n, o, p]      = Σ_{c,ky,kx} w[o, c, ky, kx] · x[n, c, ih, iw]
//              (rows o < O, columns (n, p) < N·OH·OW, k = (c, ky, kx) < C·kh·kw)
//   1 dgrad:   dx[n, c, q]     = Σ_{o,ky,kx} w[o, c, ky, kx] · dy[n, o, oy, ox]
//              (rows c < C, columns (n, q) < N·H·W, k = (o, ky, kx) < O·kh·kw; a tap counts
//              when ih + ph − ky·dh = oy·sh and iw + pw − kx·dw = ox·sw land on an output)
//   2 wgrad:   dw[o, c, ky, kx] = Σ_{n,p} dy[n, o, p] · x[n, c, ih, iw]
//              (rows o < O, columns (c, ky, kx) < C·kh·kw, k = (n, p) < N·OH·OW; the k range
//              is split in SPLIT parts, one per grid z, written to part z of the output, which
//              the host sums in a fixed order: deterministic)
//   with ih = oy·sh − ph + ky·dh, iw = ox·sw − pw + kx·dw, p = oy·OW + ox, q = ih·W + iw;
//   taps outside the input read zero.
// Tiling: a WG_X x WG_Y workgroup computes a BM x BN tile (BM = WG_Y·TM, BN = WG_X·TN) of the
//   product; per BK steps of k it gathers the [BM, BK] and [BK, BN] operand tiles into
//   workgroup memory (k-major, as vec4s), then each invocation accumulates its TM x TN block
//   in TM·TN/4 vec4 registers. A_K_FAST / B_K_FAST say along which tile dim consecutive
//   invocations gather (the one contiguous in memory, for coalescing), set per MODE below.
// Operands: stored as S, f32 here and f16 in the mixed-precision form (src/gpu/wgsl_expand.ts
//   f16Form turns the marked alias into f16 and enables f16), widened exactly to f32 as they
//   are gathered, so both forms compute the same f32 products in the same order.
// Expanded by src/gpu/wgsl_expand.ts (overrides become constants; marked loops unrolled).
// Grid: x = ceil(cols / BN), y = ceil(rows / BM), z = 1 (MODE 2: the k split).
// Bindings: 0 uniform Params, 1 first operand tensor (w, or dy for MODE 2), 2 second (x, or
//   dy for MODE 1), 3 output (array<f32>, MODE 2: [SPLIT, O, C·kh·kw]).
alias S = f32; // @f16: storage type of the operand tensors
override MODE: u32 = 0u;
override WG_X: u32 = 16u; // invocations along the columns
override WG_Y: u32 = 16u; // invocations along the rows
override TM: u32 = 4u; // rows per invocation, a multiple of 4
override TN: u32 = 4u; // columns per invocation, a multiple of 4
override BK: u32 = 16u; // k per stage, a multiple of 4

const BM: u32 = WG_Y * TM;
const BN: u32 = WG_X * TN;
const THREADS: u32 = WG_X * WG_Y;
// Operand A is contiguous along k in w (forward) and dy (wgrad), not in the transposed w.
const A_K_FAST: bool = MODE != 1u;
// Operand B is contiguous along the columns (pixels) except for wgrad, where it is along k.
const B_K_FAST: bool = MODE == 2u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> S0: array<S>;
@group(0) @binding(2) var<storage, read> S1: array<S>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

// Input x[n, c, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw], zero outside (binding S1).
fn x_tap(n: u32, c: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> f32 {
  let ih = i32(oy * P.sh + ky * P.dh) - i32(P.ph);
  let iw = i32(ox * P.sw + kx * P.dw) - i32(P.pw);
  if (ih < 0 || iw < 0 || ih >= i32(P.h) || iw >= i32(P.w)) { return 0.0; }
  return f32(S1[((n * P.c + c) * P.h + u32(ih)) * P.w + u32(iw)]);
}

// Operand A at (row, kk), zero past the edges.
fn gather_a(row: u32, kk: u32) -> f32 {
  if (row >= P.rows || kk >= P.inner) { return 0.0; }
  if (MODE == 0u) { return f32(S0[row * P.inner + kk]); } // w[o, (c, ky, kx)]
  if (MODE == 1u) {
    // w[o, c, ky, kx] with row = c, kk = (o, t)
    let taps = P.kh * P.kw;
    return f32(S0[((kk / taps) * P.c + row) * taps + kk % taps]);
  }
  // dy[n, o, p] with row = o, kk = (n, p)
  let plane = P.oh * P.ow;
  return f32(S0[((kk / plane) * P.o + row) * plane + kk % plane]);
}

// Operand B at (kk, col), zero past the edges.
fn gather_b(kk: u32, col: u32) -> f32 {
  if (col >= P.cols || kk >= P.inner) { return 0.0; }
  let taps = P.kh * P.kw;
  if (MODE == 0u) {
    // x tap with col = (n, p), kk = (c, ky, kx)
    let plane = P.oh * P.ow;
    let p = col % plane;
    let t = kk % taps;
    return x_tap(col / plane, kk / taps, p / P.ow, p % P.ow, t / P.kw, t % P.kw);
  }
  if (MODE == 1u) {
    // dy[n, o, oy, ox] with col = (n, ih, iw), kk = (o, ky, kx), when the tap lands on one
    let plane = P.h * P.w;
    let q = col % plane;
    let t = kk % taps;
    let ty = i32(q / P.w + P.ph) - i32((t / P.kw) * P.dh);
    let tx = i32(q % P.w + P.pw) - i32((t % P.kw) * P.dw);
    if (ty < 0 || tx < 0) { return 0.0; }
    let oy = u32(ty) / P.sh;
    let ox = u32(tx) / P.sw;
    if (oy * P.sh != u32(ty) || ox * P.sw != u32(tx) || oy >= P.oh || ox >= P.ow) { return 0.0; }
    return f32(S1[(((col / plane) * P.o + kk / taps) * P.oh + oy) * P.ow + ox]);
  }
  // x tap with col = (c, ky, kx), kk = (n, p)
  let plane = P.oh * P.ow;
  let p = kk % plane;
  let t = col % taps;
  return x_tap(kk / plane, col / taps, p / P.ow, p % P.ow, t / P.kw, t % P.kw);
}

// Flat output index of product element (row, col).
fn out_index(row: u32, col: u32, part: u32) -> u32 {
  if (MODE == 0u) {
    let plane = P.oh * P.ow;
    return ((col / plane) * P.o + row) * plane + col % plane;
  }
  if (MODE == 1u) {
    let plane = P.h * P.w;
    return ((col / plane) * P.c + row) * plane + col % plane;
  }
  return (part * P.rows + row) * P.cols + col;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let part = wid.z;
  let k_begin = part * P.chunk;
  let k_end = min(P.inner, k_begin + P.chunk);
  let t = lid.y * WG_X + lid.x;
  var acc: array<array<vec4<f32>, TN / 4u>, TM>; // @registers
  var a: array<vec4<f32>, TM / 4u>; // @registers
  var b: array<vec4<f32>, TN / 4u>; // @registers
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    for (var e = t; e < BM * BK; e += THREADS) {
      var r: u32;
      var kk: u32;
      if (A_K_FAST) { r = e / BK; kk = e % BK; } else { kk = e / BM; r = e % BM; }
      var v = 0.0;
      if (k0 + kk < k_end) { v = gather_a(row0 + r, k0 + kk); }
      As[kk * (BM / 4u) + r / 4u][r % 4u] = v;
    }
    for (var e = t; e < BN * BK; e += THREADS) {
      var c: u32;
      var kk: u32;
      if (B_K_FAST) { c = e / BK; kk = e % BK; } else { kk = e / BN; c = e % BN; }
      var v = 0.0;
      if (k0 + kk < k_end) { v = gather_b(k0 + kk, col0 + c); }
      Bs[kk * (BN / 4u) + c / 4u][c % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      // @unroll
      for (var i = 0u; i < TM / 4u; i++) {
        a[i] = As[kk * (BM / 4u) + lid.y * (TM / 4u) + i];
      }
      // @unroll
      for (var j = 0u; j < TN / 4u; j++) {
        b[j] = Bs[kk * (BN / 4u) + lid.x * (TN / 4u) + j];
      }
      // @unroll
      for (var i = 0u; i < TM; i++) {
        // @unroll
        for (var j = 0u; j < TN / 4u; j++) {
          acc[i][j] = fma(vec4(a[i / 4u][i % 4u]), b[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  // @unroll
  for (var i = 0u; i < TM; i++) {
    let r = row0 + lid.y * TM + i;
    if (r < P.rows) {
      // @unroll
      for (var j = 0u; j < TN / 4u; j++) {
        // @unroll
        for (var e = 0u; e < 4u; e++) {
          let c = col0 + lid.x * TN + 4u * j + e;
          if (c < P.cols) { Out[out_index(r, c, part)] = acc[i][j][e]; }
        }
      }
    }
  }
}
