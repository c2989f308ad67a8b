// Batched matmul through workgroup memory with register blocking: the variant for real GPUs.
// Formula: C[b] = op(A[b]) · op(B[b]) (+ C[b] when ACCUMULATE = 1); op = transpose when
//   TRANS_A / TRANS_B = 1. A[b] is [M, K] ([K, M] when TRANS_A), B[b] is [K, N] ([N, K] when
//   TRANS_B), C[b] is [M, N]; row-major, any sizes; batch b starts at b * stride
//   (in elements; stride 0 broadcasts). C and the accumulation are f32; A and B are stored as
//   AB, f32 here and f16 in the mixed-precision form (src/gpu/wgsl_expand.ts f16Form turns the
//   marked alias into f16 and enables f16), widened exactly to f32 as they are loaded, so
//   both forms compute the same f32 products in the same order.
// Tiling: a WG_X x WG_Y workgroup computes a BM x BN tile of C (BM = WG_Y·TM, BN = WG_X·TN);
//   per step of BK along k it stages op(A)'s [BM, BK] and op(B)'s [BK, BN] tiles in workgroup
//   memory, k-major as vec4s (zero past the matrices, so edges need no special case in the
//   product), and each invocation accumulates its TM x TN block (rows ty·TM.., columns tx·TN..)
//   in TM·TN/4 vec4 registers, reading TM/4 + TN/4 vec4s of workgroup memory per k.
// Global loads go by groups of four consecutive elements of a stored row: one vec4 load when
//   VEC_A / VEC_B = 1 (the stored rows' length is a multiple of 4, so a group never straddles
//   an edge), else four bounds-checked scalar loads. VEC_C = 1 (N % 4 == 0) stores vec4s.
// Buffers are bound as arrays of vec4 (pool buffers are multiples of 16 bytes); a scalar
//   element e is [e / 4][e % 4].
// Expanded by src/gpu/wgsl_expand.ts: overrides become constants (they size the workgroup
//   arrays) and the marked loops and register arrays are unrolled.
// Grid: x = ceil(N / BN), y = ceil(M / BM), z = batch.
// Bindings: 0 uniform Params, 1 A, 2 B, 3 C.
alias AB = f32; // @f16: storage type of A and B
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override ACCUMULATE: u32 = 0u;
override WG_X: u32 = 16u; // invocations along N
override WG_Y: u32 = 16u; // invocations along M
override TM: u32 = 4u; // rows of C per invocation, a multiple of 4
override TN: u32 = 4u; // columns of C per invocation, a multiple of 4
override BK: u32 = 16u; // k per stage, a multiple of 4
override VEC_A: u32 = 0u;
override VEC_B: u32 = 0u;
override VEC_C: u32 = 0u;

const BM: u32 = WG_Y * TM;
const BN: u32 = WG_X * TN;
const THREADS: u32 = WG_X * WG_Y;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<AB>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<AB>>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4<f32>>;

// As[kk · BM/4 + r/4][r % 4] = op(A)[row0 + r, k0 + kk]; Bs likewise with columns.
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

// Stored A[outer, inner .. inner + 3] of a [rows, cols] matrix at base; zero past the edges.
fn load_a4(base: u32, outer: u32, inner: u32, rows: u32, cols: u32) -> vec4<f32> {
  var v = vec4(0.0);
  if (outer >= rows || inner >= cols) { return v; }
  let at = base + outer * cols + inner;
  if (VEC_A == 1u) { return vec4<f32>(A[at / 4u]); }
  // @unroll
  for (var j = 0u; j < 4u; j++) {
    if (inner + j < cols) { v[j] = f32(A[(at + j) / 4u][(at + j) % 4u]); }
  }
  return v;
}

// Stored B[outer, inner .. inner + 3] of a [rows, cols] matrix at base; zero past the edges.
fn load_b4(base: u32, outer: u32, inner: u32, rows: u32, cols: u32) -> vec4<f32> {
  var v = vec4(0.0);
  if (outer >= rows || inner >= cols) { return v; }
  let at = base + outer * cols + inner;
  if (VEC_B == 1u) { return vec4<f32>(B[at / 4u]); }
  // @unroll
  for (var j = 0u; j < 4u; j++) {
    if (inner + j < cols) { v[j] = f32(B[(at + j) / 4u][(at + j) % 4u]); }
  }
  return v;
}

fn store(o: u32, v: f32) {
  if (ACCUMULATE == 1u) { C[o / 4u][o % 4u] += v; } else { C[o / 4u][o % 4u] = v; }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let bz = wid.z;
  let ba = bz * P.stride_a;
  let bb = bz * P.stride_b;
  let bc = bz * P.stride_c;
  let t = lid.y * WG_X + lid.x;
  var acc: array<array<vec4<f32>, TN / 4u>, TM>; // @registers
  var a: array<vec4<f32>, TM / 4u>; // @registers
  var b: array<vec4<f32>, TN / 4u>; // @registers
  for (var k0 = 0u; k0 < P.k; k0 += BK) {
    // Stage op(A): groups of four along the stored rows (k, or m when transposed).
    for (var g = t; g < BM * BK / 4u; g += THREADS) {
      if (TRANS_A == 1u) {
        let kk = g / (BM / 4u);
        let q = g % (BM / 4u);
        As[kk * (BM / 4u) + q] = load_a4(ba, k0 + kk, row0 + 4u * q, P.k, P.m);
      } else {
        let r = g / (BK / 4u);
        let kq = 4u * (g % (BK / 4u));
        let v = load_a4(ba, row0 + r, k0 + kq, P.m, P.k);
        // @unroll
        for (var j = 0u; j < 4u; j++) {
          As[(kq + j) * (BM / 4u) + r / 4u][r % 4u] = v[j];
        }
      }
    }
    // Stage op(B): groups of four along the stored rows (n, or k when transposed).
    for (var g = t; g < BN * BK / 4u; g += THREADS) {
      if (TRANS_B == 1u) {
        let c = g / (BK / 4u);
        let kq = 4u * (g % (BK / 4u));
        let v = load_b4(bb, col0 + c, k0 + kq, P.n, P.k);
        // @unroll
        for (var j = 0u; j < 4u; j++) {
          Bs[(kq + j) * (BN / 4u) + c / 4u][c % 4u] = v[j];
        }
      } else {
        let kk = g / (BN / 4u);
        let q = g % (BN / 4u);
        Bs[kk * (BN / 4u) + q] = load_b4(bb, k0 + kk, col0 + 4u * q, P.k, P.n);
      }
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
    if (r < P.m) {
      // @unroll
      for (var j = 0u; j < TN / 4u; j++) {
        let c = col0 + lid.x * TN + 4u * j;
        let o = bc + r * P.n + c;
        if (VEC_C == 1u && c < P.n) {
          if (ACCUMULATE == 1u) { C[o / 4u] += acc[i][j]; } else { C[o / 4u] = acc[i][j]; }
        } else if (VEC_C == 0u) {
          // @unroll
          for (var e = 0u; e < 4u; e++) {
            if (c + e < P.n) { store(o + e, acc[i][j][e]); }
          }
        }
      }
    }
  }
}
