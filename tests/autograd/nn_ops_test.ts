import assert from "node:assert/strict";
import { assertClose, type ConvCase, flat, golden, numericGrad, rand } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as F from "../../src/autograd/nn_ops.ts";
import { mul, sum } from "../../src/autograd/ops.ts";
import {
  conv2d as conv2dKernel,
  conv2dInputGrad,
  conv2dWeightGrad,
} from "../../src/kernels/conv.ts";

interface PoolCase {
  name: string;
  x: unknown;
  xShape: number[];
  k: number;
  s: number;
  p: number;
  y: unknown;
  yShape: number[];
  gy: unknown;
  dx: unknown;
}
interface BnStep {
  shape?: number[];
  x: unknown;
  y: unknown;
  gy: unknown;
  dx: unknown;
  dweight: unknown;
  dbias: unknown;
  runningMean?: unknown;
  runningVar?: unknown;
  numBatchesTracked?: number;
}
interface LinearCase {
  x: unknown;
  w: unknown;
  b?: unknown;
  y: unknown;
  gy: unknown;
  dx: unknown;
  dw: unknown;
  db?: unknown;
}

const G = golden<{
  conv: ConvCase[];
  maxPool: PoolCase[];
  avgPool: { x: unknown; xShape: number[]; y: unknown; gy: unknown; dx: unknown };
  batchNorm: {
    shape: number[];
    evalShape: number[];
    weight: number[];
    bias: number[];
    steps: BnStep[];
    eval: BnStep;
  };
  linear: { bias: LinearCase; noBias: LinearCase };
}>("nn");

const leaf = (data: unknown, shape: number[]) =>
  Tensor.fromArray(flat(data), shape, { requiresGrad: true });

for (const k of G.conv) {
  Deno.test(`conv2d forward, dx, dw match PyTorch: ${k.name}`, async () => {
    await scope(async () => {
      const x = leaf(k.x, k.xShape);
      const w = leaf(k.w, k.wShape);
      const y = F.conv2d(x, w, { stride: k.stride, padding: k.padding, dilation: k.dilation });
      assert.deepEqual(y.shape, k.yShape);
      assertClose(await y.toArray(), k.y, { rtol: 1e-4, atol: 1e-4, msg: "y" });
      backward(y, Tensor.fromArray(flat(k.gy), k.yShape));
      assertClose(await x.grad!.toArray(), k.dx, { rtol: 1e-4, atol: 1e-4, msg: "dx" });
      assertClose(await w.grad!.toArray(), k.dw, { rtol: 1e-4, atol: 1e-4, msg: "dw" });
    });
  });
}

Deno.test("conv2d gradients match finite differences (3x3, stride 2, padding 1)", async () => {
  const xs = [1, 2, 5, 5];
  const ws = [3, 2, 3, 3];
  const x0 = rand(50, 11);
  const w0 = rand(54, 12);
  const gy = rand(3 * 3 * 3, 13);
  const opts = { stride: 2, padding: 1 };
  const f = (xd: Float32Array, wd: Float32Array) =>
    scope(async () => {
      const y = F.conv2d(Tensor.fromArray(xd, xs), Tensor.fromArray(wd, ws), opts);
      const l = sum(mul(y, Tensor.fromArray(gy, [1, 3, 3, 3])));
      return (await l.toArray())[0];
    });
  await scope(async () => {
    const x = Tensor.fromArray(x0, xs, { requiresGrad: true });
    const w = Tensor.fromArray(w0, ws, { requiresGrad: true });
    backward(sum(mul(F.conv2d(x, w, opts), Tensor.fromArray(gy, [1, 3, 3, 3]))));
    const nx = await numericGrad((d) => f(d, w0), x0);
    const nw = await numericGrad((d) => f(x0, d), w0);
    assertClose(await x.grad!.toArray(), nx, { rtol: 1e-2, atol: 2e-3, msg: "dx" });
    assertClose(await w.grad!.toArray(), nw, { rtol: 1e-2, atol: 2e-3, msg: "dw" });
  });
});

for (const k of G.maxPool) {
  Deno.test(`maxPool2d forward and gradient match PyTorch: ${k.name}`, async () => {
    await scope(async () => {
      const x = leaf(k.x, k.xShape);
      const y = F.maxPool2d(x, { kernelSize: k.k, stride: k.s, padding: k.p });
      assert.deepEqual(y.shape, k.yShape);
      assertClose(await y.toArray(), k.y, { msg: "y" });
      backward(y, Tensor.fromArray(flat(k.gy), k.yShape));
      assertClose(await x.grad!.toArray(), k.dx, { msg: "dx" });
    });
  });
}

