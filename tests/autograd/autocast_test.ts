/**
 * Mixed precision at the tape level: conv, BN + ReLU (with residuals), max-pool, average pool
 * and linear under `autocast`, forward and backward, against the same network in f32 (a
 * tiny ResNet, tests/train/tiny_resnet.ts); the dtypes autocast promises; no leaked tensors.
 */
import assert from "node:assert/strict";
import { rand } from "../helpers.ts";
import { TinyResNet } from "../train/tiny_resnet.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { autocast, isAutocastEnabled } from "../../src/autograd/autocast.ts";
import { backward, noGrad, zeroGrad } from "../../src/autograd/tape.ts";
import { crossEntropy } from "../../src/autograd/loss.ts";
import * as F from "../../src/autograd/nn_ops.ts";
import * as ops from "../../src/autograd/ops.ts";

/** Largest |a − b| relative to max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

/** Logits, loss and parameter gradients of one training step, in f32 or under autocast. */
async function step(mixed: boolean) {
  const model = new TinyResNet({ numClasses: 5, seed: 4 });
  model.train();
  const x = Tensor.fromArray(rand(6 * 3 * 8 * 8, 2).map((v) => v * 2), [6, 3, 8, 8]);
  const y = Tensor.fromArray(Int32Array.from([0, 1, 2, 3, 4, 0]), [6]);
  const out = await scope(async () => {
    const logits = autocast(() => model.forward(x), mixed);
    const loss = crossEntropy(logits, y);
    backward(loss);
    return {
      dtype: logits.dtype,
      logits: await logits.toArray(),
      loss: await loss.item(),
      grads: await Promise.all(model.parameters().map((p) => p.grad!.toArray())),
    };
  });
  zeroGrad(model.parameters());
  model.dispose();
  x.dispose();
  y.dispose();
  return out;
}

// Measured on lavapipe: logits 6e-4, loss 5e-5, gradients up to 2.1e-3 (relative to max |g|).
Deno.test("autocast: a tiny ResNet's step is within f16 tolerance of f32, and not equal", async () => {
  const before = memoryStats().liveTensors;
  const f32 = await step(false);
  const f16 = await step(true);
  assert.equal(f16.dtype, "f32", "logits leave linear in f32");
  const logitErr = relErr(f16.logits, f32.logits);
  assert.ok(logitErr < 3e-3 && logitErr > 0, `logits: relative error ${logitErr}`);
  assert.ok(Math.abs(f16.loss - f32.loss) < 5e-4, `loss ${f16.loss} vs ${f32.loss}`);
  f32.grads.forEach((g, i) => {
    const e = relErr(f16.grads[i], g);
    assert.ok(e < 1e-2, `parameter ${i}: gradient relative error ${e}`);
  });
  assert.equal(memoryStats().liveTensors, before);
});

Deno.test("autocast: f16 activations in, f32 math inside, dtypes as PyTorch's autocast", async () => {
  assert.equal(isAutocastEnabled(), false);
  await scope(async () => {
    const x = Tensor.fromArray(rand(2 * 3 * 6 * 6, 7), [2, 3, 6, 6], { requiresGrad: true });
    const w = Tensor.fromArray(rand(4 * 3 * 3 * 3, 8), [4, 3, 3, 3], { requiresGrad: true });
    const bn = {
      weight: Tensor.fromArray([1, 0.5, 2, 1], [4], { requiresGrad: true }),
      bias: Tensor.fromArray([0, 0.1, -0.1, 0], [4], { requiresGrad: true }),
      runningMean: Tensor.fromArray([0, 0, 0, 0], [4]),
      runningVar: Tensor.fromArray([1, 1, 1, 1], [4]),
    };
    const h = autocast(() => {
      assert.equal(isAutocastEnabled(), true);
      const c = F.conv2d(x, w, { padding: 1 });
      assert.equal(c.dtype, "f16", "conv output");
      const r = F.batchNormRelu(c, bn, { training: true }, c);
      assert.equal(r.dtype, "f16", "BN + residual + ReLU of f16 is f16");
      const p = F.maxPool2d(r, { kernelSize: 2 });
      assert.equal(p.dtype, "f16");
      const a = F.adaptiveAvgPool2d(p);
      assert.equal(a.dtype, "f16");
      return a;
    });
    assert.equal(isAutocastEnabled(), false, "the mode is restored");
    // Outside autocast an f16 tensor still takes the mixed path (it cannot be read as f32).
    const flat = F.flatten(h);
    const fc = Tensor.fromArray(rand(3 * 4, 9), [3, 4], { requiresGrad: true });
    const out = F.linear(flat, fc);
    assert.equal(out.dtype, "f32");
    backward(ops.sum(out));
    for (const t of [x, w, bn.weight, bn.bias, fc]) {
      assert.equal(t.grad?.dtype, "f32");
      assert.ok((await t.grad!.toArray()).every(Number.isFinite));
    }
    // Binary ops refuse f16 instead of misreading it.
    assert.throws(() => ops.add(h, h), /add: expected f32 tensors, got f16 and f16/);
    // Eval without the tape.
    const e = noGrad(() => autocast(() => F.conv2d(x, w)));
    assert.equal(e.dtype, "f16");
    for (const t of [x, w, fc, bn.weight, bn.bias]) t.grad?.dispose();
  });
});
