// Conv weight tap window for convs whose outer taps only ever read padding (src/kernels/conv.ts
// crops them): copies each kernel's kept taps (EXPAND = 0), or writes full kernels from kept
// taps and zeros (EXPAND = 1, the weight gradient of the cropped taps is exactly 0).
// Formula, b = o·C + c:
//   EXPAND = 0: dst[(b·KH2 + u)·KW2 + v] = src[(b·KH + KY0 + u)·KW + KX0 + v]
//   EXPAND = 1: dst[(b·KH + ky)·KW + kx] = src[(b·KH2 + ky − KY0)·KW2 + kx − KX0] inside the
//               window (KY0 ≤ ky < KY0 + KH2, KX0 ≤ kx < KX0 + KW2), else 0.
// Each invocation writes four whole destination kernels (blocks 4i .. 4i + 3) as vec4 stores,
//   so the block count must be a multiple of 4 (checked in TS). Indices are split by
//   comparisons, without u32 division (which lavapipe runs lane by lane).
// Layout: f32. Grid: blocks / 4 invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 src (array<f32>), 2 dst (array<vec4<f32>>).
override WG: u32 = 64u;
override EXPAND: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

// ⌊e / d⌋ for e < n·d, by counting the multiples of d up to e.
fn quot(e: u32, d: u32, n: u32) -> u32 {
  var q = 0u;
  for (var t = 1u; t < n; t++) { q += u32(e >= t * d); }
  return q;
}

// Element f (< 4 kernels) of the four destination kernels that start at kernel b0.
fn value(b0: u32, f: u32) -> f32 {
  if (EXPAND == 0u) {
    let kk2 = P.kh2 * P.kw2;
    let bl = quot(f, kk2, 4u);
    let e = f - bl * kk2;
    let u = quot(e, P.kw2, P.kh2);
    let v = e - u * P.kw2;
    return src[((b0 + bl) * P.kh + P.ky0 + u) * P.kw + P.kx0 + v];
  }
  let kk = P.kh * P.kw;
  let bl = quot(f, kk, 4u);
  let e = f - bl * kk;
  let ky = quot(e, P.kw, P.kh);
  let kx = e - ky * P.kw;
  if (ky < P.ky0 || ky >= P.ky0 + P.kh2 || kx < P.kx0 || kx >= P.kx0 + P.kw2) { return 0.0; }
  return src[((b0 + bl) * P.kh2 + ky - P.ky0) * P.kw2 + kx - P.kx0];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.groups) { return; }
  // Destination vec4s per kernel group: four kernels of the destination's size.
  var per = P.kh2 * P.kw2;
  if (EXPAND == 1u) { per = P.kh * P.kw; }
  let b0 = 4u * i;
  for (var j = 0u; j < per; j++) {
    let f = 4u * j;
    dst[i * per + j] = vec4(value(b0, f), value(b0, f + 1u), value(b0, f + 2u), value(b0, f + 3u));
  }
}
