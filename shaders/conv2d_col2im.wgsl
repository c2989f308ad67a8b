// Conv col2im as a deterministic gather (no atomics): the input gradient from the gradient of
// the im2col matrix (conv2d_im2col.wgsl), each input element summing, in (ky, kx) order, the
// entries of every output pixel whose receptive field holds it.
// Formula: dx[n, c, ih, iw] = Σ_{ky, kx} dcols[n·P + oh·OW + ow, (c·KH + ky)·KW + kx] over
//   oh = (ih + PH − ky·DH)/SH and ow = (iw + PW − kx·DW)/SW when divisible and in range.
// Layout: dcols [N·P, C·KH·KW], dx [N, C, H, W]; f32. Bindings: 0 uniform, 1 dcols, 2 dx.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dcols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let iw = i % P.w;
  let ih = (i / P.w) % P.h;
  let c = (i / (P.w * P.h)) % P.c;
  let n = i / (P.w * P.h * P.c);
  let kk = P.c * P.kh * P.kw;
  var acc = 0.0;
  for (var ky = 0u; ky < P.kh; ky++) {
    let th = i32(ih + P.ph) - i32(ky * P.dh);
    if (th < 0 || th % i32(P.sh) != 0) { continue; }
    let oh = u32(th) / P.sh;
    if (oh >= P.oh) { continue; }
    for (var kx = 0u; kx < P.kw; kx++) {
      let tw = i32(iw + P.pw) - i32(kx * P.dw);
      if (tw < 0 || tw % i32(P.sw) != 0) { continue; }
      let ow = u32(tw) / P.sw;
      if (ow >= P.ow) { continue; }
      acc += dcols[((n * P.oh + oh) * P.ow + ow) * kk + (c * P.kh + ky) * P.kw + kx];
    }
  }
  dx[i] = acc;
}
