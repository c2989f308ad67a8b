// Conv weight packing: the [A, B, KH, KW] weight becomes a [rows, COLS] matrix whose columns
// are the conv's output channels, so a conv invocation loads 4 output channels as one vec4.
// Formula (FLIP = 0, forward):    out[(b·TH + u)·TW + v, a] = w[a, b, u, v]   (TH = KH, TW = KW)
//         (FLIP = 1, input grad): out[(a·TH + u)·TW + v, b] = w[a, b, ky0 − u·sy, kx0 − v·sx]
//   i.e. the weight transposed and flipped, optionally restricted to the taps of one stride
//   phase (TH × TW taps starting at ky0, kx0, stepping back by sy, sx); columns at or beyond
//   the channel count (A, or B when FLIP = 1) are 0.
// Layout: f32 row-major. Bindings: 0 uniform Params, 1 w, 2 out.
override WG: u32 = 256u;
override FLIP: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.total) { return; }
  let col = idx % P.cols;
  let row = idx / P.cols;
  let v = row % P.tw;
  let u = (row / P.tw) % P.th;
  let ch = row / (P.tw * P.th);
  var val = 0.0;
  if (FLIP == 0u) {
    if (col < P.a) { val = w[((col * P.b + ch) * P.kh + u) * P.kw + v]; }
  } else {
    if (col < P.b) {
      val = w[((ch * P.b + col) * P.kh + (P.ky0 - u * P.sy)) * P.kw + (P.kx0 - v * P.sx)];
    }
  }
  dst[idx] = val;
}
