// Conv input staging: zero padding, cropping, stride dilation (zero insertion, for the input
// gradient) and column phase split in one copy, so the conv kernels read aligned vec4 runs
// with no bounds checks and every stride looks like stride 1 along a row.
// Formula: out[p, i, b, j] = in[p, (i − top)/DH, (j·PHS + b − left)/DW] when both offsets are
//   ≥ 0, divisible by DH / DW and inside [0, H) × [0, W); 0 otherwise. top/left may be
//   negative (crop).
// Layout: in [P, H, W], out [P, HP, PHS, WQ] (WQ a multiple of 4), f32 row-major (P = N·C
//   planes). Each invocation writes one output row (p, i, b) as vec4s, from grid (x = p, y = i,
//   z = b): the index arithmetic (u32 divisions run lane by lane on lavapipe), not the copy,
//   dominated versions that split a linear index. Along the row the
//   source column advances by PHS without dividing (u32 divisions run lane by lane there):
//   as an index when DW = 1, else as a (quotient, remainder) pair. Rows of whole vec4s
//   (W % 4 == 0) copied without phase split or dilation (stride-1 staging, the input
//   gradient's) read the source as vec4s too, each output vec4 spliced from two of them.
// Bindings: 0 uniform Params, 1 in (array<vec4<f32>>, a scalar e is [e / 4][e % 4]), 2 out.
override WG: u32 = 64u;
// Row dilation of the input gradient's zero insertion (a constant: no division when 1).
override DH: i32 = 1;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

fn elem(e: u32) -> f32 {
  return src[e / 4u][e % 4u];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Lanes take planes; the row and phase come from the grid: no index splitting.
  let p = gid.x;
  let i = gid.y;
  let b = gid.z;
  if (p >= P.planes) { return; }
  let r = i32(i) - P.top;
  let valid = r >= 0 && r % DH == 0 && u32(r / DH) < P.h;
  let out0 = ((p * P.hp + i) * P.phs + b) * P.wq4;
  if (!valid) {
    for (var j4 = 0u; j4 < P.wq4; j4++) { dst[out0 + j4] = vec4<f32>(); }
    return;
  }
  let srow = (p * P.h + u32(r / DH)) * P.w;
  let w = i32(P.w);
  let step = i32(P.phs);
  if (P.dw == 1 && P.phs == 1u && P.w % 4u == 0u) {
    // Output vec4 j holds columns 4j − left …: source vec4s e + j and e + j + 1, shifted by sh.
    let w4 = w / 4;
    let e = (-P.left) >> 2u;
    let sh = -P.left - 4 * e;
    let srow4 = srow / 4u;
    var lo = vec4<f32>();
    if (e >= 0 && e < w4) { lo = src[srow4 + u32(e)]; }
    for (var j4 = 0u; j4 < P.wq4; j4++) {
      let k = e + i32(j4) + 1;
      var hi = vec4<f32>();
      if (k >= 0 && k < w4) { hi = src[srow4 + u32(k)]; }
      var v = lo;
      if (sh == 1) {
        v = vec4(lo.yzw, hi.x);
      } else if (sh == 2) {
        v = vec4(lo.zw, hi.xy);
      } else if (sh == 3) {
        v = vec4(lo.w, hi.xyz);
      }
      dst[out0 + j4] = v;
      lo = hi;
    }
    return;
  }
  if (P.dw == 1) {
    var q = i32(b) - P.left;
    for (var j4 = 0u; j4 < P.wq4; j4++) {
      var v = vec4<f32>();
      for (var k = 0u; k < 4u; k++) {
        if (q >= 0 && q < w) { v[k] = elem(srow + u32(q)); }
        q += step;
      }
      dst[out0 + j4] = v;
    }
    return;
  }
  // Column q = qd·DW + rem − bias with 0 ≤ rem < DW, biased so that q + bias ≥ 0.
  let bias = (max(P.left, 0) / P.dw + 1) * P.dw;
  let q0 = i32(b) - P.left + bias;
  var qd = q0 / P.dw - bias / P.dw;
  var rem = q0 % P.dw;
  for (var j4 = 0u; j4 < P.wq4; j4++) {
    var v = vec4<f32>();
    for (var k = 0u; k < 4u; k++) {
      if (rem == 0 && qd >= 0 && qd < w) { v[k] = elem(srow + u32(qd)); }
      rem += step;
      while (rem >= P.dw) {
        rem -= P.dw;
        qd++;
      }
    }
    dst[out0 + j4] = v;
  }
}
