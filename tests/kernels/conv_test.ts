import assert from "node:assert/strict";
import { assertClose, type ConvCase, flat, golden, rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import {
  conv2d,
  type Conv2dGeometry,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  convAlgorithm,
  convCandidates,
  convOutputSize,
} from "../../src/kernels/conv.ts";
import { type Conv2dOptions, tapCrop } from "../../src/kernels/conv_geometry.ts";
import { isDenseConv } from "../../src/kernels/conv_dense.ts";
import { cropWeight, expandWeight } from "../../src/kernels/conv_crop.ts";
import { isUnfoldConv, unfoldDensity, unfoldOnDevice } from "../../src/kernels/conv_unfold.ts";
import { wgradParts } from "../../src/kernels/conv_igemm.ts";
import { GEMM_TILE_NAMES, type GemmTileName } from "../../src/kernels/matmul.ts";
import { gpu } from "../../src/gpu/device.ts";

const G = golden<{ conv: ConvCase[] }>("nn");

// Every golden geometry runs through F.conv2d (the `auto` algorithm) in
// tests/autograd/nn_ops_test.ts; here each one runs on the other kernel family.
Deno.test("conv kernels match PyTorch on every golden geometry with the other algorithm", async () => {
  for (const k of G.conv) {
    await scope(async () => {
      const ow = k.yShape[3];
      const algorithm = ow < 8 ? "direct" as const : "im2col" as const;
      const opts = { stride: k.stride, padding: k.padding, dilation: k.dilation, algorithm };
      const x = Tensor.fromArray(flat(k.x), k.xShape);
      const w = Tensor.fromArray(flat(k.w), k.wShape);
      const gy = Tensor.fromArray(flat(k.gy), k.yShape);
      const tol = { rtol: 1e-4, atol: 1e-4 };
      const tag = `${k.name} (${algorithm})`;
      assertClose(await conv2d(x, w, opts).toArray(), k.y, { ...tol, msg: `${tag} y` });
      const dx = conv2dInputGrad(gy, w, { ...opts, inputShape: k.xShape });
      assertClose(await dx.toArray(), k.dx, { ...tol, msg: `${tag} dx` });
      const dw = conv2dWeightGrad(x, gy, { ...opts, weightShape: k.wShape });
      assertClose(await dw.toArray(), k.dw, { ...tol, msg: `${tag} dw` });
    });
  }
});

Deno.test("conv wgrad is bit-identical across runs (batch-split reduction, no atomics)", async () => {
  await scope(async () => {
    // 4 output x 2 input channels: few invocations, so the batch is split into chunks.
    const x = Tensor.fromArray(rand(6 * 2 * 9 * 9, 1), [6, 2, 9, 9]);
    const dy = Tensor.fromArray(rand(6 * 4 * 9 * 9, 2), [6, 4, 9, 9]);
    const opts = { padding: 1, weightShape: [4, 2, 3, 3], algorithm: "direct" as const };
    const a = await conv2dWeightGrad(x, dy, opts).toArray();
    const b = await conv2dWeightGrad(x, dy, opts).toArray();
    assert.deepEqual(a, b);
    // Host reference in f64.
    const xs = await x.toArray();
    const ds = await dy.toArray();
    const ref = new Float64Array(4 * 2 * 9);
    for (let n = 0; n < 6; n++) {
      for (let o = 0; o < 4; o++) {
        for (let c = 0; c < 2; c++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              let s = 0;
              for (let r = 0; r < 9; r++) {
                for (let q = 0; q < 9; q++) {
                  const ih = r - 1 + ky;
                  const iw = q - 1 + kx;
                  if (ih < 0 || iw < 0 || ih >= 9 || iw >= 9) continue;
                  s += ds[((n * 4 + o) * 9 + r) * 9 + q] * xs[((n * 2 + c) * 9 + ih) * 9 + iw];
                }
              }
              ref[((o * 2 + c) * 3 + ky) * 3 + kx] += s;
            }
          }
        }
      }
    }
    assertClose(a, Array.from(ref), { rtol: 1e-5, atol: 1e-5 });
  });
});

