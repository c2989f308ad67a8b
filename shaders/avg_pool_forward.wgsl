// AdaptiveAvgPool2d(1) forward: out[p] = Σ_i x[p, i] / HW, one invocation per plane, summed
// in index order (deterministic). Layout: x [N·C, HW], out [N·C]. Bindings: 0 uniform, 1 x, 2 out.
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.planes) { return; }
  var s = 0.0;
  for (var i = 0u; i < P.hw; i++) { s += x[p * P.hw + i]; }
  out[p] = s / f32(P.hw);
}
