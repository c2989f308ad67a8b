// MaxPool2d forward (dilation 1, floor mode): out[n, c, oh, ow] = max over the K×K window at
// (oh·S − PAD, ow·S − PAD); padding is −inf. The first maximum in row-major window order wins
// ties (strict >); its plane index ih·W + iw goes to idx for the backward gather (−1 if the
// window holds no input element).
// Grid: one invocation per output row (p, oh) walking its OW windows (u32 divisions, which
//   lavapipe runs lane by lane, once per row rather than per element).
// Layout: x [N·C, H, W], out / idx [N·C, OH, OW]. Bindings: 0 uniform, 1 x, 2 out, 3 idx (i32).
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

// −inf, read at run time: WGSL const-evaluation must reject a non-finite value (Tint does).
var<private> neg_inf_bits: u32 = 0xff800000u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= P.total) { return; }
  let r = row % P.oh;
  let p = row / P.oh;
  let h0 = i32(r * P.s) - i32(P.pad);
  for (var q = 0u; q < P.ow; q++) {
    let w0 = i32(q * P.s) - i32(P.pad);
    var best = bitcast<f32>(neg_inf_bits);
    var at = -1;
    for (var ky = 0u; ky < P.k; ky++) {
      let ih = h0 + i32(ky);
      if (ih < 0 || ih >= i32(P.h)) { continue; }
      for (var kx = 0u; kx < P.k; kx++) {
        let iw = w0 + i32(kx);
        if (iw < 0 || iw >= i32(P.w)) { continue; }
        let v = x[(p * P.h + u32(ih)) * P.w + u32(iw)];
        if (v > best || at < 0) {
          best = v;
          at = ih * i32(P.w) + iw;
        }
      }
    }
    out[row * P.ow + q] = best;
    idx[row * P.ow + q] = at;
  }
}
