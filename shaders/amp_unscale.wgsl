// Dynamic loss scaling, PyTorch's _amp_foreach_non_finite_check_and_unscale_ for one
// gradient: g[i] *= inv_scale, and found[0] = 1 when any g[i] was inf or NaN. The test is on
// the bits (exponent all ones), since WGSL lets compilers assume floats are finite.
// Bindings: 0 uniform Params, 1 g (f32, in place), 2 found (one u32 flag).
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> found: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let v = g[i];
  if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) { atomicStore(&found[0], 1u); }
  g[i] = v * P.inv_scale;
}
