// Fused AdamW update of one parameter, one invocation per element (PyTorch's order).
// Formula:  p ← p·decay                       (decay = 1 − lr·wd)
//           m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
//           p ← p − stepSize · m / (√v / bc2Sqrt + eps)
//   with stepSize = lr / (1 − β1^t) and bc2Sqrt = √(1 − β2^t), computed on the host in f64.
// Layout: p, g, m, v f32 of n elements, contiguous; p, m, v updated in place.
// Bindings: 0 uniform Params, 1 p, 2 g, 3 m, 4 v.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let gi = g[i];
  let pi = p[i] * P.decay;
  let mi = P.beta1 * m[i] + P.omb1 * gi;
  let vi = P.beta2 * v[i] + P.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - P.step_size * (mi / (sqrt(vi) / P.bc2_sqrt + P.eps));
}
