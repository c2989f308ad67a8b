// Softmax cross-entropy, forward, one invocation per row (row-serial over classes: deterministic).
// Formula, with m = max_c z[c], ls = log Σ_c exp(z[c] − m), nlp[c] = −log_softmax(z)[c] = (m − z[c]) + ls:
//   loss[i] = (1−ε)·w[y]·nlp[y] + (ε/C)·Σ_c w[c]·nlp[c]   (0 for a row whose target is IGNORE;
//   NaN for any other target outside [0, C), where PyTorch would raise)
//   stats[i] = (m, ls, w[y] (0 when ignored), S_w = Σ_c w[c]) for the backward and the reduction.
// Layout: z f32 [N, C] contiguous, y i32 [N], w f32 [C] (unused when HAS_W = 0: all ones),
//   loss f32 [N], stats f32 [N, 4].
// Bindings: 0 uniform Params, 1 z, 2 y, 3 w, 4 loss, 5 stats.
override WG: u32 = 64u;
override HAS_W: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<i32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

fn weight(c: u32) -> f32 {
  if (HAS_W == 1u) { return w[c]; }
  return 1.0;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let base = i * P.c;
  var m = z[base];
  for (var c = 1u; c < P.c; c++) { m = max(m, z[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < P.c; c++) { s += exp(z[base + c] - m); }
  let ls = log(s);
  let yi = y[i];
  var sw = 0.0;
  for (var c = 0u; c < P.c; c++) { sw += weight(c); }
  stats[i * 4u] = m;
  stats[i * 4u + 1u] = ls;
  stats[i * 4u + 3u] = sw;
  if (yi == P.ignore) {
    loss[i] = 0.0;
    stats[i * 4u + 2u] = 0.0;
    return;
  }
  if (yi < 0 || u32(yi) >= P.c) {
    // A constant NaN is a shader-creation error in WGSL: build it from a runtime value.
    let nan = bitcast<f32>(0x7fc00000u | P.zero);
    loss[i] = nan;
    stats[i * 4u + 2u] = nan;
    return;
  }
  let t = u32(yi);
  let wy = weight(t);
  var smoothSum = 0.0;
  if (P.eps != 0.0) {
    for (var c = 0u; c < P.c; c++) { smoothSum += weight(c) * ((m - z[base + c]) + ls); }
  }
  loss[i] = (1.0 - P.eps) * wy * ((m - z[base + t]) + ls) + (P.eps / f32(P.c)) * smoothSum;
  stats[i * 4u + 2u] = wy;
}
