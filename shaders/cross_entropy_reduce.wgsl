// Softmax cross-entropy, reduction of the per-row losses, in one workgroup.
// Formula: L = Σ_i loss[i], W = Σ_i stats[i].w_y; out = L / W (MEAN = 1) or L (MEAN = 0);
//   wsum = W. Thread t sums rows t, t + WG, ... sequentially, then a fixed-shape tree in
//   workgroup memory combines them: no float atomics, the same result on every run.
// Layout: loss f32 [N], stats f32 [N, 4] (w_y at offset 2), out f32 [1], wsum f32 [1].
// Bindings: 0 uniform Params, 1 loss, 2 stats, 3 out, 4 wsum.
override WG: u32 = 256u;
override MEAN: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> wsum: array<f32>;

var<workgroup> sl: array<f32, WG>;
var<workgroup> swt: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32) {
  var l = 0.0;
  var ww = 0.0;
  for (var i = t; i < P.n; i += WG) {
    l += loss[i];
    ww += stats[i * 4u + 2u];
  }
  sl[t] = l;
  swt[t] = ww;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) {
      sl[t] += sl[t + s];
      swt[t] += swt[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    if (MEAN == 1u) { out[0] = sl[0] / swt[0]; } else { out[0] = sl[0]; }
    wsum[0] = swt[0];
  }
}
