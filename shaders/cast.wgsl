// Dtype conversion. TO_F32 = 1: out[i] = f32(bitcast<i32>(x[i])); TO_F32 = 0:
// out[i] = bitcast<u32>(i32(bitcast<f32>(x[i]))) (truncation toward zero, as torch's .int()).
// Layout: 4-byte elements as u32 bits. Bindings: 0 uniform Params, 1 x, 2 out.
override TO_F32: u32 = 1u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  if (TO_F32 == 1u) {
    out[i] = bitcast<u32>(f32(bitcast<i32>(x[i])));
  } else {
    out[i] = bitcast<u32>(i32(bitcast<f32>(x[i])));
  }
}