Deno.test("conv geometry: PyTorch output sizes and shape errors", () => {
  assert.equal(convOutputSize(11, 7, 2, 3, 1), 6);
  assert.equal(convOutputSize(56, 1, 2, 0, 1), 28);
  assert.equal(convOutputSize(9, 3, 1, 2, 2), 9);
  const g = conv2dGeometry([2, 3, 11, 11], [4, 3, 7, 7], { stride: 2, padding: 3 });
  assert.deepEqual([g.oh, g.ow], [6, 6]);
  assert.throws(
    () => conv2dGeometry([2, 3, 8, 8], [4, 5, 3, 3]),
    /expected x \[N, C, H, W\] and weight \[O, C, kh, kw\], got \[2, 3, 8, 8\] and \[4, 5, 3, 3\]/,
  );
  assert.throws(() => conv2dGeometry([1, 1, 2, 2], [1, 1, 3, 3]), /output size/);
});

Deno.test("conv kernels wider than 7 taps fall back to im2col + matmul", async () => {
  await scope(async () => {
    const xd = rand(2 * 3 * 4 * 16, 21);
    const wd = rand(5 * 3 * 1 * 9, 22);
    const x = Tensor.fromArray(xd, [2, 3, 4, 16]);
    const w = Tensor.fromArray(wd, [5, 3, 1, 9]);
    const y = await conv2d(x, w, { padding: [0, 2] }).toArray();
    const ref: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 5; o++) {
        for (let r = 0; r < 4; r++) {
          for (let q = 0; q < 12; q++) {
            let s = 0;
            for (let c = 0; c < 3; c++) {
              for (let kx = 0; kx < 9; kx++) {
                const iw = q - 2 + kx;
                if (iw >= 0 && iw < 16) {
                  s += xd[((n * 3 + c) * 4 + r) * 16 + iw] * wd[(o * 3 + c) * 9 + kx];
                }
              }
            }
            ref.push(s);
          }
        }
      }
    }
    assertClose(y, ref, { rtol: 1e-5, atol: 1e-5 });
  });
});

Deno.test("conv igemm matches PyTorch on every golden geometry (smallest and default tiles)", async () => {
  for (const tile of ["32x32_4x4", undefined] as const) {
    for (const k of G.conv) {
      await scope(async () => {
        const opts = {
          stride: k.stride,
          padding: k.padding,
          dilation: k.dilation,
          algorithm: "igemm" as const,
          tile,
        };
        const x = Tensor.fromArray(flat(k.x), k.xShape);
        const w = Tensor.fromArray(flat(k.w), k.wShape);
        const gy = Tensor.fromArray(flat(k.gy), k.yShape);
        const tol = { rtol: 1e-4, atol: 1e-4 };
        const tag = `${k.name} (igemm ${tile ?? "default"})`;
        assertClose(await conv2d(x, w, opts).toArray(), k.y, { ...tol, msg: `${tag} y` });
        const dx = conv2dInputGrad(gy, w, { ...opts, inputShape: k.xShape });
        assertClose(await dx.toArray(), k.dx, { ...tol, msg: `${tag} dx` });
        const dw = conv2dWeightGrad(x, gy, { ...opts, weightShape: k.wShape });
        assertClose(await dw.toArray(), k.dw, { ...tol, msg: `${tag} dw` });
      });
    }
  }
});

/**
 * A conv (forward, input and weight gradients; `auto` unless `opts` forces a path) against the
 * host f64 reference on
 * random data from seeds `seed`, `seed + 1`, `seed + 2`; the weight gradient is also the same
 * bits run to run.
 */
