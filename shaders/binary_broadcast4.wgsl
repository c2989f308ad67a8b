// Elementwise binary op with NumPy broadcasting, four consecutive outputs per invocation.
// Formula: out[i] = OP(a[ia], b[ib]) as in binary.wgsl (OP: 0 add, 1 sub, 2 mul, 3 div, 4 max,
//   5 min, 6 relu_grad, 7 gt, 8 pow, 9 eq), per lane, so results equal binary.wgsl's bit for bit.
// Layout: the output shape is collapsed so that its last dim is a multiple of 4; shape[] holds
//   it with the last dim counted in vec4s, and the strides (in elements) step one vec4 there.
//   An operand that runs along the last dim (stride 1, every other stride a multiple of 4) is
//   read as one vec4; one broadcast along it (A_SPLAT / B_SPLAT = 1, stride 0) reads one
//   scalar and splats it. The index maths runs once per four outputs instead of once per one.
// Grid: n4 invocations (linear id gid.x + gid.y · nwg.x · WG).
// Bindings: 0 uniform Params, 1 a, 2 b, 3 out (all array<vec4<f32>>; pool buffers are
//   multiples of 16 bytes, a scalar e is [e / 4][e % 4]).
override OP: u32 = 0u;
override WG: u32 = 256u;
override A_SPLAT: u32 = 0u;
override B_SPLAT: u32 = 0u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

fn pow_real(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (x >= 0.0 || fract(p) != 0.0) { return pow(x, p); }
  let m = pow(-x, p);
  return select(m, -m, fract(p * 0.5) != 0.0);
}

fn apply(x: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    case 5u: { return min(x, y); }
    case 6u: { return select(vec4(0.0), x, y > vec4(0.0)); }
    case 7u: { return select(vec4(0.0), vec4(1.0), x > y); }
    case 8u: { return vec4(pow_real(x.x, y.x), pow_real(x.y, y.y), pow_real(x.z, y.z), pow_real(x.w, y.w)); }
    default: { return select(vec4(0.0), vec4(1.0), x == y); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n4) { return; }
  var ia = 0u;
  var ib = 0u;
  if (P.ndim == 1u) {
    // One collapsed dim (e.g. a tensor times a scalar): i itself, without the divisions that
    // SwiftShader runs lane by lane (they made this kernel 3× as slow as the AdamW update).
    ia = i * P.sa[0][0];
    ib = i * P.sb[0][0];
  } else {
    var rem = i;
    for (var d = i32(P.ndim) - 1; d >= 0; d--) {
      let dim = P.shape[d / 4][d % 4];
      let c = rem % dim;
      rem = rem / dim;
      ia += c * P.sa[d / 4][d % 4];
      ib += c * P.sb[d / 4][d % 4];
    }
  }
  var x: vec4<f32>;
  var y: vec4<f32>;
  if (A_SPLAT == 1u) { x = vec4(a[ia / 4u][ia % 4u]); } else { x = a[ia / 4u]; }
  if (B_SPLAT == 1u) { y = vec4(b[ib / 4u][ib % 4u]); } else { y = b[ib / 4u]; }
  out[i] = apply(x, y);
}
