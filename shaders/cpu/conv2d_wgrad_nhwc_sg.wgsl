// Conv2d weight gradient for kernels up to 3×3, for CPU adapters with subgroups of a fixed size
// SG (8 lanes on 256-bit lavapipe): conv2d_wgrad_nhwc.wgsl with the dy tile, which every lane
// of a workgroup reads, loaded once (each lane one SG-th of it) and broadcast
// (subgroupBroadcast). Lavapipe runs a storage load lane by lane, so a shared value costs SG
// loads otherwise. Same products in the same order: the same bits.
// Formula: dw[s, o, c, ky, kx] = Σ_{n in chunk s, oh, ow} dy[n, o, oh, ow] · x[n, c, oh·SH − ph + ky·DH, ow·SW − pw + kx·DW]
//   read from the staged input xq [N, C, HP, SW, 4·WQ4] (see conv2d_forward.wgsl) and dy
//   transposed to dyt [N, OH, OW, O] (O % 4 == 0); the caller sums the batch chunks s in a
//   fixed order.
// Tiling: as conv2d_wgrad_nhwc.wgsl (4·TO4 output channels × TC input channels × all taps per
//   invocation); a workgroup is SG input-channel blocks of one output-channel block.
// Expanded by src/gpu/wgsl_expand.ts for each variant (`@unroll`, `@registers`).
// Grid: x = ⌈O/(4·TO4)⌉·⌈⌈C/TC⌉ / SG⌉ workgroups, y = batch chunks.
// Bindings: 0 uniform Params (struct injected from src/kernels/conv_direct.ts), 1 xq,
//   2 dyt (array<vec4<f32>>), 3 dw (array<f32>).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override TO4: u32 = 2u;
override TC: u32 = 2u;
override TP: u32 = 8u; // a multiple of 4
// Input vec4s one tap row of TP columns touches (from any offset within a vec4).
override XV: u32 = TP / 4u + 1u;
override SG: u32 = 8u; // lanes of a subgroup = invocations of a workgroup
// dy vec4s per lane: the TO4·TP of a column block, shared out over the SG lanes.
override GQ: u32 = (TO4 * TP + SG - 1u) / SG;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dyt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(SG, 1, 1)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  // Workgroup wid.x owns SG input-channel blocks of one output-channel block (so dy is the
  // same for all its lanes); blocks past the last one compute garbage and store nothing.
  let groups = (P.cb + SG - 1u) / SG;
  let block = (wid.x % groups) * SG + gid.x % SG;
  let live = block < P.cb;
  let split = gid.y;
  let c0 = min(block, P.cb - 1u) * TC;
  let ob = (wid.x / groups) * TO4;
  let n0 = split * P.nper;
  let n1 = min(n0 + P.nper, P.n);
  let rstride = SW * P.wq4;
  var acc: array<array<array<array<vec4<f32>, KW>, KH>, TC>, TO4>; // @registers
  for (var n = n0; n < n1; n++) {
    for (var r = 0u; r < P.oh; r++) {
      let drow = (n * P.oh + r) * P.ow;
      // Row starts in xq per input channel (clamped at the edge).
      var xr: array<u32, TC>; // @registers
      // @unroll
      for (var c = 0u; c < TC; c++) {
        xr[c] = ((n * P.c + min(c0 + c, P.c - 1u)) * P.hp + r * SH) * rstride;
      }
      for (var p0 = 0u; p0 < P.ow; p0 += TP) {
        // dy of TP columns × 4·TO4 channels, zero past the row end: lane l loads entries
        // q·SG + l (column t / TO4, channel block t % TO4), then each reaches every lane by
        // broadcast. A select, not a branch: lavapipe compiles branches around register
        // writes slowly.
        var gl: array<vec4<f32>, GQ>; // @registers
        // @unroll
        for (var q = 0u; q < GQ; q++) {
          let t = min(q * SG + lane, TO4 * TP - 1u);
          let j = t / TO4;
          let i = t % TO4;
          let inside = p0 + j < P.ow;
          let d = (drow + min(p0 + j, P.ow - 1u)) * P.o4 + ob;
          gl[q] = select(vec4<f32>(), dyt[d + min(i, P.o4 - 1u - ob)], inside);
        }
        var g: array<array<vec4<f32>, TP>, TO4>; // @registers
        // @unroll
        for (var j = 0u; j < TP; j++) {
          // @unroll
          for (var i = 0u; i < TO4; i++) {
            g[i][j] = subgroupBroadcast(gl[(j * TO4 + i) / SG], (j * TO4 + i) % SG);
          }
        }
        // @unroll
        for (var c = 0u; c < TC; c++) {
          // @unroll
          for (var y = 0u; y < KH; y++) {
            let rb = xr[c] + y * DH * rstride + p0 / 4u;
            // @unroll
            for (var k = 0u; k < KW; k++) {
              const a = (k * DW) / SW;
              const s = a % 4u;
              const last = (s + TP - 1u) / 4u;
              let base = rb + ((k * DW) % SW) * P.wq4 + a / 4u;
              var xv: array<vec4<f32>, XV>; // @registers
              // @unroll
              for (var v = 0u; v < XV; v++) {
                xv[v] = xq[base + min(v, last)];
              }
              var xs: array<f32, TP>; // @registers
              // @unroll
              for (var j = 0u; j < TP; j++) {
                xs[j] = xv[(s + j) / 4u][(s + j) % 4u];
              }
              // @unroll
              for (var i = 0u; i < TO4; i++) {
                // @unroll
                for (var j = 0u; j < TP; j++) {
                  acc[i][c][y][k] = fma(g[i][j], vec4<f32>(xs[j]), acc[i][c][y][k]);
                }
              }
            }
          }
        }
      }
    }
  }
  // Pair q = (i, c) is stored from slot (0, 0), then every pair's taps shift down one slot: a
  // runtime loop with 4·KH·KW store sites instead of 4·TO4·TC·KH·KW unrolled conditional
  // scalar stores, which took lavapipe seconds to compile (LLVM).
  for (var q = 0u; q < TO4 * TC; q++) {
    let i = q / TC;
    let c = q % TC;
    if (live && c0 + c < P.c) {
      // @unroll
      for (var l = 0u; l < 4u; l++) {
        let o = (ob + i) * 4u + l;
        if (o < P.o) {
          let b = ((split * P.o + o) * P.c + c0 + c) * P.kk;
          // @unroll
          for (var y = 0u; y < KH; y++) {
            // @unroll
            for (var k = 0u; k < KW; k++) {
              dw[b + y * KW + k] = acc[0][0][y][k][l];
            }
          }
        }
      }
    }
    // @unroll
    for (var p = 0u; p < TO4 * TC - 1u; p++) {
      // @unroll
      for (var y = 0u; y < KH; y++) {
        // @unroll
        for (var k = 0u; k < KW; k++) {
          acc[p / TC][p % TC][y][k] = acc[(p + 1u) / TC][(p + 1u) % TC][y][k];
        }
      }
    }
  }
}
