import assert from "node:assert/strict";
import { assertClose, rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { maxPool2dBackward, maxPool2dForward } from "../../src/kernels/pool.ts";
import { batchNormApply, batchNormBackward, batchNormStats } from "../../src/kernels/batch_norm.ts";
import { batchNormApplyRelu } from "../../src/kernels/batch_norm_fused.ts";

Deno.test("maxPool2d stores the first maximum in row-major window order", async () => {
  await scope(async () => {
    // Values from {0, 1}: almost every window holds tied maxima.
    const h = 7;
    const data = Float32Array.from(rand(2 * h * h, 3), (v) => (v > 0 ? 1 : 0));
    const x = Tensor.fromArray(data, [1, 2, h, h]);
    const { values, indices } = maxPool2dForward(x, { kernelSize: 3, stride: 2, padding: 1 });
    const got = await indices.toArray();
    const vals = await values.toArray();
    let i = 0;
    for (let p = 0; p < 2; p++) {
      for (let r = 0; r < 4; r++) {
        for (let q = 0; q < 4; q++, i++) {
          let best = -Infinity;
          let at = -1;
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const ih = r * 2 - 1 + ky;
              const iw = q * 2 - 1 + kx;
              if (ih < 0 || iw < 0 || ih >= h || iw >= h) continue;
              const v = data[(p * h + ih) * h + iw];
              if (v > best) [best, at] = [v, ih * h + iw];
            }
          }
          assert.equal(got[i], at, `window ${i}`);
          assert.equal(vals[i], best);
        }
      }
    }
    // Gather backward: each input receives the sum over the windows that chose it.
    const g = Tensor.fromArray(new Float32Array(32).fill(1), [1, 2, 4, 4]);
    const dx = await maxPool2dBackward(g, indices, {
      kernelSize: 3,
      stride: 2,
      padding: 1,
      inputShape: [1, 2, h, h],
    }).toArray();
    const counts = new Float32Array(2 * h * h);
    got.forEach((at, j) => counts[Math.floor(j / 16) * h * h + at]++);
    assertClose(dx, counts, { rtol: 0, atol: 0 });
  });
});

Deno.test("maxPool2d backward sums g over the windows that chose each input, in window order", async () => {
  // Edge geometries: overlapping (k 3 s 1, k 3 s 2), disjoint (k 2 s 2), a window as wide as
  // the row, non-square planes, rows that no window holds (k 1 s 2).
  const cases = [
    { h: 5, w: 7, k: 3, s: 2, p: 1 },
    { h: 4, w: 3, k: 3, s: 1, p: 1 },
    { h: 6, w: 5, k: 2, s: 2, p: 0 },
    { h: 3, w: 3, k: 3, s: 1, p: 0 },
    { h: 5, w: 4, k: 1, s: 2, p: 0 },
  ];
  for (const [ci, { h, w, k, s, p }] of cases.entries()) {
    await scope(async () => {
      const planes = 3;
      const data = Float32Array.from(rand(planes * h * w, 20 + ci), (v) => Math.round(v * 2));
      const x = Tensor.fromArray(data, [1, planes, h, w]);
      const opts = { kernelSize: k, stride: s, padding: p };
      const { indices } = maxPool2dForward(x, opts);
      const [, , oh, ow] = indices.shape;
      const gv = rand(planes * oh * ow, 40 + ci);
      const g = Tensor.fromArray(gv, [1, planes, oh, ow]);
      const idx = await indices.toArray();
      const dx = await maxPool2dBackward(g, indices, { ...opts, inputShape: x.shape }).toArray();
      // f32 sums in row-major window order, as the shader adds them.
      const want = new Float32Array(planes * h * w);
      for (let j = 0; j < idx.length; j++) {
        const at = Math.floor(j / (oh * ow)) * h * w + idx[j];
        want[at] = Math.fround(want[at] + gv[j]);
      }
      assertClose(dx, want, { rtol: 0, atol: 0 });
    });
  }
});

Deno.test("maxPool2d rejects padding above half the window", () => {
  const x = Tensor.fromArray(new Float32Array(16), [1, 1, 4, 4]);
  assert.throws(() => maxPool2dForward(x, { kernelSize: 2, padding: 2 }), /padding/);
  x.dispose();
});

Deno.test("batchNormStats: mean and 1/sqrt(biased var + eps) per channel, no running update", async () => {
  await scope(async () => {
    const data = rand(3 * 2 * 5 * 5, 8);
    const x = Tensor.fromArray(data, [3, 2, 5, 5]);
    const { s1, s2 } = batchNormStats(x, { eps: 1e-5, momentum: 0.1 });
    const mean = [0, 0];
    const vr = [0, 0];
    for (let i = 0; i < data.length; i++) mean[Math.floor(i / 25) % 2] += data[i] / 75;
    for (let i = 0; i < data.length; i++) {
      const c = Math.floor(i / 25) % 2;
      vr[c] += (data[i] - mean[c]) ** 2 / 75;
    }
    assertClose(await s1.toArray(), mean, { rtol: 1e-5, atol: 1e-6 });
    assertClose(await s2.toArray(), vr.map((v) => 1 / Math.sqrt(v + 1e-5)), { rtol: 1e-5 });
    const one = Tensor.fromArray(new Float32Array(2), [1, 2, 1, 1]);
    assert.throws(() => batchNormStats(one, { eps: 1e-5, momentum: 0.1 }), /more than 1 value/);
  });
});

