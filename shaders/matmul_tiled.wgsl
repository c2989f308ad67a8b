// Batched matmul with workgroup-memory tiling: the variant for real GPUs.
// Formula: C[b] = op(A[b]) · op(B[b]) (+ C[b] when ACCUMULATE = 1); op = transpose when
//   TRANS_A / TRANS_B = 1. A[b] is [M, K] ([K, M] when TRANS_A), B[b] is [K, N] ([N, K] when
//   TRANS_B), C[b] is [M, N]; f32 row-major, any sizes; batch b starts at b * stride
//   (in elements; stride 0 broadcasts).
// Tiling: a WG x WG workgroup computes a (WG*TM) x (WG*TN) tile of C. Per step of BK along k
//   it stages the A tile [WG*TM, BK] and the B tile [BK, WG*TN] in workgroup memory (zero
//   outside the matrices, so edges need no special case), then each invocation accumulates
//   its TM x TN block from registers. TM, TN, BK are const (array sizes); WG is an override,
//   at most 16 (MAX_TILE = 16 * TM sizes the workgroup arrays); the staging loops stride by
//   WG*WG, so any WG up to that works.
// Grid: x = ceil(N / (WG*TN)), y = ceil(M / (WG*TM)), z = batch.
// Bindings: 0 uniform Params, 1 A, 2 B, 3 C (all array<f32>).
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override ACCUMULATE: u32 = 0u;
override WG: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 16u;
const MAX_TILE: u32 = 64u; // WG * TM for the largest WG (16) the array sizes allow

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// As[kk][row], Bs[kk][col]: k-major so the inner loop reads consecutive rows/cols.
var<workgroup> As: array<array<f32, MAX_TILE>, BK>;
var<workgroup> Bs: array<array<f32, MAX_TILE>, BK>;

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
  if (row >= P.m || kk >= P.k) { return 0.0; }
  if (TRANS_A == 1u) { return A[base + kk * P.m + row]; }
  return A[base + row * P.k + kk];
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
  if (col >= P.n || kk >= P.k) { return 0.0; }
  if (TRANS_B == 1u) { return B[base + col * P.k + kk]; }
  return B[base + kk * P.n + col];
}

@compute @workgroup_size(WG, WG, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let tile_m = WG * TM;
  let tile_n = WG * TN;
  let row0 = wid.y * tile_m;
  let col0 = wid.x * tile_n;
  let bz = wid.z;
  let ba = bz * P.stride_a;
  let bb = bz * P.stride_b;
  let bc = bz * P.stride_c;
  let t = lid.y * WG + lid.x;
  let nthreads = WG * WG;
  var acc: array<array<f32, TN>, TM>;
  for (var k0 = 0u; k0 < P.k; k0 += BK) {
    for (var e = t; e < BK * tile_m; e += nthreads) {
      // consecutive threads walk k for TRANS_A = 0 (contiguous in A), rows otherwise.
      var kk: u32;
      var r: u32;
      if (TRANS_A == 1u) { kk = e / tile_m; r = e % tile_m; } else { r = e / BK; kk = e % BK; }
      As[kk][r] = load_a(ba, row0 + r, k0 + kk);
    }
    for (var e = t; e < BK * tile_n; e += nthreads) {
      var kk: u32;
      var c: u32;
      if (TRANS_B == 1u) { c = e / BK; kk = e % BK; } else { kk = e / tile_n; c = e % tile_n; }
      Bs[kk][c] = load_b(bb, k0 + kk, col0 + c);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var av: array<f32, TM>;
      var bv: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { av[i] = As[kk][lid.y * TM + i]; }
      for (var j = 0u; j < TN; j++) { bv[j] = Bs[kk][lid.x * TN + j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  if (bz >= P.batch) { return; }
  for (var i = 0u; i < TM; i++) {
    let r = row0 + lid.y * TM + i;
    if (r >= P.m) { break; }
    for (var j = 0u; j < TN; j++) {
      let c = col0 + lid.x * TN + j;
      if (c >= P.n) { break; }
      let o = bc + r * P.n + c;
      if (ACCUMULATE == 1u) { C[o] = C[o] + acc[i][j]; } else { C[o] = acc[i][j]; }
    }
  }
}
