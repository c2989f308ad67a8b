// Conv weight tap window for convs whose outer taps only ever read padding (src/kernels/conv.ts
// crops them): copies each kernel's kept taps (EXPAND = 0), or writes full kernels from kept
// taps and zeros (EXPAND = 1, the weight gradient of the cropped taps is exactly 0).
// Formula, b = o·C + c:
//   EXPAND = 0: dst[(b·KH2 + u)·KW2 + v] = src[(b·KH + KY0 + u)·KW + KX0 + v]
//   EXPAND = 1: dst[(b·KH + ky)·KW + kx] = src[(b·KH2 + ky − KY0)·KW2 + kx − KX0] inside the
//               window (KY0 ≤ ky < KY0 + KH2, KX0 ≤ kx < KX0 + KW2), else 0.
// Four destination elements per invocation and one vec4 store; indices split with an exact f32
//   division (lavapipe scalarises u32 division by a non-constant, lane by lane). Needs
//   total < 2^24 (checked in TS).
// Layout: f32. Grid: ceil(total / 4) invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 src (array<f32>), 2 dst (array<vec4<f32>>; pool buffers are
//   multiples of 16 bytes).
override WG: u32 = 256u;
override EXPAND: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

// ⌊a / d⌋ for a < 2^24: the f32 quotient is within 1 of it, then corrected.
fn udiv(a: u32, d: u32) -> u32 {
  var q = u32(f32(a) / f32(d));
  q = select(q, q - 1u, q * d > a);
  q = select(q, q + 1u, (q + 1u) * d <= a);
  return q;
}

fn value(f: u32) -> f32 {
  if (f >= P.total) { return 0.0; }
  if (EXPAND == 0u) {
    let kk2 = P.kh2 * P.kw2;
    let b = udiv(f, kk2);
    let e = f - b * kk2;
    let u = udiv(e, P.kw2);
    let v = e - u * P.kw2;
    return src[(b * P.kh + P.ky0 + u) * P.kw + P.kx0 + v];
  }
  let kk = P.kh * P.kw;
  let b = udiv(f, kk);
  let e = f - b * kk;
  let ky = udiv(e, P.kw);
  let kx = e - ky * P.kw;
  if (ky < P.ky0 || ky >= P.ky0 + P.kh2 || kx < P.kx0 || kx >= P.kx0 + P.kw2) { return 0.0; }
  return src[(b * P.kh2 + ky - P.ky0) * P.kw2 + kx - P.kx0];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let f = 4u * i;
  if (f >= P.total) { return; }
  dst[i] = vec4(value(f), value(f + 1u), value(f + 2u), value(f + 3u));
}
