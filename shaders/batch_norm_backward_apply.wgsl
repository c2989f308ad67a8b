// BatchNorm2d input gradient.
// EVAL = 0 (batch statistics): dx = γ·invstd·(G − dβ/M − x̂·dγ/M), x̂ = (x − mean)·invstd,
//   with dβ = ΣG and dγ = ΣG·x̂ per channel (batch_norm_backward_reduce.wgsl), M = N·H·W.
// EVAL = 1 (running statistics, constants): dx = G·γ·invstd, invstd = 1/√(s2 + eps).
// Layout: x, G, dx [N, C, HW]; s1, s2, γ, dγ, dβ [C]; f32.
// Bindings: 0 uniform Params, 1 x, 2 G, 3 s1, 4 s2, 5 γ, 6 dγ, 7 dβ, 8 dx.
override WG: u32 = 256u;
override EVAL: u32 = 0u;

struct Params {
  total: u32,
  c: u32,
  hw: u32,
  eps: f32,
  inv_m: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> s1: array<f32>;
@group(0) @binding(4) var<storage, read> s2: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let c = (i / P.hw) % P.c;
  if (EVAL == 1u) {
    dx[i] = g[i] * gamma[c] * inverseSqrt(s2[c] + P.eps);
    return;
  }
  let invstd = s2[c];
  let xh = (x[i] - s1[c]) * invstd;
  dx[i] = gamma[c] * invstd * (g[i] - dbeta[c] * P.inv_m - xh * dgamma[c] * P.inv_m);
}
