// Conv col2im as a deterministic gather (no atomics): the input gradient from the gradient of
// the im2col matrix (conv2d_im2col.wgsl), each input element summing, in (ky, kx) order, the
// entries of every output pixel whose receptive field holds it.
// Formula: dx[n, c, ih, iw] = Σ_{ky, kx} dcols[n·P + oh·OW + ow, (c·KH + ky)·KW + kx] over
//   oh = (ih + PH − ky·DH)/SH and ow = (iw + PW − kx·DW)/SW when divisible and in range.
// Index splits (u32 divisions, which lavapipe runs lane by lane) are kept out of the tap loop:
//   three per element, and none per tap at stride 1.
// Grid: one invocation per dx element (linear id gid.x + gid.y · nwg.x · WG < total).
// Layout: dcols [N·P, C·KH·KW], dx [N, C, H, W]; f32. Bindings: 0 uniform, 1 dcols, 2 dx.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dcols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// (t / s, t divisible by s) for t ≥ 0; stride 1 without dividing.
fn step_of(t: i32, s: u32) -> vec2<u32> {
  if (s == 1u) { return vec2(u32(t), 1u); }
  let q = u32(t) / s;
  return vec2(q, u32(q * s == u32(t)));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.total) { return; }
  let plane = i / (P.h * P.w);
  let q = i - plane * P.h * P.w;
  let n = plane / P.c;
  let c = plane - n * P.c;
  let ih = q / P.w;
  let iw = q - ih * P.w;
  let kk = P.c * P.kh * P.kw;
  let base = n * P.oh * P.ow * kk + c * P.kh * P.kw;
  var acc = 0.0;
  for (var ky = 0u; ky < P.kh; ky++) {
    let th = i32(ih + P.ph) - i32(ky * P.dh);
    if (th < 0) { continue; }
    let sy = step_of(th, P.sh);
    if (sy.y == 0u || sy.x >= P.oh) { continue; }
    for (var kx = 0u; kx < P.kw; kx++) {
      let tw = i32(iw + P.pw) - i32(kx * P.dw);
      if (tw < 0) { continue; }
      let sx = step_of(tw, P.sw);
      if (sx.y == 0u || sx.x >= P.ow) { continue; }
      acc += dcols[base + (sy.x * P.ow + sx.x) * kk + ky * P.kw + kx];
    }
  }
  dx[i] = acc;
}