Deno.test("batch-norm reductions: every workgroup size against f64 sums, aligned and not", async () => {
  // Planes of 3 vec4s (fewer items per image than invocations), 5 floats (unaligned) and
  // 40 vec4s (more items per image than the smaller workgroups): the shaders walk the
  // (image, offset) pairs of each invocation's items without dividing.
  for (const [n, c, h, w] of [[5, 3, 3, 4], [4, 2, 1, 5], [3, 2, 10, 16]]) {
    const hw = h * w;
    const m = n * hw;
    const data = rand(n * c * hw, 60 + hw);
    const gd = rand(n * c * hw, 70 + hw);
    const ch = (i: number) => Math.floor(i / hw) % c;
    const mean = new Float64Array(c);
    const vr = new Float64Array(c);
    const sg = new Float64Array(c);
    const sgx = new Float64Array(c);
    data.forEach((v, i) => mean[ch(i)] += v / m);
    data.forEach((v, i) => vr[ch(i)] += (v - mean[ch(i)]) ** 2 / m);
    const invstd = Array.from(vr, (v) => 1 / Math.sqrt(v + 1e-5));
    gd.forEach((v, i) => {
      sg[ch(i)] += v;
      sgx[ch(i)] += v * (data[i] - mean[ch(i)]) * invstd[ch(i)];
    });
    for (const workgroup of [8, 32, 256]) {
      await scope(async () => {
        const x = Tensor.fromArray(data, [n, c, h, w]);
        const g = Tensor.fromArray(gd, [n, c, h, w]);
        const stats = batchNormStats(x, { eps: 1e-5, momentum: 0.1, workgroup });
        const tag = `[${n}, ${c}, ${h}, ${w}] WG ${workgroup}`;
        assertClose(await stats.s1.toArray(), mean, { rtol: 1e-5, atol: 1e-6, msg: `${tag} mean` });
        assertClose(await stats.s2.toArray(), invstd, { rtol: 1e-4, msg: `${tag} invstd` });
        const weight = Tensor.fromArray(new Float32Array(c).fill(1), [c]);
        const { dweight, dbias } = batchNormBackward(x, g, {
          stats,
          weight,
          eps: 1e-5,
          needInput: false,
          workgroup,
        });
        assertClose(await dbias.toArray(), sg, { rtol: 1e-4, atol: 1e-5, msg: `${tag} dβ` });
        assertClose(await dweight.toArray(), sgx, { rtol: 1e-4, atol: 1e-4, msg: `${tag} dγ` });
      });
    }
  }
});

Deno.test("batch-norm per-element kernels: apply, apply + ReLU (+ residual) and dx against f64", async () => {
  // Planes of 20 vec4s (a full run of 16 and a partial one), of 1 vec4 with channels past a
  // lane group, and unaligned planes (the flat kernel).
  for (const [n, c, h, w] of [[2, 3, 8, 10], [3, 10, 2, 2], [2, 3, 3, 3]]) {
    const hw = h * w;
    const m = n * hw;
    const size = n * c * hw;
    const data = rand(size, 80 + hw);
    const gd = rand(size, 90 + hw);
    const res = rand(size, 100 + hw);
    const gamma = Float32Array.from(rand(c, 110 + hw), (v) => 1 + v);
    const beta = rand(c, 120 + hw);
    const ch = (i: number) => Math.floor(i / hw) % c;
    const mean = new Float64Array(c);
    const vr = new Float64Array(c);
    data.forEach((v, i) => mean[ch(i)] += v / m);
    data.forEach((v, i) => vr[ch(i)] += (v - mean[ch(i)]) ** 2 / m);
    const invstd = Array.from(vr, (v) => 1 / Math.sqrt(v + 1e-5));
    const xhat = Array.from(data, (v, i) => (v - mean[ch(i)]) * invstd[ch(i)]);
    const y = xhat.map((v, i) => v * gamma[ch(i)] + beta[ch(i)]);
    const sg = new Float64Array(c);
    const sgx = new Float64Array(c);
    gd.forEach((v, i) => {
      sg[ch(i)] += v;
      sgx[ch(i)] += v * xhat[i];
    });
    const dx = Array.from(
      gd,
      (v, i) => gamma[ch(i)] * invstd[ch(i)] * (v - sg[ch(i)] / m - xhat[i] * sgx[ch(i)] / m),
    );
    await scope(async () => {
      const x = Tensor.fromArray(data, [n, c, h, w]);
      const g = Tensor.fromArray(gd, [n, c, h, w]);
      const r = Tensor.fromArray(res, [n, c, h, w]);
      const weight = Tensor.fromArray(gamma, [c]);
      const bias = Tensor.fromArray(beta, [c]);
      const stats = batchNormStats(x, { eps: 1e-5, momentum: 0.1 });
      const tol = { rtol: 1e-4, atol: 1e-5 };
      const tag = `[${n}, ${c}, ${h}, ${w}]`;
      const opts = { weight, bias, eps: 1e-5 };
      assertClose(await batchNormApply(x, stats, opts).toArray(), y, { ...tol, msg: `${tag} y` });
      const relu = y.map((v) => Math.max(v, 0));
      const yr = await batchNormApplyRelu(x, stats, opts).toArray();
      assertClose(yr, relu, { ...tol, msg: `${tag} relu` });
      const sum = y.map((v, i) => Math.max(v + res[i], 0));
      const ys = await batchNormApplyRelu(x, stats, { ...opts, residual: r }).toArray();
      assertClose(ys, sum, { ...tol, msg: `${tag} residual` });
      const back = batchNormBackward(x, g, { stats, weight, eps: 1e-5 });
      assertClose(await back.dx!.toArray(), dx, { rtol: 1e-3, atol: 1e-4, msg: `${tag} dx` });
    });
  }
});
