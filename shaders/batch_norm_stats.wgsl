// BatchNorm2d training statistics, one workgroup per channel, deterministic tree reduction.
// Formula: mean[c] = Σ x[n, c, i] / M, var_b = Σ (x − mean)² / M (biased, two passes),
//   invstd[c] = 1 / √(var_b + eps), M = N·H·W. When UPDATE = 1 the running statistics are
//   updated in place: rm ← (1 − m)·rm + m·mean, rv ← (1 − m)·rv + m·var_b·M/(M − 1)
//   (unbiased), and when TRACK = 1 workgroup 0 adds 1 to num_batches_tracked.
// Layout: x [N, C, HW] f32 read as vec4s (ALIGNED = 1: HW % 4 == 0, so each vec4 lies in one
//   plane; otherwise elements are picked one by one); mean, invstd, rm, rv [C]; nbt [1] i32.
// Bindings: 0 uniform Params, 1 x, 2 mean, 3 invstd, 4 rm, 5 rv, 6 nbt.
override WG: u32 = 256u;
override UPDATE: u32 = 1u;
override TRACK: u32 = 1u;
override ALIGNED: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
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

fn elem(idx: u32) -> f32 {
  return x[idx / 4u][idx % 4u];
}

// Σ of (x − shift)^p over channel c, p = 1 or 2, each invocation's share in a fixed order:
// items e = lid, lid + WG, … of the channel's [N, items] values, whose (image, offset) split
// advances by WG without dividing (u32 divisions run lane by lane on lavapipe).
fn partial(c: u32, lid: u32, shift: f32, square: bool) -> f32 {
  var s = 0.0;
  let items = select(P.hw, P.hw / 4u, ALIGNED == 1u);
  let dn = WG / items;
  let di = WG % items;
  var n = lid / items;
  var i = lid % items;
  for (var e = lid; e < P.n * items; e += WG) {
    let at = (n * P.c + c) * items + i;
    if (ALIGNED == 1u) {
      let d = x[at] - vec4<f32>(shift);
      if (square) { s += dot(d, d); } else { s += d.x + d.y + d.z + d.w; }
    } else {
      let d = elem(at) - shift;
      if (square) { s += d * d; } else { s += d; }
    }
    n += dn;
    i += di;
    if (i >= items) {
      i -= items;
      n++;
    }
  }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let c = wid.x;
  let lid = lidv.x;
  let m = P.n * P.hw;
  let mean = reduce_all(lid, partial(c, lid, 0.0, false)) / f32(m);
  let var_b = reduce_all(lid, partial(c, lid, mean, true)) / f32(m);
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
