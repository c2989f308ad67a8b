// BatchNorm2d input gradient, 4 elements per invocation.
// EVAL = 0 (batch statistics): dx = γ·invstd·(G − dβ/M − x̂·dγ/M), x̂ = (x − mean)·invstd,
//   with dβ = ΣG and dγ = ΣG·x̂ per channel (batch_norm_backward_reduce.wgsl), M = N·H·W.
// EVAL = 1 (running statistics, constants): dx = G·γ·invstd, invstd = 1/√(s2 + eps).
// Layout: x, G, dx [N, C, HW] as vec4s (ALIGNED = 1 when HW % 4 == 0, one channel per vec4;
//   otherwise each component finds its own channel); s1, s2, γ, dγ, dβ [C]; f32.
// Bindings: 0 uniform Params, 1 x, 2 G, 3 s1, 4 s2, 5 γ, 6 dγ, 7 dβ, 8 dx.
// RUNS = 1 (CPU adapters, ALIGNED = 1 only): grid x = channel c (lanes), y = run of RUN vec4s
//   within the plane, z = image n; each invocation reads its channel's coefficients once and
//   walks its run, with no index splitting (u32 divisions, which lavapipe runs lane by lane,
//   cost more than the pass itself when split per vec4). RUNS = 0: one vec4 per invocation
//   over the flat index (coalesced on GPUs). Same expression per element either way.
override WG: u32 = 256u;
override EVAL: u32 = 0u;
override ALIGNED: u32 = 1u;
override RUNS: u32 = 0u;
override RUN: u32 = 16u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> s1: array<f32>;
@group(0) @binding(4) var<storage, read> s2: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<vec4<f32>>;

// dx = a·G + b·x + d per channel, folding the formula into three per-channel constants.
fn coeffs(c: u32) -> vec3<f32> {
  if (EVAL == 1u) { return vec3<f32>(gamma[c] * inverseSqrt(s2[c] + P.eps), 0.0, 0.0); }
  let invstd = s2[c];
  let a = gamma[c] * invstd;
  let k = dgamma[c] * P.inv_m * invstd;
  // a·(G − dβ/M − (x − mean)·invstd·dγ/M) = a·G − a·k·x + a·(k·mean − dβ/M)
  return vec3<f32>(a, -a * k, a * (k * s1[c] - dbeta[c] * P.inv_m));
}

// RUNS = 1: channel gid.x of image gid.z, vec4s gid.y·RUN … of its plane.
fn runs(gid: vec3<u32>) {
  let c = gid.x;
  if (c >= P.c) { return; }
  let hw4 = P.hw / 4u;
  let k0 = gid.y * RUN;
  let base = (gid.z * P.c + c) * hw4;
  let k = coeffs(c);
  for (var j = k0; j < min(k0 + RUN, hw4); j++) {
    dx[base + j] = k.x * g[base + j] + k.y * x[base + j] + vec4<f32>(k.z);
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
  let gv = g[i];
  let xv = x[i];
  if (ALIGNED == 1u) {
    let k = coeffs((i * 4u / P.hw) % P.c);
    dx[i] = k.x * gv + k.y * xv + vec4<f32>(k.z);
    return;
  }
  var r = vec4<f32>();
  for (var j = 0u; j < 4u; j++) {
    let k = coeffs(((i * 4u + j) / P.hw) % P.c);
    r[j] = k.x * gv[j] + k.y * xv[j] + k.z;
  }
  dx[i] = r;
}
