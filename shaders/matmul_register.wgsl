// Batched matmul, register-blocked (no workgroup memory): the lavapipe variant.
// Formula: C[b] = op(A[b]) · op(B[b]) (+ C[b] when ACCUMULATE = 1), op = transpose when
//   TRANS_A / TRANS_B = 1. A[b] is [M, K] (or [K, M] transposed), B[b] is [K, N] (or [N, K]).
// Layout: f32 row-major; batch b starts at b * stride_{a,b,c} (stride 0 broadcasts).
// Each invocation computes a TM x TN block of C held in registers.
// Bindings: 0 uniform Params, 1 A, 2 B, 3 C.
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override ACCUMULATE: u32 = 0u;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 4u;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  batch: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  _p: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

fn load_a(base: u32, row: u32, kk: u32) -> f32 {
  if (row >= P.m) { return 0.0; }
  if (TRANS_A == 1u) { return A[base + kk * P.m + row]; }
  return A[base + row * P.k + kk];
}

fn load_b(base: u32, kk: u32, col: u32) -> f32 {
  if (col >= P.n) { return 0.0; }
  if (TRANS_B == 1u) { return B[base + col * P.k + kk]; }
  return B[base + kk * P.n + col];
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * TM;
  let col0 = gid.x * TN;
  let b = gid.z;
  if (row0 >= P.m || col0 >= P.n || b >= P.batch) { return; }
  let ba = b * P.stride_a;
  let bb = b * P.stride_b;
  let bc = b * P.stride_c;
  var acc: array<array<f32, TN>, TM>;
  var av: array<f32, TM>;
  var bv: array<f32, TN>;
  for (var kk = 0u; kk < P.k; kk++) {
    for (var i = 0u; i < TM; i++) { av[i] = load_a(ba, row0 + i, kk); }
    for (var j = 0u; j < TN; j++) { bv[j] = load_b(bb, kk, col0 + j); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let r = row0 + i;
    if (r >= P.m) { break; }
    for (var j = 0u; j < TN; j++) {
      let c = col0 + j;
      if (c >= P.n) { break; }
      if (ACCUMULATE == 1u) {
        C[bc + r * P.n + c] = C[bc + r * P.n + c] + acc[i][j];
      } else {
        C[bc + r * P.n + c] = acc[i][j];
      }
    }
  }
}
