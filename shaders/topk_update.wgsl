// Accumulates top-k hit counters for one batch, one invocation per sample.
// Formula: rank = #{c : z[c] > z[y] or (z[c] == z[y] and c < y)} (ties: the lower class
//   index wins, so k = 1 is argmax); hits[y] += (rank < k), support[y] += 1.
// Samples whose target is outside [0, C) are skipped. Counters are i32 atomics: integer sums
// do not depend on the order, so results are deterministic (no float atomics).
// Layout: z f32 [N, C] contiguous, y i32 [N]; counts i32 = hits [C] then support [C].
// Bindings: 0 uniform Params (struct injected from src/kernels/topk.ts), 1 z, 2 y, 3 counts.
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
  let zy = z[base + t];
  var rank = 0u;
  for (var c = 0u; c < P.c; c++) {
    let v = z[base + c];
    if (v > zy || (v == zy && c < t)) { rank++; }
  }
  atomicAdd(&counts[P.c + t], 1);
  if (rank < P.k) { atomicAdd(&counts[t], 1); }
}
