// Conv weight as a dense matrix for convs on tiny planes (src/kernels/conv_unfold.ts): the
// weight unfolded over the whole plane (conv2d_fold.wgsl folds its gradient back).
// Formula (dilation 1; input pixel q = ih·W + iw, output pixel p = oh·OW + ow; the tap
//   (ky, kx) = (ih − oh·SH + PH, iw − ow·SW + PW) links them when inside the kernel):
//   wu[(c·H·W + q)·O·P + o·P + p] = w[o, c, ky, kx], or 0 where no tap links q and p.
// Each invocation unfolds four kernels (o, c0 … c0 + 3): KH·KW vec4s of w in, H·W·P/4 vec4s
//   of wu out per kernel. The plane and kernel geometry are override constants and
//   every loop is unrolled (src/gpu/wgsl_expand.ts), so which tap feeds which float is decided
//   at compile time: no index arithmetic, no per-float loads or stores at run time.
// Requires C % 4 == 0 and OH·OW % 4 == 0 (checked in TS). Grid: x = o, y = c0 / 4.
// Layout: f32; w [O, C, KH, KW], wu [C·H·W, O·OH·OW]. Bindings: 0 uniform, 1 src (w), 2 dst
//   (wu), both array<vec4<f32>>.
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
  var k: array<vec4<f32>, KH * KW>; // @registers
  // @unroll
  for (var e = 0; e < KH * KW; e++) {
    k[e] = src[kb + u32(e)];
  }
  // @unroll
  for (var j = 0; j < 4; j++) {
    // @unroll
    for (var q = 0; q < H * W; q++) {
      let at = ((c0 + u32(j)) * u32(H * W) + u32(q)) * rowv + o * p4s;
      // @unroll
      for (var p4 = 0; p4 < OH * OW / 4; p4++) {
        var v = vec4<f32>();
        // @unroll
        for (var l = 0; l < 4; l++) {
          const p = 4 * p4 + l;
          const ky = q / W - (p / OW) * SH + PH;
          const kx = q % W - (p % OW) * SW + PW;
          // Clamped: the index must be valid in the copies where the branch is dead too.
          const f = j * KK + min(max(ky, 0), KH - 1) * KW + min(max(kx, 0), KW - 1);
          if (ky >= 0 && ky < KH && kx >= 0 && kx < KW) {
            v[l] = k[f / 4][f % 4];
          }
        }
        dst[at + u32(p4)] = v;
      }
    }
  }
}
