/**
 * The fused `batchNormRelu` op against the separate ops it replaces (batchNorm2d, add, relu,
 * themselves golden-tested against PyTorch): bit-identical outputs, gradients and running
 * statistics, in training and eval, with and without a residual, on aligned and unaligned
 * planes; and a finite-difference check of its own gradients.
 */
import assert from "node:assert/strict";
import { assertClose, numericGrad, rand } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as F from "../../src/autograd/nn_ops.ts";
import { add, mul, relu, sum } from "../../src/autograd/ops.ts";

function bnState(c: number, seed: number): F.BatchNormState {
  return {
    weight: Tensor.fromArray(rand(c, seed).map((v) => 1 + 0.5 * v), [c], { requiresGrad: true }),
    bias: Tensor.fromArray(rand(c, seed + 1).map((v) => 0.3 * v), [c], { requiresGrad: true }),
    runningMean: Tensor.fromArray(rand(c, seed + 2).map((v) => 0.1 * v), [c]),
    runningVar: Tensor.fromArray(rand(c, seed + 3).map((v) => 1 + 0.5 * v), [c]),
    numBatchesTracked: Tensor.fromArray(new Int32Array([0]), [], { dtype: "i32" }),
  };
}

async function host(t: Tensor | null | undefined): Promise<number[]> {
  assert.ok(t, "a gradient was expected");
  return [...(await t.toArray())];
}

/** Output, gradients and running stats of one step, fused or as separate ops. */
async function runOnce(
  shape: number[],
  fused: boolean,
  opts: { training: boolean; residual: boolean },
): Promise<Record<string, number[]>> {
  const [n, c, h, w] = shape;
  const size = n * c * h * w;
  const x = Tensor.fromArray(rand(size, 11), shape, { requiresGrad: true });
  const r = Tensor.fromArray(rand(size, 12), shape, { requiresGrad: true });
  const gy = Tensor.fromArray(rand(size, 13), shape);
  const state = bnState(c, 20);
  try {
    const y = scope(() => {
      const o = fused
        ? F.batchNormRelu(x, state, { training: opts.training }, opts.residual ? r : undefined)
        : (() => {
          const b = F.batchNorm2d(x, state, { training: opts.training });
          return relu(opts.residual ? add(b, r) : b);
        })();
      const out = o.view(o.shape).keep();
      backward(sum(mul(o, gy)));
      return out;
    });
    const res: Record<string, number[]> = {
      y: await host(y),
      dx: await host(x.grad),
      dweight: await host(state.weight.grad),
      dbias: await host(state.bias.grad),
      runningMean: await host(state.runningMean),
      runningVar: await host(state.runningVar),
    };
    if (opts.residual) res.dr = await host(r.grad);
    else assert.equal(r.grad, null);
    y.dispose();
    return res;
  } finally {
    for (const t of [x, r, gy, x.grad, r.grad, state.weight.grad, state.bias.grad]) t?.dispose();
    for (const t of Object.values(state)) t?.dispose();
  }
}

for (const shape of [[2, 3, 4, 4], [3, 2, 3, 5]]) {
  for (const training of [true, false]) {
    for (const residual of [false, true]) {
      const name = `batchNormRelu ${JSON.stringify(shape)} ${training ? "train" : "eval"}${
        residual ? " + residual" : ""
      } is bit-identical to batchNorm2d${residual ? ", add" : ""}, relu`;
      Deno.test(name, async () => {
        const before = memoryStats().liveBuffers;
        const want = await runOnce(shape, false, { training, residual });
        const got = await runOnce(shape, true, { training, residual });
        assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
        for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], k);
        assert.ok(want.y.some((v) => v === 0) && want.y.some((v) => v > 0), "ReLU clips some");
        assert.equal(memoryStats().liveBuffers, before, "nothing leaks");
      });
    }
  }
}

Deno.test("batchNormRelu gradients match finite differences (x, γ, residual)", async () => {
  const shape = [2, 2, 3, 3];
  const size = 36;
  const x0 = rand(size, 31).map((v) => 2 * v);
  const r0 = rand(size, 32);
  const gy = rand(size, 33);
  const gamma0 = Float32Array.from([1.3, 0.7]);
  // Loss as a host function of (x, γ, r): Σ gy · batchNormRelu(x; γ) with residual r.
  const loss = async (xs: Float32Array, g: Float32Array, rs: Float32Array) => {
    const state = bnState(2, 40);
    const x = Tensor.fromArray(xs, shape);
    const r = Tensor.fromArray(rs, shape);
    const w = Tensor.fromArray(g, [2]);
    const gt = Tensor.fromArray(gy, shape);
    try {
      const l = scope(() =>
        sum(mul(F.batchNormRelu(x, { ...state, weight: w }, { training: true }, r), gt))
      );
      const v = await l.item();
      l.dispose();
      return v;
    } finally {
      for (const t of [x, r, w, gt, ...Object.values(state)]) t?.dispose();
    }
  };
  const state = bnState(2, 40);
  const x = Tensor.fromArray(x0, shape, { requiresGrad: true });
  const r = Tensor.fromArray(r0, shape, { requiresGrad: true });
  const w = Tensor.fromArray(gamma0, [2], { requiresGrad: true });
  const gt = Tensor.fromArray(gy, shape);
  try {
    scope(() =>
      backward(sum(mul(F.batchNormRelu(x, { ...state, weight: w }, { training: true }, r), gt)))
    );
    const tol = { rtol: 2e-2, atol: 2e-2 };
    assertClose(
      await x.grad!.toArray(),
      await numericGrad((v) => loss(v, gamma0, r0), x0, 1e-3),
      { ...tol, msg: "dx" },
    );
    assertClose(
      await w.grad!.toArray(),
      await numericGrad((v) => loss(x0, v, r0), gamma0, 1e-3),
      { ...tol, msg: "dγ" },
    );
    assertClose(
      await r.grad!.toArray(),
      await numericGrad((v) => loss(x0, gamma0, v), r0, 1e-3),
      { ...tol, msg: "dr" },
    );
  } finally {
    for (const t of [x, r, w, gt, x.grad, r.grad, w.grad, ...Object.values(state)]) t?.dispose();
  }
});

Deno.test("batchNormRelu rejects a residual of another shape, naming both", () => {
  const state = bnState(2, 50);
  const x = Tensor.fromArray(rand(16, 1), [2, 2, 2, 2]);
  const r = Tensor.fromArray(rand(8, 1), [1, 2, 2, 2]);
  try {
    assert.throws(
      () => F.batchNormRelu(x, state, { training: true }, r),
      /batchNormRelu: residual has shape \[1, 2, 2, 2\], expected \[2, 2, 2, 2\]/,
    );
  } finally {
    for (const t of [x, r, ...Object.values(state)]) t?.dispose();
  }
});
