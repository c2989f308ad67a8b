// Conv weight packing: the [A, B, KH, KW] weight becomes a [rows, COLS] matrix whose columns
// are the conv's output channels, so a conv invocation loads 4 output channels as one vec4.
// Formula (FLIP = 0, forward):   out[(b·KH + ky)·KW + kx, a] = w[a, b, ky, kx]
//         (FLIP = 1, input grad): out[(a·KH + ky)·KW + kx, b] = w[a, b, KH−1−ky, KW−1−kx]
//   columns at or beyond the channel count (A, or B when FLIP = 1) are 0.
// Layout: f32 row-major. Bindings: 0 uniform Params, 1 w, 2 out.
override WG: u32 = 256u;
override FLIP: u32 = 0u;

struct Params {
  total: u32,
  a: u32,
  b: u32,
  kh: u32,
  kw: u32,
  cols: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.total) { return; }
  let col = idx % P.cols;
  let row = idx / P.cols;
  let kx = row % P.kw;
  let ky = (row / P.kw) % P.kh;
  let ch = row / (P.kw * P.kh);
  var v = 0.0;
  if (FLIP == 0u) {
    if (col < P.a) { v = w[((col * P.b + ch) * P.kh + ky) * P.kw + kx]; }
  } else {
    if (col < P.b) {
      v = w[((ch * P.b + col) * P.kh + (P.kh - 1u - ky)) * P.kw + (P.kw - 1u - kx)];
    }
  }
  dst[idx] = v;
}
