// BatchNorm2d normalisation: y = (x − mean[c])·invstd[c]·γ[c] + β[c].
// EVAL = 0: s1 = batch mean, s2 = batch invstd (from batch_norm_stats.wgsl).
// EVAL = 1: s1 = running mean, s2 = running var, invstd = 1/√(s2 + eps).
// Layout: x, y [N, C, HW]; s1, s2, γ, β [C]; f32. Bindings: 0 uniform, 1 x, 2 s1, 3 s2, 4 γ, 5 β, 6 y.
override WG: u32 = 256u;
override EVAL: u32 = 0u;

struct Params {
  total: u32,
  c: u32,
  hw: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s1: array<f32>;
@group(0) @binding(3) var<storage, read> s2: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let c = (i / P.hw) % P.c;
  var invstd = s2[c];
  if (EVAL == 1u) { invstd = inverseSqrt(s2[c] + P.eps); }
  y[i] = (x[i] - s1[c]) * invstd * gamma[c] + beta[c];
}
