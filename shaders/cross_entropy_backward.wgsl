// Softmax cross-entropy, backward, one invocation per logit.
// Formula, with p = exp(z[i,k] − m_i − ls_i) and the forward's per-row stats:
//   dz[i,k] = g_i · [ (1−ε)·w[y_i]·(p − δ(k, y_i)) + (ε/C)·(S_w·p − w[k]) ]
//   g_i = g[i] (REDUCTION 0, none), g[0] (1, sum), g[0] / W (2, mean, W = wsum[0]);
//   0 for a row whose target is IGNORE.
// Layout: g f32 ([N] or [1]), z f32 [N, C], y i32 [N], w f32 [C] (unused when HAS_W = 0),
//   stats f32 [N, 4] = (m, ls, w_y, S_w), wsum f32 [1], dz f32 [N, C].
// Bindings: 0 uniform Params, 1 g, 2 z, 3 y, 4 w, 5 stats, 6 wsum, 7 dz.
override WG: u32 = 256u;
override HAS_W: u32 = 0u;
override REDUCTION: u32 = 2u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<i32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> wsum: array<f32>;
@group(0) @binding(7) var<storage, read_write> dz: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= P.n * P.c) { return; }
  let i = idx / P.c;
  let k = idx % P.c;
  let yi = y[i];
  if (yi == P.ignore) {
    dz[idx] = 0.0;
    return;
  }
  var gi = g[0];
  if (REDUCTION == 0u) { gi = g[i]; }
  if (REDUCTION == 2u) { gi = gi / wsum[0]; }
  let m = stats[i * 4u];
  let ls = stats[i * 4u + 1u];
  let wy = stats[i * 4u + 2u];
  let sw = stats[i * 4u + 3u];
  let p = exp((z[idx] - m) - ls);
  var wk = 1.0;
  if (HAS_W == 1u) { wk = w[k]; }
  let delta = select(0.0, 1.0, i32(k) == yi);
  var d = (1.0 - P.eps) * wy * (p - delta);
  if (P.eps != 0.0) { d += (P.eps / f32(P.c)) * (sw * p - wk); }
  dz[idx] = gi * d;
}