async function checkAutoConv(
  xShape: number[],
  wShape: number[],
  opts: Conv2dOptions,
  seed: number,
  what: string,
): Promise<void> {
  await scope(async () => {
    const g = conv2dGeometry(xShape, wShape, opts);
    const hx = rand(xShape.reduce((a, b) => a * b), seed);
    const hw = rand(wShape.reduce((a, b) => a * b), seed + 1);
    const hdy = rand(g.n * g.o * g.oh * g.ow, seed + 2);
    const ref = hostConv(g, hx, hw, hdy);
    const x = Tensor.fromArray(hx, xShape);
    const w = Tensor.fromArray(hw, wShape);
    const dy = Tensor.fromArray(hdy, [g.n, g.o, g.oh, g.ow]);
    const tol = { rtol: 1e-4, atol: 1e-4 };
    const tag = `${what} x ${xShape} w ${wShape}`;
    assertClose(await conv2d(x, w, opts).toArray(), ref.y, { ...tol, msg: `${tag} y` });
    const dx = conv2dInputGrad(dy, w, { ...opts, inputShape: xShape });
    assertClose(await dx.toArray(), ref.dx, { ...tol, msg: `${tag} dx` });
    const dwOpts = { ...opts, weightShape: wShape };
    const dw = await conv2dWeightGrad(x, dy, dwOpts).toArray();
    assertClose(dw, ref.dw, { ...tol, msg: `${tag} dw` });
    assert.deepEqual(await conv2dWeightGrad(x, dy, dwOpts).toArray(), dw);
  });
}

