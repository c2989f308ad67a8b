// Elementwise binary op with NumPy broadcasting.
// Formula: out[i] = OP(a[ia], b[ib]), where i is decomposed into coordinates c over the output
//   shape and ia = sum_d c_d * a_stride_d (stride 0 along broadcast dims), likewise ib.
//   OP: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 relu_grad (a * f32(b > 0)), 7 gt (a > b),
//   8 pow (x^y; a negative x with integer y keeps its sign), 9 eq (a == b).
// Layout: f32, contiguous; up to 8 dims. BROADCAST = 0 skips index maths (same shapes).
// Bindings: 0 uniform Params, 1 a, 2 b, 3 out.
override OP: u32 = 0u;
override WG: u32 = 256u;
override BROADCAST: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// x^y as PyTorch defines it: negative bases with integer exponents keep their sign.
fn pow_real(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (x >= 0.0 || fract(p) != 0.0) { return pow(x, p); }
  let m = pow(-x, p);
  return select(m, -m, fract(p * 0.5) != 0.0);
}

fn apply(x: f32, y: f32) -> f32 {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    case 5u: { return min(x, y); }
    case 6u: { return select(0.0, x, y > 0.0); }
    case 7u: { return select(0.0, 1.0, x > y); }
    case 8u: { return pow_real(x, y); }
    default: { return select(0.0, 1.0, x == y); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  if (BROADCAST == 0u) {
    out[i] = apply(a[i], b[i]);
    return;
  }
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(P.ndim) - 1; d >= 0; d--) {
    let dim = P.shape[d / 4][d % 4];
    let c = rem % dim;
    rem = rem / dim;
    ia += c * P.sa[d / 4][d % 4];
    ib += c * P.sb[d / 4][d % 4];
  }
  out[i] = apply(a[ia], b[ib]);
}
