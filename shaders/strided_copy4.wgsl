// Strided copy, four consecutive destination elements per invocation: as strided_copy.wgsl,
//   dst[dst_off + Σ_d c_d · ds_d] = src[src_off + Σ_d c_d · ss_d], for copies whose destination
//   runs contiguously along a last dim that is a multiple of 4 (clone, slice, concat, expand,
//   the common permutes). Same bits as strided_copy.wgsl: a copy is exact.
// Layout: 4-byte elements (f32 or i32 bits). shape[] has the last dim counted in vec4s; the
//   strides (in elements) step one vec4 there. The destination is written as vec4s (dst_off
//   and every other dst stride are multiples of 4). SRC_MODE says how the four sources are
//   read: 0 one vec4 (stride 1, src_off and the other strides multiples of 4), 1 one scalar
//   splat (stride 0, broadcast), 2 four scalars `step` elements apart (a gather: permutes).
// Grid: each invocation copies a run of up to RUN vec4s along the last dim (`chunks` runs per
//   row of it), so the index split (u32 divisions, which lavapipe runs lane by lane) is paid
//   once per run rather than per vec4 (RUN = 8 on CPU adapters; 1 on GPUs, whose neighbouring
//   invocations then read neighbouring vec4s): `n` invocations (linear id
//   gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 src, 2 dst (array<vec4<u32>>; pool buffers are multiples of
//   16 bytes, a scalar e is [e / 4][e % 4]).
override WG: u32 = 64u;
override SRC_MODE: u32 = 0u;
override RUN: u32 = 8u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

fn scalar(e: u32) -> u32 {
  return src[e / 4u][e % 4u];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let last = i32(P.ndim) - 1;
  let len = P.shape[last / 4][last % 4];
  let k0 = (i % P.chunks) * RUN;
  var rem = i / P.chunks;
  let sstep = P.ss[last / 4][last % 4];
  let dstep = P.ds[last / 4][last % 4];
  var si = P.src_off + k0 * sstep;
  var di = P.dst_off + k0 * dstep;
  for (var d = last - 1; d >= 0; d--) {
    let dim = P.shape[d / 4][d % 4];
    let c = rem % dim;
    rem = rem / dim;
    si += c * P.ss[d / 4][d % 4];
    di += c * P.ds[d / 4][d % 4];
  }
  for (var k = k0; k < min(k0 + RUN, len); k++) {
    var v: vec4<u32>;
    if (SRC_MODE == 0u) {
      v = src[si / 4u];
    } else if (SRC_MODE == 1u) {
      v = vec4(scalar(si));
    } else {
      v = vec4(scalar(si), scalar(si + P.step), scalar(si + 2u * P.step), scalar(si + 3u * P.step));
    }
    dst[di / 4u] = v;
    si += sstep;
    di += dstep;
  }
}
