// Conv im2col for small output planes (where the row-blocked kernels would mostly compute
// padding columns): each output pixel's receptive field becomes one row of a matrix that a
// matmul multiplies with the [O, C·KH·KW] weight.
// Formula: cols[n·P + oh·OW + ow, (c·KH + ky)·KW + kx] = x[n, c, oh·SH − PH + ky·DH, ow·SW − PW + kx·DW]
//   (0 outside the input), P = OH·OW.
// One invocation per (row, c) writes that channel's KH·KW taps, so the index splits (u32
// divisions, which lavapipe runs lane by lane) happen once per receptive field, not per entry.
// Grid: x = ceil(C / WG), y·z = N·P rows (row = gid.y + gid.z · nwg.y).
// Layout: x [N, C, H, W], cols [N·P, C·KH·KW]; row-major. x is stored as X, f32 here and f16
//   in the mixed-precision form (src/gpu/wgsl_expand.ts f16Form), widened exactly to f32; cols
//   are f32 in both. Bindings: 0 uniform, 1 x, 2 cols.
alias X = f32; // @f16: storage type of x
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<X>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x;
  let row = gid.y + gid.z * nwg.y;
  let plane = P.oh * P.ow;
  if (c >= P.c || row >= P.total) { return; }
  let n = row / plane;
  let p = row - n * plane;
  let oh = p / P.ow;
  let ow = p - oh * P.ow;
  let xc = (n * P.c + c) * P.h;
  var out = (row * P.c + c) * P.kh * P.kw;
  for (var ky = 0u; ky < P.kh; ky++) {
    let ih = i32(oh * P.sh + ky * P.dh) - i32(P.ph);
    let rowIn = ih >= 0 && ih < i32(P.h);
    for (var kx = 0u; kx < P.kw; kx++) {
      let iw = i32(ow * P.sw + kx * P.dw) - i32(P.pw);
      var v = 0.0;
      if (rowIn && iw >= 0 && iw < i32(P.w)) {
        v = f32(x[(xc + u32(ih)) * P.w + u32(iw)]);
      }
      cols[out] = v;
      out++;
    }
  }
}
