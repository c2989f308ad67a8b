// BatchNorm2d backward, per-channel sums (one workgroup per channel, deterministic tree):
// dβ[c] = Σ G[n, c, i], dγ[c] = Σ G·x̂ with x̂ = (x − s1[c])·invstd[c].
// EVAL = 0: s1/s2 = batch mean/invstd; EVAL = 1: running mean/var (invstd = 1/√(s2 + eps)).
// Layout: x, G [N, C, HW] as vec4s (ALIGNED = 1: HW % 4 == 0; otherwise element by element);
//   s1, s2, dγ, dβ [C]; f32.
// Bindings: 0 uniform Params, 1 x, 2 G, 3 s1, 4 s2, 5 dγ, 6 dβ.
override WG: u32 = 256u;
override EVAL: u32 = 0u;
override ALIGNED: u32 = 1u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> s1: array<f32>;
@group(0) @binding(4) var<storage, read> s2: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbeta: array<f32>;

var<workgroup> pa: array<f32, WG>;
var<workgroup> pb: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let c = wid.x;
  let lid = lidv.x;
  let mean = s1[c];
  var invstd = s2[c];
  if (EVAL == 1u) { invstd = inverseSqrt(s2[c] + P.eps); }
  var sg = 0.0;
  var sgx = 0.0;
  // Items e = lid, lid + WG, … of the channel's [N, items] values; their (image, offset) split
  // advances by WG without dividing (u32 divisions run lane by lane on lavapipe).
  let items = select(P.hw, P.hw / 4u, ALIGNED == 1u);
  let dn = WG / items;
  let di = WG % items;
  var n = lid / items;
  var i = lid % items;
  for (var e = lid; e < P.n * items; e += WG) {
    let idx = (n * P.c + c) * items + i;
    if (ALIGNED == 1u) {
      let gv = g[idx];
      sg += gv.x + gv.y + gv.z + gv.w;
      sgx += dot(gv, x[idx] - vec4<f32>(mean));
    } else {
      let gv = g[idx / 4u][idx % 4u];
      sg += gv;
      sgx += gv * (x[idx / 4u][idx % 4u] - mean);
    }
    n += dn;
    i += di;
    if (i >= items) {
      i -= items;
      n++;
    }
  }
  pa[lid] = sg;
  pb[lid] = sgx * invstd;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      pa[lid] = pa[lid] + pa[lid + s];
      pb[lid] = pb[lid] + pb[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    dbeta[c] = pa[0];
    dgamma[c] = pb[0];
  }
}
