// Accumulates a confusion matrix for one batch, one invocation per sample.
// Formula: pred = first maximum of z[n, :]; counts[y * C + pred] += 1.
// Samples whose target is outside [0, C) are skipped. Counters are i32 atomics: integer sums
// do not depend on the order, so results are deterministic (no float atomics).
// Layout: z f32 [N, C] contiguous, y i32 [N]; counts i32 [C, C], rows = target.
// Bindings: 0 uniform Params (struct injected from src/kernels/confusion.ts), 1 z, 2 y,
//   3 counts.
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<i32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let yi = y[i];
  if (yi < 0 || u32(yi) >= P.c) { return; }
  let t = u32(yi);
  let base = i * P.c;
  var best = z[base];
  var pred = 0u;
  for (var c = 1u; c < P.c; c++) {
    let v = z[base + c];
    if (v > best) { best = v; pred = c; }
  }
  atomicAdd(&counts[t * P.c + pred], 1);
}
