// Reduction over the middle axis of a [outer, R, inner] view, one workgroup per output, combined
// with subgroup operations: the variant of reduce_tree.wgsl for adapters with `subgroups`.
// Formula: as reduce_tree (OP: 0 sum, 1 mean, 2 max with first-maximum index). Each of WG
//   threads accumulates r = t, t + WG, ... sequentially (as reduce_tree); then subgroupAdd /
//   subgroupMax combine each subgroup, its first lane writes one partial to workgroup memory,
//   and thread 0 adds the partials in subgroup order. Max and its index (the smallest index
//   among lanes holding the maximum) are exact, so they equal reduce_tree's bit for bit; a sum
//   is rounded in the subgroup's own order (no atomics; the same on every run of one adapter).
// Layout: f32 contiguous; workgroup w handles output w (w = wid.x + wid.y * nwg.x).
// Bindings: 0 uniform Params, 1 x, 2 out [outer*inner], 3 idx (i32, max only).
// `enable subgroups;` is prepended by src/kernels/reduce.ts where the WGSL compiler requires it
//   (Tint does, naga rejects it: AdapterFacts.subgroupsDirective).

override OP: u32 = 0u;
override WG: u32 = 256u; // at most 256

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

// One partial per subgroup: subgroups have at least 4 lanes, so 256 / 4 slots suffice (a
// constant size: not every compiler sizes workgroup arrays by override expressions).
const MAX_SUBGROUPS: u32 = 64u;
var<workgroup> sv: array<f32, MAX_SUBGROUPS>;
var<workgroup> si: array<u32, MAX_SUBGROUPS>;

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
  @builtin(subgroup_size) sg_size: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let w = wid.x + wid.y * nwg.x;
  let valid = w < P.outer * P.inner;
  let o = w / P.inner;
  let j = w % P.inner;
  let base = o * P.r * P.inner + j;
  // Lowest finite f32, by its bits (see reduce_tree.wgsl).
  let lowest = bitcast<f32>(0xff7fffffu);
  var acc = 0.0;
  var bi = NONE;
  if (OP == 2u) { acc = lowest; }
  if (valid) {
    for (var r = t; r < P.r; r += WG) {
      let v = x[base + r * P.inner];
      if (OP == 2u) {
        if (bi == NONE || v > acc) { acc = v; bi = r; }
      } else {
        acc += v;
      }
    }
  }
  // Subgroups are numbered by t / sg_size: local_invocation_index fills them in order.
  let sg = t / sg_size;
  var part: f32;
  var part_i = NONE;
  if (OP == 2u) {
    part = subgroupMax(select(acc, lowest, bi == NONE));
    part_i = subgroupMin(select(NONE, bi, bi != NONE && acc == part));
  } else {
    part = subgroupAdd(acc);
  }
  if (lane == 0u) {
    sv[sg] = part;
    si[sg] = part_i;
  }
  workgroupBarrier();
  if (t == 0u && valid) {
    let groups = (WG + sg_size - 1u) / sg_size;
    var v = sv[0];
    var vi = si[0];
    for (var g = 1u; g < groups; g++) {
      if (OP == 2u) {
        let gi = si[g];
        if (gi != NONE && (vi == NONE || sv[g] > v || (sv[g] == v && gi < vi))) {
          v = sv[g];
          vi = gi;
        }
      } else {
        v += sv[g];
      }
    }
    if (OP == 1u) { v = v / f32(P.r); }
    out[w] = v;
    if (OP == 2u) { idx[w] = i32(vi); }
  }
}
