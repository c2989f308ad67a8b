// Conv2d weight gradient as implicit GEMM, register-blocked, deterministic (no atomics).
// Formula: dw[s, o, c, ky, kx] = Σ_{n in chunk s, oh, ow} dy[n, o, oh, ow] · x[n, c, oh·SH − ph + ky·DH, ow·SW − pw + kx·DW]
//   read from the staged input xq [N, C, HP, SW, 4·WQ4] (see conv2d_forward.wgsl) and dy
//   zero-padded to 4·OW4 columns; the caller sums the batch chunks s in a fixed order.
// Tiling: each invocation owns TO output channels × TC input channels × one ky × all KW taps,
//   in vec4 accumulators acc[i][c][k] whose lanes are partial sums over ow ≡ lane (mod 4),
//   added at the end. Per 4 output columns it loads TO dy vec4s and 2 input vec4s per
//   input channel and tap for 4·TO·TC·KW FMAs.
// Expanded by src/gpu/wgsl_expand.ts for each variant: `@unroll` loops are repeated and
//   `@registers` arrays become one variable per element (lavapipe unrolls neither).
// Grid: x = ⌈O/TO⌉·⌈C/TC⌉·KH / WG_X, y = batch chunks.
// Bindings: 0 uniform Params (struct injected from src/kernels/conv_direct.ts), 1 xq,
//   2 dy (array<vec4<f32>>), 3 dw (array<f32>).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override TO: u32 = 8u;
override TC: u32 = 2u;
override WG_X: u32 = 8u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

// Element t of the 12 floats v0 ‖ v1 ‖ v2 (t is constant in every expanded variant).
fn pick(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, t: u32) -> f32 {
  return select(select(v0[t % 4u], v1[t % 4u], t >= 4u), v2[t % 4u], t >= 8u);
}

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x;
  if (idx >= P.total) { return; }
  let split = gid.y;
  let ky = idx % KH;
  let t = idx / KH;
  let c0 = (t % P.cb) * TC;
  let o0 = (t / P.cb) * TO;
  let n0 = split * P.nper;
  let n1 = min(n0 + P.nper, P.n);
  let rstride = SW * P.wq4;
  var acc: array<array<array<vec4<f32>, KW>, TC>, TO>; // @registers
  for (var n = n0; n < n1; n++) {
    for (var r = 0u; r < P.oh; r++) {
      // Row starts in dy per output channel and in xq per input channel (clamped at the edge).
      var d: array<u32, TO>; // @registers
      // @unroll
      for (var i = 0u; i < TO; i++) {
        d[i] = ((n * P.o + min(o0 + i, P.o - 1u)) * P.oh + r) * P.ow4;
      }
      var xr: array<u32, TC>; // @registers
      // @unroll
      for (var c = 0u; c < TC; c++) {
        xr[c] = ((n * P.c + min(c0 + c, P.c - 1u)) * P.hp + r * SH + ky * DH) * rstride;
      }
      for (var q = 0u; q < P.ow4; q++) {
        var g: array<vec4<f32>, TO>; // @registers
        // @unroll
        for (var i = 0u; i < TO; i++) {
          g[i] = dy[d[i] + q];
        }
        // @unroll
        for (var c = 0u; c < TC; c++) {
          // @unroll
          for (var k = 0u; k < KW; k++) {
            const a = (k * DW) / SW;
            const s = a % 4u;
            let base = xr[c] + q + ((k * DW) % SW) * P.wq4 + a / 4u;
            let v0 = xq[base];
            let v1 = xq[base + select(0u, 1u, s > 0u)];
            let xv = vec4<f32>(pick(v0, v1, v1, s), pick(v0, v1, v1, s + 1u), pick(v0, v1, v1, s + 2u), pick(v0, v1, v1, s + 3u));
            // @unroll
            for (var i = 0u; i < TO; i++) {
              acc[i][c][k] = fma(g[i], xv, acc[i][c][k]);
            }
          }
        }
      }
    }
  }
  let one = vec4<f32>(1.0);
  // @unroll
  for (var i = 0u; i < TO; i++) {
    // @unroll
    for (var c = 0u; c < TC; c++) {
      if (o0 + i < P.o && c0 + c < P.c) {
        let b = ((split * P.o + o0 + i) * P.c + c0 + c) * P.kk + ky * KW;
        // @unroll
        for (var k = 0u; k < KW; k++) {
          dw[b + k] = dot(acc[i][c][k], one);
        }
      }
    }
  }
}