/** Host f64 forward, dgrad and wgrad of one conv (the definitions, loop by loop). */
function hostConv(
  g: Conv2dGeometry,
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const y = new Float64Array(g.n * g.o * g.oh * g.ow);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < g.n; n++) {
    for (let o = 0; o < g.o; o++) {
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          const yi = ((n * g.o + o) * g.oh + oy) * g.ow + ox;
          for (let c = 0; c < g.c; c++) {
            for (let ky = 0; ky < g.kh; ky++) {
              const ih = oy * g.sh - g.ph + ky * g.dh;
              if (ih < 0 || ih >= g.h) continue;
              for (let kx = 0; kx < g.kw; kx++) {
                const iw = ox * g.sw - g.pw + kx * g.dw;
                if (iw < 0 || iw >= g.w) continue;
                const xi = ((n * g.c + c) * g.h + ih) * g.w + iw;
                const wi = ((o * g.c + c) * g.kh + ky) * g.kw + kx;
                y[yi] += w[wi] * x[xi];
                dx[xi] += w[wi] * dy[yi];
                dw[wi] += dy[yi] * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw };
}

Deno.test("conv igemm: every tile across tile edges, strides, and a split weight gradient", async () => {
  // 70 output and 66 input channels cross the 64-row tiles, 2·5·7 = 70 pixels the 64-column
  // ones; 2·16·17 = 544 pixels cross every column tile and split the weight gradient's k range.
  const cases = [
    { x: [2, 66, 5, 7], w: [70, 66, 3, 3], stride: 1, padding: 1 },
    { x: [2, 3, 16, 17], w: [5, 3, 3, 3], stride: 1, padding: 1 },
    { x: [1, 5, 11, 9], w: [6, 5, 3, 2], stride: 2, padding: [1, 0] as [number, number] },
  ];
  let seed = 50;
  for (const tile of GEMM_TILE_NAMES) {
    for (const c of cases) {
      await scope(async () => {
        const opts = { stride: c.stride, padding: c.padding, algorithm: "igemm" as const, tile };
        const g = conv2dGeometry(c.x, c.w, opts);
        const hx = rand(c.x.reduce((a, b) => a * b), seed++);
        const hw = rand(c.w.reduce((a, b) => a * b), seed++);
        const hdy = rand(g.n * g.o * g.oh * g.ow, seed++);
        const ref = hostConv(g, hx, hw, hdy);
        const x = Tensor.fromArray(hx, c.x);
        const w = Tensor.fromArray(hw, c.w);
        const dy = Tensor.fromArray(hdy, [g.n, g.o, g.oh, g.ow]);
        const tol = { rtol: 1e-4, atol: 1e-4 };
        const tag = `igemm ${tile} x ${c.x} w ${c.w}`;
        assertClose(await conv2d(x, w, opts).toArray(), ref.y, { ...tol, msg: `${tag} y` });
        const dx = conv2dInputGrad(dy, w, { ...opts, inputShape: c.x });
        assertClose(await dx.toArray(), ref.dx, { ...tol, msg: `${tag} dx` });
        const dw = conv2dWeightGrad(x, dy, { ...opts, weightShape: c.w });
        const got = await dw.toArray();
        assertClose(got, ref.dw, { ...tol, msg: `${tag} dw` });
        // Fixed-order partial sums: a second run is bit-identical.
        const again = await conv2dWeightGrad(x, dy, { ...opts, weightShape: c.w }).toArray();
        assert.deepEqual(again, got);
      });
    }
  }
  assert.equal(wgradParts(1, 544), 2);
  assert.equal(wgradParts(200, 1 << 20), 1);
  assert.equal(wgradParts(1, 100), 1);
});

Deno.test("conv algorithm choice: igemm on GPUs, direct or im2col on CPU adapters", () => {
  const g = conv2dGeometry([2, 8, 16, 16], [8, 8, 3, 3], { padding: 1 });
  const late = conv2dGeometry([2, 8, 4, 4], [8, 8, 3, 3], { padding: 1 });
  const wide = conv2dGeometry([1, 1, 4, 16], [1, 1, 1, 9]);
  const cpu = gpu().adapter.isCpu;
  assert.equal(convAlgorithm(g), cpu ? "direct" : "igemm");
  assert.equal(convAlgorithm(late), cpu ? "im2col" : "igemm");
  assert.equal(convAlgorithm(wide), cpu ? "im2col" : "igemm");
  assert.equal(convAlgorithm(wide, { algorithm: "direct" }), "im2col");
  assert.equal(convAlgorithm(g, { algorithm: "igemm" }), "igemm");
  const candidates = convCandidates();
  assert.deepEqual(candidates.slice(0, 2), [{ algorithm: "direct" }, { algorithm: "im2col" }]);
  assert.deepEqual(candidates.slice(2).map((c) => c.tile), [...GEMM_TILE_NAMES]);
  assert.throws(
    () =>
      conv2d(Tensor.empty([1, 1, 3, 3]), Tensor.empty([1, 1, 3, 3]), {
        algorithm: "igemm",
        tile: "9x9" as GemmTileName,
      }),
    /unknown tile "9x9"/,
  );
});

Deno.test("conv tap cropping: which taps only read padding, and the cropped path's results", async () => {
  // 3×3, padding 1 on a 1×1 plane: only the centre tap reads input.
  const one = conv2dGeometry([2, 4, 1, 1], [6, 4, 3, 3], { padding: 1 });
  assert.deepEqual(tapCrop(one), { ky0: 1, kx0: 1, kh: 1, kw: 1, ph: 0, pw: 0 });
  // Stride 2 on a 2×2 plane: taps 1..2 reach it, and then cover the whole plane.
  const s2 = conv2dGeometry([2, 4, 2, 2], [6, 4, 3, 3], { padding: 1, stride: 2 });
  assert.deepEqual(tapCrop(s2), { ky0: 1, kx0: 1, kh: 2, kw: 2, ph: 0, pw: 0 });
  // Every tap reads input on 2×2 (stride 1) and on larger planes.
  assert.equal(tapCrop(conv2dGeometry([1, 1, 2, 2], [1, 1, 3, 3], { padding: 1 })), null);
  assert.equal(tapCrop(conv2dGeometry([1, 1, 8, 8], [1, 1, 3, 3], { padding: 1 })), null);
  // Rows only: a 1×5 plane keeps every column tap.
  const row = conv2dGeometry([1, 1, 1, 5], [1, 1, 3, 3], { padding: 1 });
  assert.deepEqual(tapCrop(row), { ky0: 1, kx0: 0, kh: 1, kw: 3, ph: 0, pw: 1 });
  // Host f64 reference over cropped geometries (odd channel counts: scalar tails), and the
  // cropped path is deterministic run to run.
  const cases = [
    { x: [3, 5, 1, 1], w: [7, 5, 3, 3], stride: 1, padding: 1 },
    { x: [2, 6, 2, 2], w: [5, 6, 3, 3], stride: 2, padding: 1 },
    { x: [2, 3, 1, 5], w: [4, 3, 3, 3], stride: 1, padding: 1 },
    { x: [2, 3, 2, 1], w: [4, 3, 5, 5], stride: 1, padding: 2 },
    // O·C a multiple of 4 (the unrolled vec4 tap-window kernel): ResNet's centre tap and the
    // stride-2 2×2 window.
    { x: [2, 4, 1, 1], w: [6, 4, 3, 3], stride: 1, padding: 1 },
    { x: [2, 6, 2, 2], w: [2, 6, 3, 3], stride: 2, padding: 1 },
  ];
  let seed = 90;
  for (const c of cases) {
    const opts = { stride: c.stride, padding: c.padding };
    assert.notEqual(tapCrop(conv2dGeometry(c.x, c.w, opts)), null, `x ${c.x} w ${c.w} crops`);
    await checkAutoConv(c.x, c.w, opts, seed, "cropped");
    seed += 3;
  }
});

Deno.test("conv dense layers: a kernel as large as its unpadded plane runs as one matmul", async () => {
  await scope(async () => {
    const xs = [3, 5, 2, 3];
    const ws = [6, 5, 2, 3];
    const g = conv2dGeometry(xs, ws);
    assert.equal(isDenseConv(g), true);
    const hx = rand(3 * 5 * 6, 120);
    const hw = rand(6 * 5 * 6, 121);
    const hdy = rand(3 * 6, 122);
    const ref = hostConv(g, hx, hw, hdy);
    const x = Tensor.fromArray(hx, xs);
    const w = Tensor.fromArray(hw, ws);
    const dy = Tensor.fromArray(hdy, [3, 6, 1, 1]);
    const tol = { rtol: 1e-4, atol: 1e-4 };
    for (const algorithm of ["dense", "auto"] as const) {
      const opts = { algorithm };
      assertClose(await conv2d(x, w, opts).toArray(), ref.y, { ...tol, msg: `${algorithm} y` });
      const dx = conv2dInputGrad(dy, w, { ...opts, inputShape: xs });
      assertClose(await dx.toArray(), ref.dx, { ...tol, msg: `${algorithm} dx` });
      const dw = conv2dWeightGrad(x, dy, { ...opts, weightShape: ws });
      assertClose(await dw.toArray(), ref.dw, { ...tol, msg: `${algorithm} dw` });
    }
    // Forcing it on a conv that is not a dense layer is an error that says why.
    assert.equal(isDenseConv(conv2dGeometry(xs, ws, { padding: 1 })), false);
    assert.throws(
      () => conv2d(x, w, { algorithm: "dense", padding: 1 }),
      /dense" needs an unpadded kernel as large as the input plane/,
    );
  });
});

Deno.test("conv tap window: cropped weights and expanded gradients are exact copies", async () => {
  // Windows of the unrolled vec4 kernel (O·C a multiple of 4) and of the strided-copy
  // fallback (odd O·C), against host indexing.
  const cases = [
    { o: 4, c: 3, k: 3, crop: { ky0: 1, kx0: 1, kh: 1, kw: 1 } },
    { o: 2, c: 2, k: 3, crop: { ky0: 1, kx0: 1, kh: 2, kw: 2 } },
    { o: 4, c: 1, k: 5, crop: { ky0: 1, kx0: 0, kh: 3, kw: 5 } },
    { o: 3, c: 1, k: 3, crop: { ky0: 0, kx0: 1, kh: 3, kw: 1 } },
  ];
  for (const [i, { o, c, k, crop }] of cases.entries()) {
    await scope(async () => {
      const g = conv2dGeometry([1, c, 5, 5], [o, c, k, k], {});
      const full = rand(o * c * k * k, 130 + i);
      const kept = rand(o * c * crop.kh * crop.kw, 140 + i);
      const wantCrop = new Float32Array(kept.length);
      const wantExpand = new Float32Array(full.length);
      for (let b = 0; b < o * c; b++) {
        for (let u = 0; u < crop.kh; u++) {
          for (let v = 0; v < crop.kw; v++) {
            const at = (b * k + crop.ky0 + u) * k + crop.kx0 + v;
            const kat = (b * crop.kh + u) * crop.kw + v;
            wantCrop[kat] = full[at];
            wantExpand[at] = kept[kat];
          }
        }
      }
      const tc = { ...crop, ph: 0, pw: 0 };
      const w = Tensor.fromArray(full, [o, c, k, k]);
      const dwc = Tensor.fromArray(kept, [o, c, crop.kh, crop.kw]);
      const tag = `O ${o} C ${c} ${k}×${k} window ${JSON.stringify(crop)}`;
      assert.deepEqual(await cropWeight(w, g, tc).toArray(), wantCrop, `${tag} crop`);
      assert.deepEqual(await expandWeight(dwc, g, tc).toArray(), wantExpand, `${tag} expand`);
    });
  }
});

Deno.test("conv direct: staging rows of whole vec4s at every column shift", async () => {
  // W % 4 == 0 with stride 1: the staging copy splices vec4s, shifted by (−left) mod 4 (left =
  // padding forward, kw − 1 − padding for the input gradient): shifts 0–3 both ways.
  const cases = [
    { x: [2, 3, 3, 8], w: [4, 3, 3, 3], padding: 1 },
    { x: [1, 2, 4, 4], w: [4, 2, 3, 3], padding: 0 },
    { x: [1, 2, 5, 8], w: [3, 2, 5, 5], padding: 2 },
    { x: [1, 2, 6, 12], w: [4, 2, 7, 7], padding: 3 },
  ];
  let seed = 150;
  for (const c of cases) {
    const opts = { padding: c.padding, algorithm: "direct" as const };
    await checkAutoConv(c.x, c.w, opts, seed, `direct p ${c.padding}`);
    seed += 3;
  }
});

Deno.test("conv unfold: tiny planes as one matmul with the weight unfolded over the plane", async () => {
  // Every (input, output) pixel pair linked by a tap: 3×3 padding 1 on 2×2; 3×7 padding
  // (1, 3) on a 2×4 plane (non-square, both dims). Not: a 3×3 plane (density 49/81), odd C.
  const g2 = conv2dGeometry([2, 4, 2, 2], [8, 4, 3, 3], { padding: 1 });
  assert.equal(unfoldDensity(g2), 1);
  assert.ok(isUnfoldConv(g2));
  assert.ok(!isUnfoldConv(conv2dGeometry([2, 4, 3, 3], [8, 4, 3, 3], { padding: 1 })));
  assert.ok(!isUnfoldConv(conv2dGeometry([2, 6, 2, 2], [8, 6, 3, 3], { padding: 1 })));
  const cases = [
    { x: [2, 4, 2, 2], w: [8, 4, 3, 3], padding: [1, 1] as const },
    { x: [3, 8, 2, 4], w: [5, 8, 3, 7], padding: [1, 3] as const },
  ];
  let seed = 170;
  for (const c of cases) {
    const opts = { padding: c.padding };
    const g = conv2dGeometry(c.x, c.w, opts);
    assert.equal(unfoldOnDevice(g), gpu().adapter.isCpu, `x ${c.x} w ${c.w} unfolds`);
    await checkAutoConv(c.x, c.w, opts, seed, "unfolded");
    // Forced (what a tuned table may choose on any adapter).
    await checkAutoConv(c.x, c.w, { ...opts, algorithm: "unfold" }, seed, "forced unfold");
    seed += 3;
  }
});
