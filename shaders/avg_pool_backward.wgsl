// AdaptiveAvgPool2d(1) backward: dx[p, i] = g[p] / HW.
// Layout: g [N·C], dx [N·C, HW]. Bindings: 0 uniform, 1 g, 2 dx.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  dx[i] = g[i / P.hw] / f32(P.hw);
}
