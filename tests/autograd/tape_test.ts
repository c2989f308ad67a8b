/**
 * Tape behaviour: gradient accumulation and zeroGrad, noGrad, error cases, finite-difference
 * checks at odd sizes, and flat memory over 1000 training-step-like iterations.
 */
import assert from "node:assert/strict";
import { assertClose, rand } from "../helpers.ts";
import { memoryStats, resetPeak, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward, isGradEnabled, noGrad, zeroGrad } from "../../src/autograd/tape.ts";
import * as ops from "../../src/autograd/ops.ts";
import { binary } from "../../src/kernels/elementwise.ts";
import { stridedCopy } from "../../src/kernels/copy.ts";
import { sync } from "../../src/gpu/dispatch.ts";

Deno.test("gradients accumulate over two backward calls until zeroGrad", async () => {
  const x = Tensor.fromArray([1, -2, 3], [3], { requiresGrad: true });
  await scope(async () => {
    backward(ops.sum(ops.square(x))); // 2x
    assertClose(await x.grad!.toArray(), [2, -4, 6]);
    backward(ops.sum(ops.mulScalar(x, 3))); // + 3
    assertClose(await x.grad!.toArray(), [5, -1, 9]);
  });
  assert.ok(x.grad && !x.grad.disposed, "grad survives the scope it was made in");
  zeroGrad([x]);
  assert.equal(x.grad, null);
  await scope(async () => {
    backward(ops.sum(x));
    assertClose(await x.grad!.toArray(), [1, 1, 1]);
  });
  x.dispose();
  assert.ok(x.disposed);
});

Deno.test("a tensor used twice gets the sum of both paths' gradients", async () => {
  const x = Tensor.fromArray([0.5, 2], [2], { requiresGrad: true });
  await scope(async () => {
    const y = ops.mul(x, ops.exp(x)); // d/dx x·eˣ = (1 + x)eˣ
    backward(ops.sum(y));
    assertClose(await x.grad!.toArray(), [1.5 * Math.exp(0.5), 3 * Math.exp(2)]);
  });
  x.dispose();
});

Deno.test("noGrad records nothing, restores recording, works for async functions", async () => {
  const x = Tensor.fromArray([1, 2], [2], { requiresGrad: true });
  await scope(async () => {
    const y = noGrad(() => ops.mul(x, x));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    assert.equal(isGradEnabled(), true);
    const z = await noGrad(async () => {
      await Promise.resolve();
      assert.equal(isGradEnabled(), false);
      return ops.add(x, x);
    });
    assert.equal(z.node, null);
    assert.equal(isGradEnabled(), true);
    assert.throws(() =>
      noGrad(() => {
        throw new Error("boom");
      }), /boom/);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => backward(y), /does not require grad/);
    const w = ops.mul(x, x);
    assert.equal(w.requiresGrad, true);
    assert.throws(() => backward(w), /gradient is needed for non-scalar \[2\]/);
  });
  x.dispose();
});

Deno.test("detach cuts the tape", async () => {
  const x = Tensor.fromArray([3], [1], { requiresGrad: true });
  await scope(async () => {
    const y = ops.mul(x, ops.detach(x)); // gradient only through the first factor: 3
    backward(ops.sum(y));
    assertClose(await x.grad!.toArray(), [3]);
  });
  x.dispose();
});

/** Row-wise test function [R, n] → [R] mixing elementwise ops, a matmul and reductions. */
function f(x: Tensor, w: Tensor, m: Tensor): Tensor {
  const x2p1 = ops.addScalar(ops.square(x), 1);
  const terms = ops.add(
    ops.add(ops.mul(w, ops.exp(ops.mulScalar(x, 0.5))), ops.div(x, x2p1)),
    ops.sub(ops.sqrt(x2p1), ops.powScalar(x2p1, 1.5)),
  );
  const a = ops.sum(terms, { axis: 1 });
  const b = ops.mean(ops.square(ops.matmul(x, m)), { axis: 1 });
  const c = ops.log(ops.addScalar(ops.mean(ops.square(ops.relu(x)), { axis: 1 }), 1));
  return ops.add(ops.add(a, b), c);
}

