// Elementwise binary op on two tensors of the same shape, four elements per invocation.
// Formula: out[i] = OP(a[i], b[i]); OP as in binary.wgsl: 0 add, 1 sub, 2 mul, 3 div, 4 max,
//   5 min, 6 relu_grad (a where b > 0, else 0), 7 gt (a > b), 8 pow (x^y; a negative x with
//   integer y keeps its sign), 9 eq (a == b).
// Layout: f32, contiguous, read and written as vec4 (lavapipe pays per load instruction).
//   Pooled buffers are multiples of 16 bytes, so the last vec4 may cover up to 3 padding
//   elements past n: computed, never read. Broadcasting shapes use binary.wgsl.
// Grid: n4 = ceil(n / 4) invocations. Bindings: 0 uniform Params, 1 a, 2 b, 3 out.
override OP: u32 = 0u;
override WG: u32 = 256u;

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
  out[i] = apply(a[i], b[i]);
}