Deno.test("adaptiveAvgPool2d forward and gradient match PyTorch", async () => {
  await scope(async () => {
    const a = G.avgPool;
    const x = leaf(a.x, a.xShape);
    const y = F.adaptiveAvgPool2d(x);
    assert.deepEqual(y.shape, [2, 3, 1, 1]);
    assertClose(await y.toArray(), a.y, { msg: "y" });
    backward(y, Tensor.fromArray(flat(a.gy), [2, 3, 1, 1]));
    assertClose(await x.grad!.toArray(), a.dx, { msg: "dx" });
  });
});

Deno.test("batchNorm2d: two training steps (running stats, counter), eval, gradients", async () => {
  const B = G.batchNorm;
  const c = B.shape[1];
  const state: F.BatchNormState = {
    weight: Tensor.fromArray(B.weight, [c], { requiresGrad: true }),
    bias: Tensor.fromArray(B.bias, [c], { requiresGrad: true }),
    runningMean: Tensor.fromArray(new Float32Array(c), [c]),
    runningVar: Tensor.fromArray(new Float32Array(c).fill(1), [c]),
    numBatchesTracked: Tensor.fromArray(new Int32Array([0]), [], { dtype: "i32" }),
  };
  try {
    for (const [i, s] of B.steps.entries()) {
      await scope(async () => {
        state.weight.grad?.dispose();
        state.weight.grad = null;
        state.bias.grad?.dispose();
        state.bias.grad = null;
        const x = leaf(s.x, s.shape!);
        const y = F.batchNorm2d(x, state, { training: true });
        assertClose(await y.toArray(), s.y, { rtol: 1e-4, atol: 1e-5, msg: `y step ${i}` });
        backward(y, Tensor.fromArray(flat(s.gy), s.shape!));
        assertClose(await x.grad!.toArray(), s.dx, { rtol: 1e-4, atol: 1e-5, msg: "dx" });
        assertClose(await state.weight.grad!.toArray(), s.dweight, { rtol: 1e-4, atol: 1e-5 });
        assertClose(await state.bias.grad!.toArray(), s.dbias, { rtol: 1e-4, atol: 1e-5 });
        assertClose(await state.runningMean.toArray(), s.runningMean, { rtol: 1e-5, atol: 1e-6 });
        assertClose(await state.runningVar.toArray(), s.runningVar, { rtol: 1e-5, atol: 1e-6 });
        assert.equal(await state.numBatchesTracked!.item(), s.numBatchesTracked);
      });
    }
    await scope(async () => {
      const e = B.eval;
      state.weight.grad?.dispose();
      state.weight.grad = null;
      state.bias.grad?.dispose();
      state.bias.grad = null;
      const rm = await state.runningMean.toArray();
      const x = leaf(e.x, B.evalShape);
      const y = F.batchNorm2d(x, state, { training: false });
      assertClose(await y.toArray(), e.y, { rtol: 1e-4, atol: 1e-5, msg: "eval y" });
      backward(y, Tensor.fromArray(flat(e.gy), B.evalShape));
      assertClose(await x.grad!.toArray(), e.dx, { rtol: 1e-4, atol: 1e-5, msg: "eval dx" });
      assertClose(await state.weight.grad!.toArray(), e.dweight, { rtol: 1e-4, atol: 1e-5 });
      assertClose(await state.bias.grad!.toArray(), e.dbias, { rtol: 1e-4, atol: 1e-5 });
      // Eval mode leaves the running statistics and the counter alone.
      assertClose(await state.runningMean.toArray(), rm, { rtol: 0, atol: 0 });
      assert.equal(await state.numBatchesTracked!.item(), 2);
    });
  } finally {
    for (const t of Object.values(state)) t?.dispose();
  }
});

for (const [name, k] of Object.entries(G.linear)) {
  Deno.test(`linear matches PyTorch (${name})`, async () => {
    await scope(async () => {
      const x = leaf(k.x, [3, 5]);
      const w = leaf(k.w, [4, 5]);
      const b = k.b ? leaf(k.b, [4]) : undefined;
      const y = F.linear(x, w, { bias: b });
      assert.deepEqual(y.shape, [3, 4]);
      assertClose(await y.toArray(), k.y, { rtol: 1e-5, atol: 1e-5, msg: "y" });
      backward(y, Tensor.fromArray(flat(k.gy), [3, 4]));
      assertClose(await x.grad!.toArray(), k.dx, { rtol: 1e-5, atol: 1e-5, msg: "dx" });
      assertClose(await w.grad!.toArray(), k.dw, { rtol: 1e-5, atol: 1e-5, msg: "dw" });
      if (b) assertClose(await b.grad!.toArray(), k.db, { rtol: 1e-5, atol: 1e-5, msg: "db" });
    });
  });
}

