import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import { crossEntropy, type LossReduction } from "../../src/autograd/loss.ts";

interface Case {
  name: string;
  n: number;
  c: number;
  logits: number[][];
  targets: number[];
  weight: number[] | null;
  eps: number;
  reduction: LossReduction;
  gout: number | number[];
  loss: number | number[];
  grad: number[][];
}

const G = golden<{ loss: Case[] }>("model");

for (const k of G.loss) {
  Deno.test(`crossEntropy matches PyTorch: ${k.name}`, async () => {
    await scope(async () => {
      const z = Tensor.fromArray(k.logits.flat(), [k.n, k.c], { requiresGrad: true });
      const y = Tensor.fromArray(k.targets, [k.n], { dtype: "i32" });
      const w = k.weight ? Tensor.fromArray(k.weight, [k.c]) : null;
      const loss = crossEntropy(z, y, {
        weight: w,
        labelSmoothing: k.eps,
        reduction: k.reduction,
      });
      assert.deepEqual(loss.shape, k.reduction === "none" ? [k.n] : []);
      const got = await loss.toArray();
      // ±1e4 logits: f32 log-sum-exp keeps ~1e-7 relative of 1e4.
      const big = k.name === "large";
      assertClose(got, k.loss, { rtol: big ? 1e-5 : 2e-5, atol: big ? 1e-2 : 1e-6 });
      const g = k.reduction === "none" ? Tensor.fromArray(k.gout as number[], [k.n]) : undefined;
      backward(loss, g);
      assertClose(await z.grad!.toArray(), k.grad, {
        rtol: 1e-4,
        atol: big ? 1e-5 : 1e-6,
        msg: `${k.name} grad`,
      });
      z.dispose();
    });
  });
}

Deno.test("crossEntropy: all-ones weights equal no weights; finite for ±1e4", async () => {
  await scope(async () => {
    const z = Tensor.fromArray([1e4, -1e4, 0, -1e4, 1e4, 3], [2, 3]);
    const y = Tensor.fromArray([1, 1], [2], { dtype: "i32" });
    const a = await crossEntropy(z, y, { labelSmoothing: 0.1 }).item();
    const b = await crossEntropy(z, y, {
      labelSmoothing: 0.1,
      weight: Tensor.fromArray([1, 1, 1], [3]),
    }).item();
    assert.ok(Number.isFinite(a), `loss ${a}`);
    assert.equal(a, b);
  });
});

Deno.test("crossEntropy: rejects mis-shaped inputs with one-line errors", () => {
  scope(() => {
    const z = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    assert.throws(
      () => crossEntropy(z, Tensor.fromArray([0, 1], [2])),
      /targets must be i32 \[2\], got \[2\] f32/,
    );
    assert.throws(
      () =>
        crossEntropy(z, Tensor.fromArray([0, 1], [2], { dtype: "i32" }), {
          weight: Tensor.fromArray([1, 1, 1], [3]),
        }),
      /weight must be f32 \[2\], got \[3\]/,
    );
  });
});

Deno.test("crossEntropy: memory stays flat over repeated forward/backward", async () => {
  const z = Tensor.fromArray(new Float32Array(12).map((_, i) => i / 7), [3, 4], {
    requiresGrad: true,
  });
  const y = Tensor.fromArray([0, 3, -100], [3], { dtype: "i32" });
  const w = Tensor.fromArray([1, 2, 3, 4], [4]);
  const step = () =>
    scope(() => {
      backward(crossEntropy(z, y, { weight: w, labelSmoothing: 0.1 }));
      z.grad?.dispose();
      z.grad = null;
    });
  step();
  const before = memoryStats().liveBuffers;
  for (let i = 0; i < 5; i++) step();
  assert.equal(memoryStats().liveBuffers, before);
  assert.ok(Number.isFinite(await crossEntropy(z, y).item()));
  z.dispose();
  y.dispose();
  w.dispose();
});
