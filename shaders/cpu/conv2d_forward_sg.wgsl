// Conv2d forward (and input gradient) for CPU adapters with subgroups of a fixed size SG (8
// lanes on 256-bit lavapipe): conv2d_forward.wgsl with each kernel row's weights, which every
// lane of a workgroup reads, loaded once (each lane one SG-th of them) and broadcast
// (subgroupBroadcast) at each tap. Lavapipe runs a storage load lane by lane, so a shared value
// costs SG loads otherwise. Same products in the same order: the same bits.
// Formula: y[n, o, oh, ow] = Σ_{c, ky, kx} x[n, c, oh·SH − ph + ky·DH, ow·SW − pw + kx·DW] · w[o, c, ky, kx]
//   on the staged input xq [N, C, HP, SW, 4·WQ4] and packed weights wp [C·KH·KW, 4·OP4]
//   (see conv2d_forward.wgsl, whose input-gradient use this shares).
// Tiling: as conv2d_forward.wgsl (4·TM4 output channels × TN columns of one output row of NB
//   images per invocation); a workgroup is SG row blocks of one output-channel block.
// Expanded by src/gpu/wgsl_expand.ts for each variant (`@unroll`, `@registers`).
// Output: y[n, o, yr0 + oh·ysr, yc0 + ow·ysc] of a [N, O, yh, yw] tensor.
// Grid: x = output-row blocks (OH·OWB) / SG, y = OP4 / TM4, z = ⌈N / NB⌉.
// Bindings: 0 uniform Params (struct injected from src/kernels/conv_direct.ts), 1 xq,
//   2 wp (array<vec4<f32>>), 3 y (array<f32>).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override TM4: u32 = 4u;
override TN: u32 = 8u; // a multiple of 4
override NB: u32 = 1u;
// Input vec4s one image's tap row touches (TN columns from any offset within a vec4).
override VPI: u32 = TN / 4u + 1u;
override SG: u32 = 8u; // lanes of a subgroup = invocations of a workgroup
// Weight vec4s per lane: the KW·TM4 of a kernel row, shared out over the SG lanes.
override WQ: u32 = (KW * TM4 + SG - 1u) / SG;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wp: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(SG, 1, 1)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  // Every lane stays for the broadcasts: blocks past the last one compute garbage from the
  // last block's inputs and store nothing (ob is the same for the whole workgroup).
  let live = gid.x < P.oh * P.owb;
  let pb = min(gid.x, P.oh * P.owb - 1u);
  let ob = gid.y;
  let n0 = gid.z * NB;
  if (ob * TM4 >= P.op4) { return; }
  let orow = pb / P.owb;
  let ow0 = (pb % P.owb) * TN;
  let rstride = SW * P.wq4;
  let plane = P.hp * rstride;
  let cplane = P.c * plane;
  var xrow = orow * SH * rstride + ow0 / 4u;
  var wrow = ob * TM4;
  var acc: array<array<vec4<f32>, NB * TN>, TM4>; // @registers
  for (var c = 0u; c < P.c; c++) {
    // Kernels up to 3×3 unroll their rows too: bigger loop bodies, ~10 % faster; larger
    // ones keep the loop (lavapipe compiles them ~2× faster).
    // @unroll if KH <= 3u && KW <= 3u
    for (var ky = 0u; ky < KH; ky++) {
      let rb = xrow + ky * DH * rstride;
      // The weights of this kernel row (KW taps × TM4 vec4s), the same for every lane: lane l
      // loads entries q·SG + l (tap t / TM4, channel block t % TM4), broadcast at each tap.
      var wl: array<vec4<f32>, WQ>; // @registers
      // @unroll
      for (var q = 0u; q < WQ; q++) {
        let t = min(q * SG + lane, KW * TM4 - 1u);
        wl[q] = wp[wrow + (t / TM4) * P.op4 + t % TM4];
      }
      // @unroll
      for (var kx = 0u; kx < KW; kx++) {
        // Tap kx reads phase (kx·DW) mod SW, `a` columns on, from lane `s` of a vec4.
        const a = (kx * DW) / SW;
        const s = a % 4u;
        const last = (s + TN - 1u) / 4u;
        let base = rb + ((kx * DW) % SW) * P.wq4 + a / 4u;
        // Image starts are clamped, so a partial last image block reads image N − 1 again
        // (and stores nothing for it).
        var xv: array<vec4<f32>, NB * VPI>; // @registers
        // @unroll
        for (var v = 0u; v < NB * VPI; v++) {
          xv[v] = xq[min(n0 + v / VPI, P.n - 1u) * cplane + base + min(v % VPI, last)];
        }
        var xs: array<f32, NB * TN>; // @registers
        // @unroll
        for (var j = 0u; j < NB * TN; j++) {
          xs[j] = xv[(j / TN) * VPI + (s + j % TN) / 4u][(s + j % TN) % 4u];
        }
        let wb = wrow + kx * P.op4;
        // @unroll
        for (var i = 0u; i < TM4; i++) {
          let w = subgroupBroadcast(wl[(kx * TM4 + i) / SG], (kx * TM4 + i) % SG);
          // @unroll
          for (var j = 0u; j < NB * TN; j++) {
            acc[i][j] = fma(w, vec4<f32>(xs[j]), acc[i][j]);
          }
        }
      }
      wrow += KW * P.op4;
    }
    xrow += plane;
  }
  // Output (orow, ow) lands at y[n, o, yr0 + orow·ysr, yc0 + ow·ysc] of a [N, O, yh, yw]
  // tensor: the identity for a plain conv, one stride phase of the input gradient otherwise.
  let ych = P.yh * P.yw;
  let yrow = (P.yr0 + orow * P.ysr) * P.yw + P.yc0;
  // Columns are stored 4 at a time from slots 0–3, then every slot shifts down by four: a
  // runtime loop with 16·TM4 store sites instead of 4·TM4·NB·TN unrolled conditional scalar
  // stores, which took lavapipe seconds to compile (LLVM); the epilogue is a few % slower.
  for (var j0 = 0u; j0 < NB * TN; j0 += 4u) {
    // @unroll
    for (var jj = 0u; jj < 4u; jj++) {
      let j = j0 + jj;
      if (live && ow0 + j % TN < P.ow && n0 + j / TN < P.n) {
        let yb = (n0 + j / TN) * P.o * ych + yrow + (ow0 + j % TN) * P.ysc;
        // @unroll
        for (var i = 0u; i < TM4; i++) {
          // @unroll
          for (var l = 0u; l < 4u; l++) {
            let o = (ob * TM4 + i) * 4u + l;
            if (o < P.o) {
              y[yb + o * ych] = acc[i][jj][l];
            }
          }
        }
      }
    }
    // @unroll
    for (var i = 0u; i < TM4; i++) {
      // @unroll
      for (var k = 0u; k < NB * TN - 4u; k++) {
        acc[i][k] = acc[i][k + 4u];
      }
    }
  }
}
