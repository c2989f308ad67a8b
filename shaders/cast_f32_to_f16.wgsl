// f32 → f16, rounding to nearest even (mixed precision: conv/matmul inputs and saved
// activations). Dynamic loss scaling needs values beyond f16's range (|x| ≥ 65520) to become
// ±inf and NaN to stay NaN, as a CUDA cast does. WGSL calls that result indeterminate, and
// naga cannot build f16 infinities from bits (no bitcast to vec2<f16>), so this relies on the
// IEEE conversion Vulkan drivers perform; tests/kernels/mixed_test.ts checks it.
// Layout: out holds element pairs (vec2<f16>, 4 bytes); an odd tail is padded with 0.
// Bindings: 0 uniform Params (n = elements), 1 x (f32), 2 out (vec2<f16> pairs).
enable f16;

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2<f16>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (2u * i >= P.n) { return; }
  let hi = select(0.0, x[2u * i + 1u], 2u * i + 1u < P.n);
  out[i] = vec2<f16>(vec2<f32>(x[2u * i], hi));
}
