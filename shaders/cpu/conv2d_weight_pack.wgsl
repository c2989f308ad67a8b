// Conv weight packing: the [A, B, KH, KW] weight becomes a [rows, COLS] matrix whose columns
// are the conv's output channels, so a conv invocation loads 4 output channels as one vec4.
// Formula (FLIP = 0, forward):    out[(b·TH + u)·TW + v, a] = w[a, b, u, v]   (TH = KH, TW = KW)
//         (FLIP = 1, input grad): out[(a·TH + u)·TW + v, b] = w[a, b, ky0 − u·sy, kx0 − v·sx]
//   i.e. the weight transposed and flipped, optionally restricted to the taps of one stride
//   phase (TH × TW taps starting at ky0, kx0, stepping back by sy, sx); columns at or beyond
//   the channel count (A, or B when FLIP = 1) are 0.
// Grid: x = column vec4 (4 output channels per invocation, one vec4 store), y = tap
//   t = u·TW + v, z = row channel (b, or a when FLIP = 1): two index splits per invocation
//   instead of six per element (u32 divisions run lane by lane on lavapipe).
// Layout: f32 row-major, COLS a multiple of 4. Bindings: 0 uniform Params, 1 w, 2 out
//   (array<vec4<f32>>).
override WG: u32 = 64u;
override FLIP: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col4 = gid.x;
  let t = gid.y;
  let ch = gid.z;
  if (col4 * 4u >= P.cols) { return; }
  let u = t / P.tw;
  let v = t % P.tw;
  var val = vec4<f32>();
  for (var l = 0u; l < 4u; l++) {
    let col = col4 * 4u + l;
    if (FLIP == 0u) {
      if (col < P.a) { val[l] = w[((col * P.b + ch) * P.kh + u) * P.kw + v]; }
    } else {
      if (col < P.b) {
        val[l] = w[((ch * P.b + col) * P.kh + (P.ky0 - u * P.sy)) * P.kw + (P.kx0 - v * P.sx)];
      }
    }
  }
  dst[((ch * P.th * P.tw) + t) * (P.cols / 4u) + col4] = val;
}
