// Elementwise unary op with two scalar parameters alpha, beta.
// Formula: out[i] = OP(x[i]); OP: 0 alpha*x+beta, 1 relu, 2 neg, 3 exp, 4 log, 5 sqrt,
//   6 rsqrt, 7 abs, 8 square, 9 sigmoid, 10 tanh, 11 x^alpha (sign kept for integer alpha), 12 1/x,
//   13 clamp(x, alpha, beta), 14 f32(x > alpha).
// Layout: f32, contiguous. Bindings: 0 uniform Params, 1 x, 2 out.
override OP: u32 = 0u;
override WG: u32 = 256u;

struct Params {
  n: u32,
  alpha: f32,
  beta: f32,
  _p: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// x^p as PyTorch defines it: negative bases with integer exponents keep their sign
// (WGSL pow is undefined for x < 0), x^0 = 1 (pow(0, 0) is NaN on some backends).
fn pow_real(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (x >= 0.0 || fract(p) != 0.0) { return pow(x, p); }
  let m = pow(-x, p);
  return select(m, -m, fract(p * 0.5) != 0.0);
}

fn apply(v: f32) -> f32 {
  switch OP {
    case 0u: { return P.alpha * v + P.beta; }
    case 1u: { return max(v, 0.0); }
    case 2u: { return -v; }
    case 3u: { return exp(v); }
    case 4u: { return log(v); }
    case 5u: { return sqrt(v); }
    case 6u: { return inverseSqrt(v); }
    case 7u: { return abs(v); }
    case 8u: { return v * v; }
    case 9u: { return 1.0 / (1.0 + exp(-v)); }
    case 10u: { return tanh(v); }
    case 11u: { return pow_real(v, P.alpha); }
    case 12u: { return 1.0 / v; }
    case 13u: { return clamp(v, P.alpha, P.beta); }
    default: { return select(0.0, 1.0, v > P.alpha); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] = apply(x[i]);
}
