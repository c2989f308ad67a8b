// Fused BatchNorm2d normalisation + (optional residual add) + ReLU, 4 elements per invocation:
//   RESIDUAL = 0: y = max((x − mean[c])·invstd[c]·γ[c] + β[c], 0)
//   RESIDUAL = 1: y = max((x − mean[c])·invstd[c]·γ[c] + β[c] + r, 0)
// The BN part is the same expression as batch_norm_apply.wgsl, so results are bit-identical
// to apply, then add, then relu as three kernels; one pass instead of three, and neither the
// BN output nor the sum is kept for backward (the ReLU mask comes from y > 0).
// EVAL = 0: s1 = batch mean, s2 = batch invstd (from batch_norm_stats.wgsl).
// EVAL = 1: s1 = running mean, s2 = running var, invstd = 1/√(s2 + eps).
// Layout: x, r, y [N, C, HW] as vec4s (buffers are 16-byte multiples); ALIGNED = 1 when
//   HW % 4 == 0 (one channel per vec4), otherwise each component finds its own channel.
//   s1, s2, γ, β [C]; f32. With RESIDUAL = 0, r is bound but not read.
// Bindings: 0 uniform, 1 x, 2 s1, 3 s2, 4 γ, 5 β, 6 r, 7 y.
// RUNS = 1 (CPU adapters, ALIGNED = 1 only): grid x = channel c (lanes), y = run of RUN vec4s
//   within the plane, z = image n; each invocation reads its channel's coefficients once and
//   walks its run, with no index splitting (u32 divisions, which lavapipe runs lane by lane,
//   cost more than the pass itself when split per vec4). RUNS = 0: one vec4 per invocation
//   over the flat index (coalesced on GPUs). Same expression per element either way.
override WG: u32 = 256u;
override EVAL: u32 = 0u;
override ALIGNED: u32 = 1u;
override RESIDUAL: u32 = 0u;
override RUNS: u32 = 0u;
override RUN: u32 = 16u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> s1: array<f32>;
@group(0) @binding(3) var<storage, read> s2: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read> r: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> y: array<vec4<f32>>;

fn scale(c: u32) -> f32 {
  if (EVAL == 1u) { return inverseSqrt(s2[c] + P.eps) * gamma[c]; }
  return s2[c] * gamma[c];
}

// RUNS = 1: channel gid.x of image gid.z, vec4s gid.y·RUN … of its plane.
fn runs(gid: vec3<u32>) {
  let c = gid.x;
  if (c >= P.c) { return; }
  let hw4 = P.hw / 4u;
  let k0 = gid.y * RUN;
  let base = (gid.z * P.c + c) * hw4;
  let m = vec4<f32>(s1[c]);
  let a = scale(c);
  let b = vec4<f32>(beta[c]);
  for (var k = k0; k < min(k0 + RUN, hw4); k++) {
    var o = (x[base + k] - m) * a + b;
    if (RESIDUAL == 1u) { o = o + r[base + k]; }
    y[base + k] = max(o, vec4<f32>(0.0));
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (RUNS == 1u) {
    runs(gid);
    return;
  }
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total4) { return; }
  let v = x[i];
  var o = vec4<f32>();
  if (ALIGNED == 1u) {
    let c = (i * 4u / P.hw) % P.c;
    o = (v - vec4<f32>(s1[c])) * scale(c) + vec4<f32>(beta[c]);
  } else {
    for (var k = 0u; k < 4u; k++) {
      let c = ((i * 4u + k) / P.hw) % P.c;
      o[k] = (v[k] - s1[c]) * scale(c) + beta[c];
    }
  }
  if (RESIDUAL == 1u) { o = o + r[i]; }
  y[i] = max(o, vec4<f32>(0.0));
}
