// Fused AdamW update, four elements per vec4 and V4 vec4s per invocation: adamw.wgsl's formula
// lane by lane (the same f32 operations, so the same bits), for parameters whose size is a
// multiple of 4. On lavapipe each invocation and each storage access has a fixed cost, so
// whole vec4s amortise both over 4·V4 elements (the scalar kernel pays them per element).
// Formula:  p ← p·decay                       (decay = 1 − lr·wd)
//           m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
//           p ← p − stepSize · m / (√v / bc2Sqrt + eps)
// Layout: p, g, m, v f32 of n = 4·n4 elements, contiguous; p, m, v updated in place.
// Grid: ceil(n4 / V4) invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 p, 2 g, 3 m, 4 v (array<vec4<f32>>).
override WG: u32 = 64u;
override V4: u32 = 4u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = (gid.x + gid.y * nwg.x * WG) * V4;
  for (var j = 0u; j < V4; j++) {
    let i = first + j;
    if (i >= P.n4) { return; }
    let gi = g[i];
    let pi = p[i] * P.decay;
    let mi = P.beta1 * m[i] + P.omb1 * gi;
    let vi = P.beta2 * v[i] + P.omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - P.step_size * (mi / (sqrt(vi) / P.bc2_sqrt + P.eps));
  }
}
