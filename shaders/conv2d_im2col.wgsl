// Conv im2col for small output planes (where the row-blocked kernels would mostly compute
// padding columns): each output pixel's receptive field becomes one row of a matrix that a
// matmul multiplies with the [O, C·KH·KW] weight.
// Formula: cols[n·P + oh·OW + ow, (c·KH + ky)·KW + kx] = x[n, c, oh·SH − PH + ky·DH, ow·SW − PW + kx·DW]
//   (0 outside the input), P = OH·OW.
// Layout: x [N, C, H, W], cols [N·P, C·KH·KW]; f32 row-major. Bindings: 0 uniform, 1 x, 2 cols.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let kk = P.c * P.kh * P.kw;
  let col = i % kk;
  let row = i / kk;
  let kx = col % P.kw;
  let ky = (col / P.kw) % P.kh;
  let c = col / (P.kw * P.kh);
  let ow = row % P.ow;
  let oh = (row / P.ow) % P.oh;
  let n = row / (P.ow * P.oh);
  let ih = i32(oh * P.sh + ky * P.dh) - i32(P.ph);
  let iw = i32(ow * P.sw + kx * P.dw) - i32(P.pw);
  var v = 0.0;
  if (ih >= 0 && iw >= 0 && ih < i32(P.h) && iw < i32(P.w)) {
    v = x[((n * P.c + c) * P.h + u32(ih)) * P.w + u32(iw)];
  }
  cols[i] = v;
}
