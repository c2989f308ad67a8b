// Batched matmul, register-blocked, for CPU adapters with subgroups of a fixed size SG (8 lanes
// on 256-bit lavapipe): matmul_register.wgsl, except that each row of the A tile is loaded by
// one lane and broadcast to the others (subgroupBroadcast) instead of by every lane.
// Formula: C[b] = A[b] · op(B[b]) (+ C[b] when ACCUMULATE = 1); op = transpose when
//   TRANS_B = 1. A[b] is [M, K], B[b] is [K, N] ([N, K] when TRANS_B), C[b] is [M, N]; f32
//   row-major; batch b starts at b * stride (in vec4 units; stride 0 broadcasts).
// Requires K % 4 == 0 and N % 4 == 0 (src/kernels/matmul.ts pads), a workgroup that is one
//   whole subgroup of SG lanes (AdapterFacts.subgroupLanes), and TM a multiple of SG.
// Why: lavapipe runs a storage load lane by lane (a loop over the 8 lanes with a bounds check
//   per component), so a value every lane needs costs 8 loads. The A rows are the same for all
//   lanes of a workgroup: loaded once each and broadcast (an extract and a splat in registers),
//   a k step loads TM / SG + 4·TN4 vec4s per lane instead of TM + 4·TN4. The sums, and their
//   k order, are matmul_register's: the results are the same bits.
// Tiling: each invocation keeps a TM x 4·TN4 block of C in registers (see matmul_register);
//   rows or columns past the edge read clamped garbage that only reaches outputs never stored.
// Expanded by src/gpu/wgsl_expand.ts for each variant (`@unroll`, `@registers`).
// Grid: x = ceil(N / (4·TN4·SG)), y = ceil(M / TM), z = batch.
// Bindings: 0 uniform Params (struct injected from src/kernels/matmul.ts), 1 A, 2 B, 3 C
//   (all array<vec4<f32>>).
override TRANS_B: u32 = 0u;
override ACCUMULATE: u32 = 0u;
override TM: u32 = 32u; // rows of C per invocation, a multiple of SG
override TN4: u32 = 2u; // vec4 columns of C per invocation
override SG: u32 = 8u; // lanes of a subgroup = invocations of a workgroup

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4<f32>>;

@compute @workgroup_size(SG, 1, 1)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let row0 = gid.y * TM;
  let c4 = gid.x * TN4;
  let bz = gid.z;
  // Uniform over the workgroup: every lane stays for the broadcasts (columns past the edge
  // compute garbage that is never stored).
  if (row0 >= P.m || bz >= P.batch) { return; }
  let ba = bz * P.stride_a;
  let bb = bz * P.stride_b;
  let bc = bz * P.stride_c;
  var c: array<array<vec4<f32>, TN4>, TM>; // @registers
  var a: array<vec4<f32>, TM>; // @registers: row i of the A tile, k .. k + 3
  var b: array<array<vec4<f32>, TN4>, 4>; // @registers: row k + r of the B tile
  for (var kk = 0u; kk < P.k4; kk++) {
    let k = kk * 4u;
    // Lane l loads rows row0 + q·SG + l; each row then reaches every lane by broadcast.
    // @unroll
    for (var q = 0u; q < TM / SG; q++) {
      let aq = A[ba + (row0 + q * SG + lane) * P.k4 + kk];
      // @unroll
      for (var l = 0u; l < SG; l++) {
        a[q * SG + l] = subgroupBroadcast(aq, l);
      }
    }
    if (TRANS_B == 0u) {
      // @unroll
      for (var r = 0u; r < 4u; r++) {
        // @unroll
        for (var j = 0u; j < TN4; j++) {
          b[r][j] = B[bb + (k + r) * P.n4 + c4 + j];
        }
      }
    } else {
      // Bᵀ: columns of the stored [N, K] matrix, transposed in registers.
      var u: array<vec4<f32>, 4 * TN4>; // @registers
      // @unroll
      for (var e = 0u; e < 4u * TN4; e++) {
        u[e] = B[bb + (c4 * 4u + e) * P.k4 + kk];
      }
      // @unroll
      for (var r = 0u; r < 4u; r++) {
        // @unroll
        for (var j = 0u; j < TN4; j++) {
          b[r][j] = vec4(u[4u * j][r], u[4u * j + 1u][r], u[4u * j + 2u][r], u[4u * j + 3u][r]);
        }
      }
    }
    // @unroll
    for (var i = 0u; i < TM; i++) {
      // @unroll
      for (var r = 0u; r < 4u; r++) {
        // @unroll
        for (var j = 0u; j < TN4; j++) {
          c[i][j] = fma(vec4(a[i][r]), b[r][j], c[i][j]);
        }
      }
    }
  }
  // @unroll
  for (var i = 0u; i < TM; i++) {
    if (row0 + i < P.m) {
      let o = bc + (row0 + i) * P.n4 + c4;
      // @unroll
      for (var j = 0u; j < TN4; j++) {
        if (c4 + j < P.n4) {
          if (ACCUMULATE == 1u) { C[o + j] = C[o + j] + c[i][j]; } else { C[o + j] = c[i][j]; }
        }
      }
    }
  }
}
