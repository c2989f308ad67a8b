// Reduction over the middle axis of a [outer, R, inner] view with inner a multiple of 4: four
// adjacent outputs per invocation, read and written as vec4s.
// Formula: out[o, j] = OP_{r < R} x[o, r, j]; OP: 0 sum, 1 mean (sum / R), 2 max (first
//   maximum's r goes to idx). Each lane runs reduce_serial.wgsl's sequential order, so the
//   results equal its bit for bit; only the loads (one vec4 per r instead of four scalars)
//   and the index maths (once per four outputs) are shared.
// Grid: outer · inner / 4 invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params (inner4 = inner / 4), 1 x, 2 out [outer·inner], 3 idx (i32,
//   written for max only).
override OP: u32 = 0u;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> idx: array<vec4<i32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.outer * P.inner4) { return; }
  let o = i / P.inner4;
  let j = i % P.inner4;
  let base = o * P.r * P.inner4 + j;
  if (OP == 2u) {
    var best = x[base];
    var bi = vec4(0u);
    for (var r = 1u; r < P.r; r++) {
      let v = x[base + r * P.inner4];
      let better = v > best;
      best = select(best, v, better);
      bi = select(bi, vec4(r), better);
    }
    out[i] = best;
    idx[i] = vec4<i32>(bi);
    return;
  }
  var acc = vec4(0.0);
  for (var r = 0u; r < P.r; r++) {
    acc += x[base + r * P.inner4];
  }
  if (OP == 1u) { acc = acc / f32(P.r); }
  out[i] = acc;
}
