// Elementwise unary op with two scalar parameters alpha, beta, four elements per invocation.
// Formula: out[i] = OP(x[i]); OP: 0 alpha*x+beta, 1 relu, 2 neg, 3 exp, 4 log, 5 sqrt,
//   6 rsqrt, 7 abs, 8 square, 9 sigmoid, 10 tanh, 11 x^alpha (sign kept for integer alpha),
//   12 1/x, 13 clamp(x, alpha, beta), 14 f32(x > alpha).
// Layout: f32, contiguous, read and written as vec4 (lavapipe pays per load instruction, so
//   vec4 loads are ~2.4x faster than scalar ones). Pooled buffers are multiples of 16 bytes,
//   so the last vec4 may cover up to 3 padding elements past n: computed, never read.
// Grid: n4 = ceil(n / 4) invocations. Bindings: 0 uniform Params, 1 x, 2 out.
override OP: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

// x^p as PyTorch defines it: negative bases with integer exponents keep their sign
// (WGSL pow is undefined for x < 0), x^0 = 1 (pow(0, 0) is NaN on some backends).
fn pow_real(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (x >= 0.0 || fract(p) != 0.0) { return pow(x, p); }
  let m = pow(-x, p);
  return select(m, -m, fract(p * 0.5) != 0.0);
}

fn apply(v: vec4<f32>) -> vec4<f32> {
  let a = P.alpha;
  switch OP {
    case 0u: { return a * v + P.beta; }
    case 1u: { return max(v, vec4(0.0)); }
    case 2u: { return -v; }
    case 3u: { return exp(v); }
    case 4u: { return log(v); }
    case 5u: { return sqrt(v); }
    case 6u: { return inverseSqrt(v); }
    case 7u: { return abs(v); }
    case 8u: { return v * v; }
    case 9u: { return 1.0 / (1.0 + exp(-v)); }
    case 10u: { return tanh(v); }
    case 11u: { return vec4(pow_real(v.x, a), pow_real(v.y, a), pow_real(v.z, a), pow_real(v.w, a)); }
    case 12u: { return 1.0 / v; }
    case 13u: { return clamp(v, vec4(a), vec4(P.beta)); }
    default: { return select(vec4(0.0), vec4(1.0), v > vec4(a)); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n4) { return; }
  out[i] = apply(x[i]);
}
