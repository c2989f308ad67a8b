import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { MulticlassAccuracy } from "../../src/metrics/accuracy.ts";
import { ConfusionMatrix } from "../../src/metrics/confusion.ts";

interface MetricCase {
  c: number;
  k: number;
  batches: { logits: number[][]; targets: number[] }[];
  micro: number;
  macro: number;
  none: number[];
  confusion: number[][];
}

const G = golden<{ metrics: MetricCase[] }>("model");

function feed(metrics: { update(z: Tensor, y: Tensor): void }[], k: MetricCase): void {
  for (const b of k.batches) {
    scope(() => {
      const z = Tensor.fromArray(b.logits.flat(), [b.targets.length, k.c]);
      const y = Tensor.fromArray(b.targets, [b.targets.length], { dtype: "i32" });
      for (const m of metrics) m.update(z, y);
    });
  }
}

for (const k of G.metrics) {
  Deno.test(`MulticlassAccuracy top-${k.k}: micro, macro, none (absent class, ties)`, async () => {
    const micro = new MulticlassAccuracy({ numClasses: k.c, topK: k.k, average: "micro" });
    const macro = new MulticlassAccuracy({ numClasses: k.c, topK: k.k, average: "macro" });
    const none = new MulticlassAccuracy({ numClasses: k.c, topK: k.k, average: "none" });
    feed([micro, macro, none], k);
    assertClose([(await micro.compute()) as number], [k.micro], { msg: "micro" });
    assertClose([(await macro.compute()) as number], [k.macro], { msg: "macro" });
    const per = (await none.compute()) as Float32Array;
    assert.ok(per instanceof Float32Array);
    assertClose(per, k.none, { msg: "none" });
    assert.equal(per[k.c - 1], 0, "a class without targets gets 0");
    // Global, not a mean of batches: feeding twice leaves the values unchanged; reset clears.
    feed([micro], k);
    assertClose([(await micro.compute()) as number], [k.micro], { msg: "micro twice" });
    micro.reset();
    assert.equal(await micro.compute(), 0);
    for (const m of [micro, macro, none]) m.dispose();
  });
}

Deno.test("ConfusionMatrix: rows = target, cols = argmax (first maximum on ties)", async () => {
  const k = G.metrics[0];
  const cm = new ConfusionMatrix({ numClasses: k.c });
  feed([cm], k);
  assert.deepEqual(await cm.compute(), k.confusion);
  cm.reset();
  assert.deepEqual((await cm.compute()).flat(), new Array(k.c * k.c).fill(0));
  cm.dispose();
});

Deno.test("MulticlassAccuracy: k = 1 equals argmax on ties; out-of-range targets skipped", async () => {
  const acc = new MulticlassAccuracy({ numClasses: 3, average: "none" });
  scope(() => {
    const z = Tensor.fromArray([1, 1, 1, 0, 5, 5, 2, 2, 0], [3, 3]);
    const y = Tensor.fromArray([0, 2, -100], [3], { dtype: "i32" });
    acc.update(z, y);
  });
  assert.deepEqual(Array.from((await acc.compute()) as Float32Array), [1, 0, 0]);
  assert.throws(
    () => new MulticlassAccuracy({ numClasses: 3, topK: 5 }),
    /topK must be in \[1, 3\], got 5/,
  );
  acc.dispose();
});

Deno.test("MulticlassAccuracy: updates allocate nothing that outlives the step", () => {
  const acc = new MulticlassAccuracy({ numClasses: 4, topK: 2 });
  const step = () =>
    scope(() => {
      const z = Tensor.fromArray(new Float32Array(8).map((_, i) => (i * 7) % 5), [2, 4]);
      acc.update(z, Tensor.fromArray([1, 3], [2], { dtype: "i32" }));
    });
  step();
  const before = memoryStats().liveBuffers;
  for (let i = 0; i < 5; i++) step();
  assert.equal(memoryStats().liveBuffers, before);
  acc.dispose();
});
