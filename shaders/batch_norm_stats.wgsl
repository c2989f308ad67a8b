// BatchNorm2d training statistics, one workgroup per channel, deterministic tree reduction.
// Formula: mean[c] = Σ x[n, c, i] / M, var_b = Σ (x − mean)² / M (biased, two passes),
//   invstd[c] = 1 / √(var_b + eps), M = N·H·W. When UPDATE = 1 the running statistics are
//   updated in place: rm ← (1 − m)·rm + m·mean, rv ← (1 − m)·rv + m·var_b·M/(M − 1)
//   (unbiased), and when TRACK = 1 workgroup 0 adds 1 to num_batches_tracked.
// Layout: x [N, C, HW] f32; mean, invstd, rm, rv [C] f32; nbt [1] i32.
// Bindings: 0 uniform Params, 1 x, 2 mean, 3 invstd, 4 rm, 5 rv, 6 nbt.
override WG: u32 = 256u;
override UPDATE: u32 = 1u;
override TRACK: u32 = 1u;

struct Params {
  n: u32,
  c: u32,
  hw: u32,
  eps: f32,
  momentum: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> invstd_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rm: array<f32>;
@group(0) @binding(5) var<storage, read_write> rv: array<f32>;
@group(0) @binding(6) var<storage, read_write> nbt: array<i32>;

var<workgroup> part: array<f32, WG>;

fn reduce_all(lid: u32, v: f32) -> f32 {
  part[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  let r = part[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let c = wid.x;
  let lid = lidv.x;
  let m = P.n * P.hw;
  var s = 0.0;
  for (var e = lid; e < m; e += WG) {
    let n = e / P.hw;
    s += x[(n * P.c + c) * P.hw + e % P.hw];
  }
  let mean = reduce_all(lid, s) / f32(m);
  var q = 0.0;
  for (var e = lid; e < m; e += WG) {
    let n = e / P.hw;
    let d = x[(n * P.c + c) * P.hw + e % P.hw] - mean;
    q += d * d;
  }
  let var_b = reduce_all(lid, q) / f32(m);
  if (lid == 0u) {
    mean_out[c] = mean;
    invstd_out[c] = inverseSqrt(var_b + P.eps);
    if (UPDATE == 1u) {
      rm[c] = (1.0 - P.momentum) * rm[c] + P.momentum * mean;
      rv[c] = (1.0 - P.momentum) * rv[c] + P.momentum * var_b * f32(m) / f32(m - 1u);
    }
    if (TRACK == 1u && c == 0u) { nbt[0] = nbt[0] + 1; }
  }
}
