// Reduction over the middle axis of a [outer, R, inner] view, one workgroup per output.
// Formula: as reduce_serial (OP: 0 sum, 1 mean, 2 max with first-maximum index); each of WG
//   threads accumulates r = t, t + WG, ... sequentially, then a fixed-shape tree in workgroup
//   memory combines them: no float atomics, identical results on every run.
// Layout: f32 contiguous; workgroup w handles output w (w = wid.x + wid.y * nwg.x).
// Bindings: 0 uniform Params, 1 x, 2 out [outer*inner], 3 idx (i32, max only).
override OP: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

var<workgroup> sv: array<f32, WG>;
var<workgroup> si: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let w = wid.x + wid.y * nwg.x;
  let valid = w < P.outer * P.inner;
  let o = w / P.inner;
  let j = w % P.inner;
  let base = o * P.r * P.inner + j;
  var acc = 0.0;
  var bi = 0xffffffffu;
  // Lowest finite f32, by its bits: the decimal -3.4028235e38 lies past it, which Tint rejects.
  if (OP == 2u) { acc = bitcast<f32>(0xff7fffffu); }
  if (valid) {
    for (var r = t; r < P.r; r += WG) {
      let v = x[base + r * P.inner];
      if (OP == 2u) {
        if (bi == 0xffffffffu || v > acc) { acc = v; bi = r; }
      } else {
        acc += v;
      }
    }
  }
  sv[t] = acc;
  si[t] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) {
      if (OP == 2u) {
        let ov = sv[t + s];
        let oi = si[t + s];
        let mine = si[t];
        if (oi != 0xffffffffu && (mine == 0xffffffffu || ov > sv[t] || (ov == sv[t] && oi < mine))) {
          sv[t] = ov;
          si[t] = oi;
        }
      } else {
        sv[t] = sv[t] + sv[t + s];
      }
    }
    workgroupBarrier();
  }
  if (t == 0u && valid) {
    var v = sv[0];
    if (OP == 1u) { v = v / f32(P.r); }
    out[w] = v;
    if (OP == 2u) { idx[w] = i32(si[0]); }
  }
}
