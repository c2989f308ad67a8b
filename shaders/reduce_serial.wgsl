// Reduction over the middle axis of a [outer, R, inner] view, one invocation per output.
// Formula: out[o, j] = OP_{r < R} x[o, r, j]; OP: 0 sum, 1 mean (sum / R), 2 max (first
//   maximum's r goes to idx). Sequential order per output, so results are deterministic.
// Used when R is small or there are many outputs. Layout: f32 contiguous.
// Bindings: 0 uniform Params, 1 x, 2 out [outer*inner], 3 idx (i32, written for max only).
override OP: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.outer * P.inner) { return; }
  let o = i / P.inner;
  let j = i % P.inner;
  let base = o * P.r * P.inner + j;
  if (OP == 2u) {
    var best = x[base];
    var bi = 0u;
    for (var r = 1u; r < P.r; r++) {
      let v = x[base + r * P.inner];
      if (v > best) { best = v; bi = r; }
    }
    out[i] = best;
    idx[i] = i32(bi);
    return;
  }
  var acc = 0.0;
  for (var r = 0u; r < P.r; r++) {
    acc += x[base + r * P.inner];
  }
  if (OP == 1u) { acc = acc / f32(P.r); }
  out[i] = acc;
}
