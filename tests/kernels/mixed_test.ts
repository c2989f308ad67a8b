/**
 * Mixed precision at the kernel level: the f32 ↔ f16 casts against the host's IEEE rounding
 * (Float16Array), overflow to ±inf and NaN, and the f16-input conv and matmul kernels against
 * host f64 references: tight on the f16-rounded inputs (the f32 accumulation is all that
 * differs), and within a stated tolerance of the unrounded f32 product, at tile edges. The
 * f16-reading tiled matmul and igemm / im2col convs are also checked bit-for-bit against the
 * widening path.
 */
import assert from "node:assert/strict";
import { assertClose, rand } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { cast, hasShaderF16, roundToF16 } from "../../src/kernels/cast.ts";
import { readBackAll } from "../../src/gpu/readback.ts";
import { dispatchStats } from "../../src/gpu/dispatch.ts";
import { GEMM_TILES, type GemmTileName, matmul, matmulTiledF16 } from "../../src/kernels/matmul.ts";
import { pipelineLog } from "../../src/gpu/pipeline_cache.ts";
import { disableTuning } from "../../src/gpu/tune.ts";
import { enableKernelTuning } from "../../src/kernels/tuning.ts";
import {
  conv2dF16,
  conv2dInputGradF16,
  conv2dWeightGradF16,
  matmulF16,
} from "../../src/kernels/mixed.ts";
import {
  conv2d,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  type ConvAlgorithm,
} from "../../src/kernels/conv.ts";
import {
  pointwiseForward,
  pointwiseInputGrad,
  pointwiseWeightGrad,
  type Product,
} from "../../src/kernels/conv_pointwise.ts";

const half = (x: Float32Array): Float32Array => Float32Array.from(new Float16Array(x));

/**
 * Relative tolerance against the unrounded f32 reference: each input carries up to 2⁻¹¹
 * relative rounding error, so a product of sums of |terms| ≈ |result| stays within ~2·2⁻¹¹;
 * with cancellation the error is bounded by the sum of |terms| instead, which `atol` covers.
 */
const F32_RTOL = 2e-3;

