// MaxPool2d backward as a deterministic gather (no atomics): each input element sums, in
// row-major order, the output gradients of every window whose stored argmax is that element,
// so overlapping windows accumulate.
// Formula: dx[p, ih, iw] = Σ_{oh, ow : idx[p, oh, ow] = ih·W + iw} g[p, oh, ow], where the
//   windows containing ih are oh ∈ [⌈(ih + PAD − K + 1)/S⌉, ⌊(ih + PAD)/S⌋] ∩ [0, OH).
// Grid: one invocation per input row (p, ih), which walks its W elements. The window range
//   along the row advances without dividing: u32 divisions, which lavapipe runs lane by lane,
//   cost more than the gather itself in an invocation-per-element version.
// Layout: g / idx [N·C, OH, OW], dx [N·C, H, W]. Bindings: 0 uniform, 1 g, 2 idx (i32), 3 dx.
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= P.total) { return; }
  let ih = row % P.h;
  let p = row / P.h;
  // Window rows holding ih: r·S − PAD ≤ ih ≤ r·S − PAD + K − 1.
  let t = i32(ih + P.pad) - i32(P.k) + 1;
  let r0 = select(0u, (u32(max(t, 0)) + P.s - 1u) / P.s, t > 0);
  let r1 = min((ih + P.pad) / P.s + 1u, P.oh);
  let plane = p * P.oh * P.ow;
  let out0 = row * P.w;
  // Window columns holding iw: [q0, q1), advanced as iw grows.
  var q0 = 0u;
  var q1 = 0u;
  for (var iw = 0u; iw < P.w; iw++) {
    while (q1 < P.ow && q1 * P.s <= iw + P.pad) { q1++; }
    while (q0 * P.s + P.k <= iw + P.pad) { q0++; }
    let me = i32(ih * P.w + iw);
    var acc = 0.0;
    for (var r = r0; r < r1; r++) {
      for (var q = q0; q < q1; q++) {
        let o = plane + r * P.ow + q;
        if (idx[o] == me) { acc += g[o]; }
      }
    }
    dx[out0 + iw] = acc;
  }
}
