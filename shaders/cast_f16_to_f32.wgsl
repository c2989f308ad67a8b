// f16 → f32 (exact): widens f16 tensors (element pairs, vec2<f16>) for kernels that read f32.
// Bindings: 0 uniform Params (n = elements), 1 x (vec2<f16> pairs), 2 out (f32).
enable f16;

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec2<f16>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (2u * i >= P.n) { return; }
  let v = vec2<f32>(x[i]);
  out[2u * i] = v.x;
  if (2u * i + 1u < P.n) { out[2u * i + 1u] = v.y; }
}