Deno.test("flatten merges trailing dims and routes the gradient back", async () => {
  await scope(async () => {
    const x = Tensor.fromArray(rand(24, 3), [2, 3, 2, 2], { requiresGrad: true });
    const y = F.flatten(x);
    assert.deepEqual(y.shape, [2, 12]);
    assert.deepEqual(F.flatten(x, { startDim: 0 }).shape, [24]);
    assert.deepEqual(F.flatten(x, { startDim: 2 }).shape, [2, 3, 4]);
    const g = rand(24, 4);
    backward(y, Tensor.fromArray(g, [2, 12]));
    assertClose(await x.grad!.toArray(), g, { rtol: 0, atol: 0 });
  });
});

Deno.test("conv → BN → max pool → conv → avg pool steps keep GPU memory flat over iterations", async () => {
  const w = Tensor.fromArray(rand(8 * 3 * 9, 5), [8, 3, 3, 3], { requiresGrad: true });
  const state: F.BatchNormState = {
    weight: Tensor.fromArray(new Float32Array(8).fill(1), [8], { requiresGrad: true }),
    bias: Tensor.fromArray(new Float32Array(8), [8], { requiresGrad: true }),
    runningMean: Tensor.fromArray(new Float32Array(8), [8]),
    runningVar: Tensor.fromArray(new Float32Array(8).fill(1), [8]),
    numBatchesTracked: Tensor.fromArray(new Int32Array([0]), [], { dtype: "i32" }),
  };
  const x = Tensor.fromArray(rand(2 * 3 * 10 * 10, 6), [2, 3, 10, 10]);
  const w2 = Tensor.fromArray(rand(4 * 8 * 9, 7), [4, 8, 3, 3], { requiresGrad: true });
  const w3 = Tensor.fromArray(rand(4 * 4 * 9, 8), [4, 4, 3, 3], { requiresGrad: true });
  const step = () =>
    scope(() => {
      const h = F.conv2d(x, w, { stride: 1, padding: 1 });
      const b = F.batchNorm2d(h, state, { training: true });
      const p = F.maxPool2d(b, { kernelSize: 3, stride: 2, padding: 1 });
      // 5×5 planes: this conv takes the im2col path, the first one the direct kernels.
      const q = F.conv2d(p, w2, { stride: 2, padding: 1 });
      const a = F.adaptiveAvgPool2d(q);
      // 3×3 on the 1×1 plane: the centre tap alone (cropped weight kept for the backward).
      const r = F.conv2d(a, w3, { padding: 1 });
      backward(sum(F.flatten(r)));
    });
  try {
    step();
    await w.grad!.toArray();
    const before = memoryStats().liveBuffers;
    for (let i = 0; i < 5; i++) step();
    await w.grad!.toArray();
    assert.equal(memoryStats().liveBuffers, before);
    assert.equal(await state.numBatchesTracked!.item(), 6);
    // Only the centre taps of the 1×1-plane conv get gradient (6 steps accumulated).
    const g3 = await w3.grad!.toArray();
    assert.ok(g3.every((v, i) => (i % 9 === 4) === (v !== 0)), "w3 gradient outside the centre");
  } finally {
    for (const t of [w, w2, w3, x, ...Object.values(state)]) t?.dispose();
  }
});

Deno.test("conv2d on a 2×2 plane: the unfolded weight kept for the backward, memory flat", async () => {
  const x = Tensor.fromArray(rand(2 * 4 * 2 * 2, 31), [2, 4, 2, 2], { requiresGrad: true });
  const w = Tensor.fromArray(rand(8 * 4 * 9, 32), [8, 4, 3, 3], { requiresGrad: true });
  const gy = Tensor.fromArray(rand(2 * 8 * 2 * 2, 33), [2, 8, 2, 2]);
  // The im2col kernels as the independent reference.
  const ref = { padding: 1, algorithm: "im2col" as const };
  const step = () =>
    scope(() => {
      x.grad?.dispose();
      w.grad?.dispose();
      x.grad = null;
      w.grad = null;
      const y = F.conv2d(x, w, { padding: 1 });
      backward(y, gy);
      return y.keep();
    });
  try {
    const y = step();
    await scope(async () => {
      assertClose(await y.toArray(), await conv2dKernel(x, w, ref).toArray(), { rtol: 1e-4 });
      const dx = conv2dInputGrad(gy, w, { ...ref, inputShape: x.shape });
      assertClose(await x.grad!.toArray(), await dx.toArray(), { rtol: 1e-4, atol: 1e-5 });
      const dw = conv2dWeightGrad(x, gy, { ...ref, weightShape: w.shape });
      assertClose(await w.grad!.toArray(), await dw.toArray(), { rtol: 1e-4, atol: 1e-5 });
    });
    y.dispose();
    const before = memoryStats().liveBuffers;
    for (let i = 0; i < 3; i++) step().dispose();
    await w.grad!.toArray();
    assert.equal(memoryStats().liveBuffers, before);
  } finally {
    for (const t of [x, w, gy, x.grad, w.grad]) t?.dispose();
  }
});
