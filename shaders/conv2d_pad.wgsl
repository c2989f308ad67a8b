// Conv input staging: zero padding, cropping, stride dilation (zero insertion, for the input
// gradient) and column phase split in one copy, so the conv kernels read aligned vec4 runs
// with no bounds checks and every stride looks like stride 1 along a row.
// Formula: out[p, i, b, j] = in[p, (i − top)/DH, (j·PHS + b − left)/DW] when both offsets are
//   ≥ 0, divisible by DH / DW and inside [0, H) × [0, W); 0 otherwise. top/left may be
//   negative (crop).
// Layout: in [P, H, W], out [P, HP, PHS, WQ], f32 row-major (P = N·C planes).
// Bindings: 0 uniform Params, 1 in, 2 out.
override WG: u32 = 256u;

struct Params {
  total: u32,
  h: u32,
  w: u32,
  hp: u32,
  phs: u32,
  wq: u32,
  top: i32,
  left: i32,
  dh: i32,
  dw: i32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.total) { return; }
  let j = idx % P.wq;
  let t = idx / P.wq;
  let b = t % P.phs;
  let t2 = t / P.phs;
  let i = t2 % P.hp;
  let p = t2 / P.hp;
  let r = i32(i) - P.top;
  let q = i32(j * P.phs + b) - P.left;
  var v = 0.0;
  if (r >= 0 && q >= 0 && r % P.dh == 0 && q % P.dw == 0) {
    let rr = u32(r / P.dh);
    let qq = u32(q / P.dw);
    if (rr < P.h && qq < P.w) { v = src[(p * P.h + rr) * P.w + qq]; }
  }
  dst[idx] = v;
}