Deno.test("cast f32 → f16 rounds to nearest even like Float16Array; overflow is ±inf, NaN stays", async () => {
  assert.ok(hasShaderF16(), "lavapipe offers shader-f16");
  const special = [0, -0, 1, 65504, 65519.99, 65520, -65520, 1e9, Infinity, -Infinity, NaN];
  const tiny = [5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  const x = Float32Array.from([...special, ...tiny, ...rand(1001, 5).map((v) => v * 300)]);
  await scope(async () => {
    const t = Tensor.fromArray(x, [x.length]);
    const h = cast(t, "f16");
    assert.equal(h.dtype, "f16");
    const want = half(x);
    const same = (got: ArrayLike<number>, what: string) => {
      for (let i = 0; i < x.length; i++) {
        assert.ok(Object.is(got[i], want[i]), `${what} x=${x[i]}: got ${got[i]}, want ${want[i]}`);
      }
    };
    same(await h.toArray(), "f16");
    // f16 → f32 is exact, and round-trips through a host upload of f16 data.
    same(await cast(h, "f32").toArray(), "widened");
    same(await roundToF16(t).toArray(), "rounded");
    same(await Tensor.fromArray(want, [want.length], { dtype: "f16" }).toArray(), "uploaded");
    same(await cast(h, "f16").toArray(), "copied");
    const [a, b, c] = await readBackAll([t, h, Tensor.fromArray([1, 2, 3], [3], { dtype: "f16" })]);
    assert.deepEqual([a.length, b.length, [...c]], [x.length, x.length, [1, 2, 3]]);
    same(b, "read back together");
  });
  assert.throws(
    () => scope(() => cast(Tensor.fromArray(new Int32Array([1]), [1]), "f16")),
    /expected f32 ↔ f16, got i32 → f16/,
  );
});

/** Host f64 C = op(A)·op(B). */
function matmulRef(
  a: Float32Array,
  b: Float32Array,
  d: { m: number; n: number; k: number; ta: boolean; tb: boolean },
): Float64Array {
  const c = new Float64Array(d.m * d.n);
  for (let i = 0; i < d.m; i++) {
    for (let j = 0; j < d.n; j++) {
      let s = 0;
      for (let p = 0; p < d.k; p++) {
        s += a[d.ta ? p * d.m + i : i * d.k + p] * b[d.tb ? j * d.k + p : p * d.n + j];
      }
      c[i * d.n + j] = s;
    }
  }
  return c;
}

Deno.test("matmulF16: f16 inputs, f32 accumulation, both kernels, transposes, tile edges", async () => {
  const before = memoryStats().liveTensors;
  for (const variant of ["register", "tiled"] as const) {
    for (
      const [m, n, k, ta, tb] of [
        [33, 65, 17, false, false],
        [1, 7, 3, false, true],
        [64, 64, 64, true, false],
        [70, 31, 129, true, true],
      ] as const
    ) {
      const a = rand(m * k, m + k).map((v) => v * 4);
      const b = rand(k * n, n + 3);
      const ah = half(a);
      const bh = half(b);
      await scope(async () => {
        const A = cast(Tensor.fromArray(a, ta ? [k, m] : [m, k]), "f16");
        const B = cast(Tensor.fromArray(b, tb ? [n, k] : [k, n]), "f16");
        const c = matmulF16(A, B, { transA: ta, transB: tb, variant });
        assert.equal(c.dtype, "f32");
        const got = await c.toArray();
        const msg = `${variant} ${m}×${n}×${k} ta=${ta} tb=${tb}`;
        const d = { m, n, k, ta, tb };
        assertClose(got, matmulRef(ah, bh, d), { rtol: 1e-5, atol: 1e-5, msg });
        assertClose(got, matmulRef(a, b, d), { rtol: F32_RTOL, atol: 2e-3 * k, msg });
      });
    }
  }
  assert.equal(memoryStats().liveTensors, before);
  assert.throws(
    () =>
      scope(() =>
        matmulF16(
          Tensor.fromArray(new Float32Array(4), [2, 2]),
          cast(
            Tensor.fromArray(new Float32Array(4), [2, 2]),
            "f16",
          ),
        )
      ),
    /matmulF16: expected f16 inputs, got f32/,
  );
});

Deno.test("matmulF16 on the tiled kernel reads f16 and equals the widening path bit-for-bit", async () => {
  const before = memoryStats().liveTensors;
  // [tile, m, n, k, transA, transB, batch of A, batch of B] (batch 0: a 2-D operand); the
  // shapes hit tile edges, scalar and vec4 loads (VEC_A/B/C) and batch broadcast both ways.
  const cases: [GemmTileName, number, number, number, boolean, boolean, number, number][] = [
    ["32x32_4x4", 33, 65, 17, false, false, 0, 0],
    ["32x32_4x4", 70, 31, 129, true, true, 3, 0],
    ["64x64_4x4", 64, 64, 64, true, false, 0, 2],
    ["128x64_8x4", 40, 36, 20, false, true, 2, 2],
  ];
  for (const [tile, m, n, k, ta, tb, bA, bB] of cases) {
    const aShape = [...(bA ? [bA] : []), ...(ta ? [k, m] : [m, k])];
    const bShape = [...(bB ? [bB] : []), ...(tb ? [n, k] : [k, n])];
    const a = rand(aShape.reduce((x, y) => x * y), m + k).map((v) => v * 4);
    const b = rand(bShape.reduce((x, y) => x * y), n + 5);
    await scope(async () => {
      const A = cast(Tensor.fromArray(a, aShape), "f16");
      const B = cast(Tensor.fromArray(b, bShape), "f16");
      const opts = { transA: ta, transB: tb, variant: "tiled" as const, tile };
      const d0 = dispatchStats().dispatches;
      const got = matmulF16(A, B, opts);
      // One dispatch: the f16 tiled kernel, no widening casts.
      assert.equal(dispatchStats().dispatches - d0, 1, "matmulF16 ran the f16-reading kernel");
      const want = matmul(cast(A, "f32"), cast(B, "f32"), opts);
      // accumulateInto adds onto C in the same way for both forms.
      const acc = Tensor.fromArray(rand(want.size, 7), want.shape);
      const accWant = Tensor.fromArray(rand(want.size, 7), want.shape);
      matmulTiledF16(A, B, { ...opts, accumulateInto: acc });
      matmul(cast(A, "f32"), cast(B, "f32"), { ...opts, accumulateInto: accWant });
      const [g, w, ga, wa] = await readBackAll([got, want, acc, accWant]);
      const msg = `${tile} ${aShape}${ta ? "ᵀ" : ""} · ${bShape}${tb ? "ᵀ" : ""}`;
      assert.deepEqual(got.shape, want.shape, msg);
      for (const [x, y, what] of [[g, w, "product"], [ga, wa, "accumulated"]] as const) {
        const i = x.findIndex((v, j) => !Object.is(v, y[j]));
        assert.equal(i, -1, `${msg} ${what}: element ${i} is ${x[i]}, widening path ${y[i]}`);
      }
    });
  }
  assert.equal(memoryStats().liveTensors, before);
  assert.throws(
    () => scope(() => matmulTiledF16(Tensor.fromArray([1], [1, 1]), Tensor.fromArray([1], [1, 1]))),
    /matmulTiledF16: expected f16 tensors, got f32 and f32/,
  );
});

interface ConvDims {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  s: number;
  p: number;
}

const outSize = (d: ConvDims, x: number) => Math.floor((x + 2 * d.p - d.k) / d.s) + 1;

/** Host f64 conv forward, input gradient and weight gradient. */
function convRef(x: Float32Array, wt: Float32Array, gy: Float32Array, d: ConvDims) {
  const oh = outSize(d, d.h);
  const ow = outSize(d, d.w);
  const y = new Float64Array(d.n * d.o * oh * ow);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(wt.length);
  for (let n = 0; n < d.n; n++) {
    for (let o = 0; o < d.o; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const yi = ((n * d.o + o) * oh + i) * ow + j;
          for (let c = 0; c < d.c; c++) {
            for (let ky = 0; ky < d.k; ky++) {
              for (let kx = 0; kx < d.k; kx++) {
                const r = i * d.s - d.p + ky;
                const q = j * d.s - d.p + kx;
                if (r < 0 || q < 0 || r >= d.h || q >= d.w) continue;
                const xi = ((n * d.c + c) * d.h + r) * d.w + q;
                const wi = ((o * d.c + c) * d.k + ky) * d.k + kx;
                y[yi] += x[xi] * wt[wi];
                dx[xi] += gy[yi] * wt[wi];
                dw[wi] += gy[yi] * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw, oh, ow };
}

Deno.test("conv2dF16: forward, dgrad and wgrad on each algorithm, odd shapes at tile edges", async () => {
  const before = memoryStats().liveTensors;
  const cases: [ConvDims, ConvAlgorithm][] = [
    [{ n: 2, c: 3, h: 9, w: 11, o: 5, k: 3, s: 1, p: 1 }, "direct"],
    [{ n: 1, c: 4, h: 7, w: 6, o: 9, k: 3, s: 2, p: 1 }, "im2col"],
    [{ n: 2, c: 5, h: 10, w: 9, o: 7, k: 3, s: 1, p: 0 }, "igemm"],
    [{ n: 3, c: 6, h: 9, w: 9, o: 13, k: 1, s: 1, p: 0 }, "auto"],
  ];
  for (const [d, algorithm] of cases) {
    const x = rand(d.n * d.c * d.h * d.w, d.h + 1).map((v) => v * 3);
    const wt = rand(d.o * d.c * d.k * d.k, d.o + 2);
    const { oh, ow } = convRef(x, wt, new Float32Array(0), { ...d, n: 0 });
    const gy = rand(d.n * d.o * oh * ow, 9);
    const [xh, wh, gh] = [half(x), half(wt), half(gy)];
    const exact = convRef(xh, wh, gh, d);
    const f32 = convRef(x, wt, gy, d);
    const opts = { stride: d.s, padding: d.p, algorithm };
    await scope(async () => {
      const X = cast(Tensor.fromArray(x, [d.n, d.c, d.h, d.w]), "f16");
      const W = cast(Tensor.fromArray(wt, [d.o, d.c, d.k, d.k]), "f16");
      const G = cast(Tensor.fromArray(gy, [d.n, d.o, oh, ow]), "f16");
      const y = await conv2dF16(X, W, opts).toArray();
      const dx = await conv2dInputGradF16(G, W, { ...opts, inputShape: X.shape }).toArray();
      const dw = await conv2dWeightGradF16(X, G, { ...opts, weightShape: W.shape }).toArray();
      const msg = `${algorithm} ${JSON.stringify(d)}`;
      const fan = d.c * d.k * d.k;
      assertClose(y, exact.y, { rtol: 1e-5, atol: 1e-5, msg: `${msg} y` });
      assertClose(dx, exact.dx, { rtol: 1e-5, atol: 1e-5, msg: `${msg} dx` });
      assertClose(dw, exact.dw, { rtol: 1e-5, atol: 1e-4, msg: `${msg} dw` });
      assertClose(y, f32.y, { rtol: F32_RTOL, atol: 2e-3 * fan, msg: `${msg} y vs f32` });
      assertClose(dx, f32.dx, { rtol: F32_RTOL, atol: 2e-3 * d.o * d.k, msg: `${msg} dx vs f32` });
      assertClose(dw, f32.dw, {
        rtol: F32_RTOL,
        atol: 2e-3 * d.n * oh * ow,
        msg: `${msg} dw vs f32`,
      });
    });
  }
  assert.equal(memoryStats().liveTensors, before);
});

Deno.test("pointwise conv2dF16 on the tiled matmul reads f16 and equals the widening path bit-for-bit", async () => {
  const before = memoryStats().liveTensors;
  // Unstrided (all three passes read f16) and strided (only dgrad does; the others widen).
  const cases: ConvDims[] = [
    { n: 2, c: 5, h: 9, w: 8, o: 7, k: 1, s: 1, p: 0 },
    { n: 1, c: 6, h: 16, w: 17, o: 3, k: 1, s: 2, p: 0 },
  ];
  const tiledF32: Product = (a, b, o) => matmul(a, b, { ...o, variant: "tiled" });
  for (const d of cases) {
    const x = rand(d.n * d.c * d.h * d.w, d.h + 3).map((v) => v * 3);
    const wt = rand(d.o * d.c, d.o + 4);
    const { oh, ow } = convRef(x, wt, new Float32Array(0), { ...d, n: 0 });
    const gy = rand(d.n * d.o * oh * ow, 11);
    const exact = convRef(half(x), half(wt), half(gy), d);
    const opts = { stride: d.s, matmulVariant: "tiled" as const };
    await scope(async () => {
      const X = cast(Tensor.fromArray(x, [d.n, d.c, d.h, d.w]), "f16");
      const W = cast(Tensor.fromArray(wt, [d.o, d.c, 1, 1]), "f16");
      const G = cast(Tensor.fromArray(gy, [d.n, d.o, oh, ow]), "f16");
      const d0 = dispatchStats().dispatches;
      const y = conv2dF16(X, W, opts);
      if (d.s === 1) assert.equal(dispatchStats().dispatches - d0, 1, "one f16 matmul, no casts");
      const dx = conv2dInputGradF16(G, W, { ...opts, inputShape: X.shape });
      const dw = conv2dWeightGradF16(X, G, { ...opts, weightShape: W.shape });
      const g = conv2dGeometry(X.shape, W.shape, opts);
      const [Xf, Wf, Gf] = [cast(X, "f32"), cast(W, "f32"), cast(G, "f32")];
      const want = [
        pointwiseForward(Xf, Wf, g, tiledF32),
        pointwiseInputGrad(Gf, Wf, g, tiledF32),
        pointwiseWeightGrad(Xf, Gf, g, W.shape, tiledF32),
      ];
      const got = await readBackAll([y, dx, dw, ...want]);
      const msg = JSON.stringify(d);
      ["y", "dx", "dw"].forEach((what, p) => {
        // Strided forward and wgrad widen onto the default kernel: exact to f32 rounding only.
        if (d.s !== 1 && what !== "dx") return;
        const i = got[p].findIndex((v, j) => !Object.is(v, got[p + 3][j]));
        assert.equal(i, -1, `${msg} ${what}: element ${i} differs from the widening path`);
      });
      assertClose(got[0], exact.y, { rtol: 1e-5, atol: 1e-5, msg: `${msg} y` });
      assertClose(got[1], exact.dx, { rtol: 1e-5, atol: 1e-5, msg: `${msg} dx` });
      assertClose(got[2], exact.dw, { rtol: 1e-5, atol: 1e-4, msg: `${msg} dw` });
    });
  }
  assert.equal(memoryStats().liveTensors, before);
});

Deno.test("igemm and im2col conv2dF16 read f16 and equal the widening path bit-for-bit", async () => {
  assert.ok(hasShaderF16(), "lavapipe offers shader-f16");
  const before = memoryStats().liveTensors;
  // Odd channels and planes cross the tile edges; 2·16·17 = 544 pixels split the igemm weight
  // gradient's k range in two parts (summed in a fixed order).
  const cases: [ConvDims, "igemm" | "im2col", GemmTileName | undefined][] = [
    [{ n: 2, c: 5, h: 7, w: 9, o: 7, k: 3, s: 1, p: 1 }, "igemm", undefined],
    [{ n: 2, c: 3, h: 16, w: 17, o: 5, k: 3, s: 1, p: 1 }, "igemm", "64x64_4x4"],
    [{ n: 1, c: 6, h: 9, w: 8, o: 3, k: 3, s: 2, p: 1 }, "igemm", "128x64_8x4"],
    [{ n: 2, c: 4, h: 7, w: 6, o: 9, k: 3, s: 2, p: 1 }, "im2col", undefined],
  ];
  for (const [d, algorithm, tile] of cases) {
    const x = rand(d.n * d.c * d.h * d.w, d.h + 5).map((v) => v * 3);
    const wt = rand(d.o * d.c * d.k * d.k, d.o + 6);
    const { oh, ow } = convRef(x, wt, new Float32Array(0), { ...d, n: 0 });
    const gy = rand(d.n * d.o * oh * ow, 13);
    const exact = convRef(half(x), half(wt), half(gy), d);
    const opts = { stride: d.s, padding: d.p, algorithm, tile };
    await scope(async () => {
      const X = cast(Tensor.fromArray(x, [d.n, d.c, d.h, d.w]), "f16");
      const W = cast(Tensor.fromArray(wt, [d.o, d.c, d.k, d.k]), "f16");
      const G = cast(Tensor.fromArray(gy, [d.n, d.o, oh, ow]), "f16");
      const [Xf, Wf, Gf] = [cast(X, "f32"), cast(W, "f32"), cast(G, "f32")];
      const dispatches = (fn: () => Tensor): [Tensor, number] => {
        const d0 = dispatchStats().dispatches;
        const t = fn();
        return [t, dispatchStats().dispatches - d0];
      };
      const dxOpts = { ...opts, inputShape: X.shape };
      const dwOpts = { ...opts, weightShape: W.shape };
      const runs = [
        [dispatches(() => conv2dF16(X, W, opts)), dispatches(() => conv2d(Xf, Wf, opts))],
        [
          dispatches(() => conv2dInputGradF16(G, W, dxOpts)),
          dispatches(() => conv2dInputGrad(Gf, Wf, dxOpts)),
        ],
        [
          dispatches(() => conv2dWeightGradF16(X, G, dwOpts)),
          dispatches(() => conv2dWeightGrad(Xf, Gf, dwOpts)),
        ],
      ];
      const got = await readBackAll(runs.flatMap(([[a], [b]]) => [a, b]));
      const msg = `${algorithm} ${tile ?? ""} ${JSON.stringify(d)}`;
      const refs = [exact.y, exact.dx, exact.dw];
      ["y", "dx", "dw"].forEach((what, p) => {
        const [f16, f32] = [got[2 * p], got[2 * p + 1]];
        const i = f16.findIndex((v, j) => !Object.is(v, f32[j]));
        assert.equal(i, -1, `${msg} ${what}: element ${i} is ${f16[i]}, widening ${f32[i]}`);
        // The f16 path reads its f16 operands: igemm widens nothing; im2col widens the operand
        // other than x (forward, wgrad); its dgrad widens both (two casts).
        const [[, n16], [, n32]] = runs[p];
        const casts = algorithm === "igemm" ? 0 : what === "dx" ? 2 : 1;
        assert.equal(n16, n32 + casts, `${msg} ${what}: dispatches`);
        assertClose(f16, refs[p], { rtol: 1e-5, atol: 1e-4, msg: `${msg} ${what} vs f64` });
      });
    });
  }
  assert.equal(memoryStats().liveTensors, before);
});

Deno.test("conv2dF16 with a tuned igemm tile: the f16 kernel runs that tile, bit-identical", async () => {
  const before = memoryStats().liveTensors;
  const d: ConvDims = { n: 2, c: 3, h: 6, w: 5, o: 4, k: 3, s: 1, p: 1 };
  const x = rand(d.n * d.c * d.h * d.w, 17);
  const wt = rand(d.o * d.c * d.k * d.k, 18);
  const tile: GemmTileName = "64x128_4x8";
  // N, C, H, W, O up to powers of two, then kernel, stride, padding, dilation.
  const key = "conv2d/2x4x8x8x4x3x3x1x1x1x1x1x1";
  try {
    enableKernelTuning({ [key]: `igemm:${tile}` }, { frozen: true });
    await scope(async () => {
      const X = cast(Tensor.fromArray(x, [d.n, d.c, d.h, d.w]), "f16");
      const W = cast(Tensor.fromArray(wt, [d.o, d.c, d.k, d.k]), "f16");
      const opts = { padding: d.p };
      const from = pipelineLog().length;
      const y = conv2dF16(X, W, opts);
      const ran = pipelineLog().slice(from).map((r) => [r.kernel, r.overrides.TN, r.overrides.TM]);
      assert.deepEqual(ran, [["conv2d_igemm_f16", GEMM_TILES[tile].tn, GEMM_TILES[tile].tm]]);
      const want = conv2d(cast(X, "f32"), cast(W, "f32"), opts);
      const [got, w] = await readBackAll([y, want]);
      const i = got.findIndex((v, j) => !Object.is(v, w[j]));
      assert.equal(i, -1, `element ${i} is ${got[i]}, widening path ${w[i]}`);
    });
  } finally {
    disableTuning();
  }
  assert.equal(memoryStats().liveTensors, before);
});
