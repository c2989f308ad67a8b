// Weight gradient of a conv on a tiny plane run unfolded (src/kernels/conv_unfold.ts): the
// gradient of the unfolded weight (conv2d_unfold.wgsl) folded back into the kernel's taps.
// Formula (dilation 1; input pixel q = ih·W + iw, output pixel p = oh·OW + ow; the tap
//   (ky, kx) = (ih − oh·SH + PH, iw − ow·SW + PW) links them when inside the kernel):
//   dw[o, c, ky, kx] = Σ dwu[(c·H·W + q)·O·P + o·P + p] over the (q, p) pairs that tap links,
//   q-major then p (a fixed order).
// Each invocation folds four kernels (o, c0 … c0 + 3): H·W·P/4 vec4s of dwu per kernel in,
//   KH·KW vec4s of dw out. The plane and kernel geometry are override constants and
//   every loop is unrolled (src/gpu/wgsl_expand.ts), so which tap feeds which float is decided
//   at compile time: no index arithmetic, no per-float loads or stores at run time.
// Requires C % 4 == 0 and OH·OW % 4 == 0 (checked in TS). Grid: x = o, y = c0 / 4.
// Layout: f32; dwu [C·H·W, O·OH·OW], dw [O, C, KH, KW]. Bindings: 0 uniform, 1 src (dwu),
//   2 dst (dw), both array<vec4<f32>>.
override WG: u32 = 8u;
override H: i32 = 2;
override W: i32 = 2;
override OH: i32 = 2;
override OW: i32 = 2;
override KH: i32 = 3;
override KW: i32 = 3;
override SH: i32 = 1;
override SW: i32 = 1;
override PH: i32 = 1;
override PW: i32 = 1;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  let c0 = gid.y * 4u;
  if (o >= P.o) { return; }
  const KK = KH * KW;
  // The four kernels' taps: KK vec4s from kernel o·C + c0 (a multiple of 4).
  let kb = (o * P.c + c0) / 4u * u32(KK);
  // wu: rows (c, q) of O·P/4 vec4s; kernel o's P/4 of them start at o·P/4.
  let p4s = u32(OH * OW / 4);
  let rowv = P.o * p4s;
  var acc: array<array<f32, KH * KW>, 4>; // @registers
  // @unroll
  for (var j = 0; j < 4; j++) {
    // @unroll
    for (var q = 0; q < H * W; q++) {
      let at = ((c0 + u32(j)) * u32(H * W) + u32(q)) * rowv + o * p4s;
      // @unroll
      for (var p4 = 0; p4 < OH * OW / 4; p4++) {
        let d = src[at + u32(p4)];
        // @unroll
        for (var l = 0; l < 4; l++) {
          const p = 4 * p4 + l;
          const ky = q / W - (p / OW) * SH + PH;
          const kx = q % W - (p % OW) * SW + PW;
          const t = min(max(ky, 0), KH - 1) * KW + min(max(kx, 0), KW - 1);
          if (ky >= 0 && ky < KH && kx >= 0 && kx < KW) {
            acc[j][t] += d[l];
          }
        }
      }
    }
  }
  // @unroll
  for (var e = 0; e < KH * KW; e++) {
    const f = 4 * e;
    dst[kb + u32(e)] = vec4(
      acc[f / KK][f % KK],
      acc[(f + 1) / KK][(f + 1) % KK],
      acc[(f + 2) / KK][(f + 2) % KK],
      acc[(f + 3) / KK][(f + 3) % KK],
    );
  }
}
