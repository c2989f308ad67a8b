// Fill: out[i] = bits for i < n (bits is the raw u32 pattern of an f32 or i32 value).
// Layout: any 4-byte element type. Bindings: 0 uniform Params, 1 out.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] = P.bits;
}
