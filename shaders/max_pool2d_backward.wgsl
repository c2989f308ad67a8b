// MaxPool2d backward as a deterministic gather (no atomics): each input element sums, in
// row-major order, the output gradients of every window whose stored argmax is that element,
// so overlapping windows accumulate.
// Formula: dx[p, ih, iw] = Σ_{oh, ow : idx[p, oh, ow] = ih·W + iw} g[p, oh, ow], where the
//   windows containing ih are oh ∈ [⌈(ih + PAD − K + 1)/S⌉, ⌊(ih + PAD)/S⌋] ∩ [0, OH).
// Layout: g / idx [N·C, OH, OW], dx [N·C, H, W]. Bindings: 0 uniform, 1 g, 2 idx (i32), 3 dx.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn first_window(i: u32) -> u32 {
  let t = i32(i + P.pad) - i32(P.k) + 1;
  if (t <= 0) { return 0u; }
  return (u32(t) + P.s - 1u) / P.s;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let iw = i % P.w;
  let ih = (i / P.w) % P.h;
  let p = i / (P.w * P.h);
  let me = i32(ih * P.w + iw);
  let r1 = min((ih + P.pad) / P.s + 1u, P.oh);
  let q1 = min((iw + P.pad) / P.s + 1u, P.ow);
  var acc = 0.0;
  for (var r = first_window(ih); r < r1; r++) {
    for (var q = first_window(iw); q < q1; q++) {
      let o = (p * P.oh + r) * P.ow + q;
      if (idx[o] == me) { acc += g[o]; }
    }
  }
  dx[i] = acc;
}
