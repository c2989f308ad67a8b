// Conv weight tap window for convs whose outer taps only ever read padding (src/kernels/conv.ts
// crops them): copies each kernel's kept taps (EXPAND = 0), or writes full kernels from kept
// taps and zeros (EXPAND = 1, the weight gradient of the cropped taps is exactly 0).
// Formula, b = o·C + c:
//   EXPAND = 0: dst[(b·KH2 + u)·KW2 + v] = src[(b·KH + KY0 + u)·KW + KX0 + v]
//   EXPAND = 1: dst[(b·KH + ky)·KW + kx] = src[(b·KH2 + ky − KY0)·KW2 + kx − KX0] inside the
//               window (KY0 ≤ ky < KY0 + KH2, KX0 ≤ kx < KX0 + KW2), else 0.
// Each invocation moves four whole kernels (blocks 4i .. 4i + 3): four kernels of either size
//   are a whole number of vec4s, so both sides are read and written as vec4s (the block count
//   must be a multiple of 4, checked in TS). The window is a set of override constants and
//   both loops are unrolled (src/gpu/wgsl_expand.ts), so every float's source is a constant
//   offset and every zero a constant: no index arithmetic at run time.
// Layout: f32. Grid: blocks / 4 invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 src, 2 dst (both array<vec4<f32>>).
override WG: u32 = 64u;
override EXPAND: u32 = 0u;
override KH: u32 = 3u;
override KW: u32 = 3u;
override KH2: u32 = 1u;
override KW2: u32 = 1u;
override KY0: u32 = 1u;
override KX0: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.groups) { return; }
  // Four kernels: KH·KW vec4s at full size, KH2·KW2 cropped.
  const KK = i32(KH * KW);
  const KK2 = i32(KH2 * KW2);
  if (EXPAND == 0u) {
    let sb = i * u32(KK);
    // @unroll
    for (var j = 0; j < KH2 * KW2; j++) {
      var v = vec4<f32>();
      // @unroll
      for (var c = 0; c < 4; c++) {
        // Float f of the four cropped kernels: kernel f / KK2, kept tap (u, w).
        const f = 4 * j + c;
        const u = (f % KK2) / i32(KW2);
        const w = (f % KK2) % i32(KW2);
        const s = (f / KK2) * KK + (i32(KY0) + u) * i32(KW) + i32(KX0) + w;
        v[c] = src[sb + u32(s / 4)][s % 4];
      }
      dst[i * u32(KK2) + u32(j)] = v;
    }
  } else {
    let sb = i * u32(KK2);
    // @unroll
    for (var j = 0; j < KH * KW; j++) {
      var v = vec4<f32>();
      // @unroll
      for (var c = 0; c < 4; c++) {
        // Float f of the four full kernels: kernel f / KK, tap (ky, kx).
        const f = 4 * j + c;
        const ky = (f % KK) / i32(KW) - i32(KY0);
        const kx = (f % KK) % i32(KW) - i32(KX0);
        if (ky >= 0 && ky < i32(KH2) && kx >= 0 && kx < i32(KW2)) {
          // (max: this const is evaluated in the copies where the branch is dead too)
          const s = max((f / KK) * KK2 + ky * i32(KW2) + kx, 0);
          v[c] = src[sb + u32(s / 4)][s % 4];
        }
      }
      dst[i * u32(KK) + u32(j)] = v;
    }
  }
}
