// Batched matmul, register-blocked, vec4 loads, no workgroup memory: the lavapipe/CPU variant.
// Formula: C[b] = A[b] · op(B[b]) (+ C[b] when ACCUMULATE = 1); op = transpose when
//   TRANS_B = 1. A[b] is [M, K], B[b] is [K, N] ([N, K] when TRANS_B), C[b] is [M, N]; f32
//   row-major; batch b starts at b * stride (in vec4 units; stride 0 broadcasts).
// Requires K % 4 == 0 and N % 4 == 0 (src/kernels/matmul.ts pads).
// No TRANS_A: src/kernels/matmul.ts copies a transposed A into place. In training that A is an
//   output gradient (weight gradients dW = dYᵀ·X), small next to the product; copy + plain
//   kernel measured 5–7 % faster than transposing in registers, and lavapipe JIT-compiles
//   each variant for ~1.3 s at its first dispatch, so a training step's first step compiles
//   two variants instead of three.
// Tiling: each invocation keeps a TM x 4·TN4 block of C in TM·TN4 vec4 registers c[i][j]
//   (row i, columns 4j..4j+3): lavapipe pays ~50 FMAs per storage load, so per 4 steps of k
//   it loads TM + 4·TN4 vec4s (32 + 16 by default) for 16·TM·TN4 FMAs (2048). Rows or
//   columns past the edge read clamped garbage that only reaches outputs never stored.
// Expanded by src/gpu/wgsl_expand.ts for each variant: `@unroll` loops are repeated and
//   `@registers` arrays become one variable per element (lavapipe unrolls neither).
// Grid: x = ceil(N / (4·TN4·WG_X)), y = ceil(M / (TM·WG_Y)), z = batch.
// Bindings: 0 uniform Params (struct injected from src/kernels/matmul.ts), 1 A, 2 B, 3 C
//   (all array<vec4<f32>>).
override TRANS_B: u32 = 0u;
override ACCUMULATE: u32 = 0u;
override TM: u32 = 32u; // rows of C per invocation, a multiple of 4
override TN4: u32 = 4u; // vec4 columns of C per invocation
override WG_X: u32 = 8u;
override WG_Y: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C: array<vec4<f32>>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * TM;
  let c4 = gid.x * TN4;
  let bz = gid.z;
  if (row0 >= P.m || c4 >= P.n4 || bz >= P.batch) { return; }
  let ba = bz * P.stride_a;
  let bb = bz * P.stride_b;
  let bc = bz * P.stride_c;
  var c: array<array<vec4<f32>, TN4>, TM>; // @registers
  var a: array<vec4<f32>, TM>; // @registers: row i of the A tile, k .. k + 3
  var b: array<array<vec4<f32>, TN4>, 4>; // @registers: row k + r of the B tile
  for (var kk = 0u; kk < P.k4; kk++) {
    let k = kk * 4u;
    // @unroll
    for (var i = 0u; i < TM; i++) {
      a[i] = A[ba + (row0 + i) * P.k4 + kk];
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