for (const n of [1, 7, 33, 257]) {
  Deno.test(`finite differences match backward at n = ${n}`, async () => {
    const eps = 2e-2;
    const x0 = rand(n, n).map((v) => v * 0.9 + (v >= 0 ? 0.05 : -0.05)); // away from relu's kink
    await scope(async () => {
      const w = Tensor.fromArray(rand(n, 7 + n), [1, n]);
      const m = Tensor.fromArray(rand(n * 3, 11 + n), [n, 3]);
      // All 2n perturbed copies in one batch: one readback for every numeric derivative.
      const xs = new Float32Array(2 * n * n);
      for (let i = 0; i < n; i++) {
        xs.set(x0, i * n);
        xs[i * n + i] += eps;
        xs.set(x0, (n + i) * n);
        xs[(n + i) * n + i] -= eps;
      }
      const vals = await noGrad(() => f(Tensor.fromArray(xs, [2 * n, n]), w, m)).toArray();
      const numeric = new Float32Array(n);
      for (let i = 0; i < n; i++) numeric[i] = (vals[i] - vals[n + i]) / (2 * eps);
      const x = Tensor.fromArray(x0, [1, n], { requiresGrad: true });
      backward(ops.sum(f(x, w, m)));
      assertClose(await x.grad!.toArray(), numeric, { rtol: 1e-2, atol: 5e-3 });
      x.dispose();
    });
  });
}

Deno.test("1000 step-like iterations keep live tensors and buffers constant", async () => {
  const w = Tensor.fromArray(rand(64, 3), [8, 8], { requiresGrad: true });
  const bias = Tensor.fromArray(rand(8, 4), [8], { requiresGrad: true });
  const x = Tensor.fromArray(rand(32, 5), [4, 8]);
  const step = (): void =>
    scope(() => {
      const h = ops.relu(ops.add(ops.matmul(x, w), bias));
      const loss = ops.mean(ops.square(ops.sub(h, x)));
      backward(loss);
      noGrad(() => {
        for (const p of [w, bias]) {
          const upd = binary("sub", p, ops.mulScalar(p.grad!, 1e-3));
          stridedCopy(upd, p, { shape: [p.size], srcStrides: [1], dstStrides: [1] });
        }
      });
      zeroGrad([w, bias]);
    });
  for (let i = 0; i < 10; i++) step();
  await sync();
  const before = memoryStats();
  for (let i = 0; i < 1000; i++) step();
  await sync();
  const after = memoryStats();
  assert.equal(after.liveTensors, before.liveTensors);
  assert.equal(after.liveBuffers, before.liveBuffers);
  assert.equal(after.liveBytes, before.liveBytes);
  // Idle buffers: uniforms (one per dispatch, reusable after each submit of at most 2048
  // dispatches) plus a few storage buffers; freed storage is reused within a submit.
  assert.ok(
    after.pooledBuffers - before.pooledBuffers <= 2048 + 64,
    `pool grew from ${before.pooledBuffers} to ${after.pooledBuffers} idle buffers`,
  );
  assert.ok((await w.toArray()).every(Number.isFinite));
  for (const t of [w, bias, x]) t.dispose();
});

Deno.test("backward releaseGraph: same gradients, intermediates freed early, views and loss kept", async () => {
  const n = 1 << 14;
  const w = Tensor.fromArray(rand(n, 3), [n], { requiresGrad: true });
  const x = Tensor.fromArray(rand(n, 4).map((v) => v + 2), [n]);
  // A chain of 6 ops on n values: every output is saved by the next op's backward, and the
  // last backward (div's) makes four temporaries, when the other outputs can be gone.
  const run = async (releaseGraph: boolean) => {
    const base = memoryStats().liveBytes;
    const out = await scope(async () => {
      const h1 = ops.div(w, x);
      const h2 = ops.relu(h1);
      const h3 = ops.exp(h2);
      const h4 = ops.mul(h3, h1);
      const h5 = ops.square(h4);
      const loss = ops.sum(h5);
      const h2view = h2.view([n]);
      const expectH2 = await h2.toArray();
      resetPeak();
      backward(loss, undefined, { releaseGraph });
      const peak = memoryStats().peakBytes - base;
      assert.equal(h3.disposed, releaseGraph, "an intermediate is freed only on request");
      assert.equal(loss.disposed, false, "the loss stays");
      assert.deepEqual([...(await h2view.toArray())], [...expectH2], "a view stays valid");
      return { grad: [...(await w.grad!.toArray())], loss: await loss.item(), peak };
    });
    zeroGrad([w]);
    return out;
  };
  try {
    const keepAll = await run(false);
    const released = await run(true);
    assert.deepEqual(released.grad, keepAll.grad);
    assert.equal(released.loss, keepAll.loss);
    assert.ok(
      released.peak < keepAll.peak,
      `peak with releaseGraph ${released.peak} < without ${keepAll.peak}`,
    );
  } finally {
    w.dispose();
    x.dispose();
  }
});
