// Strided copy: for every coordinate c of `shape` (up to 8 dims),
//   dst[dst_off + sum_d c_d * ds_d] = src[src_off + sum_d c_d * ss_d].
// Covers permute/transpose (gather), slicing, broadcast expansion (stride 0) and writing a
// block into a larger tensor (scatter; each destination written once).
// Layout: 4-byte elements (f32 or i32 bits). Bindings: 0 uniform Params, 1 src, 2 dst.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  var rem = i;
  var si = P.src_off;
  var di = P.dst_off;
  for (var d = i32(P.ndim) - 1; d >= 0; d--) {
    let dim = P.shape[d / 4][d % 4];
    let c = rem % dim;
    rem = rem / dim;
    si += c * P.ss[d / 4][d % 4];
    di += c * P.ds[d / 4][d % 4];
  }
  dst[di] = src[si];
}
