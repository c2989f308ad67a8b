import assert from "node:assert/strict";
import { assertClose, golden, rand } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/autograd/ops.ts";
import { Module } from "../../src/nn/module.ts";
import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "../../src/models/base_classification_model.ts";
import {
  createModel,
  getModel,
  listModels,
  register,
  unregister,
} from "../../src/models/registry.ts";
import type { LogOptions, LogSink } from "../../src/models/types.ts";
import { hparamsOf } from "../../src/models/hparams.ts";
import { DEFAULT_TRAIN_CONFIG } from "../../src/train/config.ts";

/** A linear "backbone" on flattened images: logits = x·Wᵀ + b. */
class TinyLinear extends Module {
  constructor(inFeatures: number, outFeatures: number, seed = 1) {
    super();
    const r = rand(outFeatures * inFeatures + outFeatures, seed);
    this.registerParameter(
      "weight",
      Tensor.fromArray(r.subarray(0, outFeatures * inFeatures).map((v) => v * 0.3), [
        outFeatures,
        inFeatures,
      ]),
    );
    this.registerParameter(
      "bias",
      Tensor.fromArray(r.subarray(outFeatures * inFeatures), [outFeatures]),
    );
  }
  forward(x: Tensor): Tensor {
    const [w, b] = this.parameters();
    const flat = ops.reshape(x, [x.shape[0], -1]);
    return ops.add(ops.matmul(flat, w, { transB: true }), b);
  }
}

interface TinyOptions extends BaseClassificationModelOptions {
  inFeatures?: number;
}

@register("tiny_test")
class TinyModel extends BaseClassificationModel {
  constructor(opts: TinyOptions) {
    super("tiny_test", opts, { inFeatures: opts.inFeatures ?? 4 });
    this.setBackbone(new TinyLinear(opts.inFeatures ?? 4, opts.numClasses));
  }
}

class RecordingSink implements LogSink {
  entries: { name: string; value: number | Tensor; options: LogOptions }[] = [];
  values = new Map<string, number>();
  log(name: string, value: Tensor | number, options: LogOptions = {}): void {
    this.entries.push({ name, value, options });
    if (typeof value === "number") this.values.set(name, value);
  }
  names(): string[] {
    return this.entries.map((e) => e.name);
  }
}

interface TinyCase {
  c: number;
  n: number;
  d: number;
  x: number[];
  w: number[][];
  b: number[];
  y: number[];
  classWeights: number[];
  loss: number;
  gradW: number[][];
  gradB: number[];
  wAfter: number[][];
  bAfter: number[];
  top1: number;
  topk: number;
  perClass: number[];
}

const G = golden<
  { tinyModel: TinyCase[]; lr: { maxEpochs: number; warmup: number; lrs: number[] }[] }
>(
  "model",
);

function batchOf(k: TinyCase): { images: Tensor; labels: Tensor } {
  return {
    images: Tensor.fromArray((k.x as unknown as number[][][][]).flat(3), [k.n, 1, 2, 2]),
    labels: Tensor.fromArray(k.y, [k.n], { dtype: "i32" }),
  };
}

/** Loads the case's class weights, W and b into `model`. */
function loadGoldenWeights(model: TinyModel, k: TinyCase): void {
  scope(() => {
    model.loadStateDict({
      "class_weights": Tensor.fromArray(k.classWeights, [k.c]),
      "model.weight": Tensor.fromArray(k.w.flat(), [k.c, k.d]),
      "model.bias": Tensor.fromArray(k.b, [k.c]),
    });
  });
}

for (const k of G.tinyModel) {
  Deno.test(`BaseClassificationModel (${k.c} classes): training + validation step match PyTorch`, async () => {
    const model = new TinyModel({ numClasses: k.c, weightDecay: 1e-4, learningRate: 1e-2 });
    assert.equal(model.topK, Math.min(5, k.c));
    assert.deepEqual([...model.stateDict().keys()], [
      "class_weights",
      "model.weight",
      "model.bias",
    ]);
    model.setClassWeights(k.classWeights);
    loadGoldenWeights(model, k);
    const sink = new RecordingSink();
    model.setLogger(sink);
    const { optimizer, scheduler } = model.configureOptimizers(10);
    // Epoch 0 of the warm-up: lr·startFactor. Use the golden's lr for the AdamW check.
    assertClose([optimizer.lr], [1e-2 * 1e-3], { rtol: 1e-12 });
    optimizer.lr = 1e-2;
    model.train();
    await scope(async () => {
      const batch = batchOf(k);
      const loss = model.trainingStep(batch, 0);
      assert.deepEqual(loss.shape, []);
      assertClose([await loss.item()], [k.loss], { msg: "loss" });
      const logged = sink.entries.find((e) => e.name === "train/loss")!;
      assert.equal(logged.value, loss);
      assert.deepEqual(logged.options, {
        onStep: true,
        onEpoch: true,
        progBar: true,
        batchSize: k.n,
      });
      backward(loss);
      const [w, b] = model.parameters();
      assertClose(await w.grad!.toArray(), k.gradW, { rtol: 1e-4, atol: 1e-7, msg: "grad W" });
      assertClose(await b.grad!.toArray(), k.gradB, { rtol: 1e-4, atol: 1e-7, msg: "grad b" });
      optimizer.step();
      optimizer.zeroGrad();
      assertClose(await w.toArray(), k.wAfter, { rtol: 1e-5, atol: 1e-6, msg: "W after AdamW" });
      assertClose(await b.toArray(), k.bAfter, { rtol: 1e-5, atol: 1e-6, msg: "b after AdamW" });
    });
    await model.onTrainEpochEnd();
    assert.equal(sink.values.get("train/acc_top1"), k.top1);
    scheduler.step();

    // Validation on the same batch with the original weights: the metrics of the golden logits.
    loadGoldenWeights(model, k);
    model.eval();
    await scope(async () => {
      const batch = batchOf(k);
      model.validationStep(batch, 0);
      const vl = sink.entries.find((e) => e.name === "val/loss")!;
      assert.deepEqual(vl.options, { onStep: false, onEpoch: true, batchSize: k.n });
      assertClose([await (vl.value as Tensor).item()], [k.loss], { msg: "val loss" });
      assert.equal((vl.value as Tensor).requiresGrad, false, "validation records no tape");
    });
    const conf = await model.onValidationEpochEnd();
    assertClose([sink.values.get("val/acc_top1")!], [k.top1]);
    assertClose([sink.values.get("val/acc_top5")!], [k.topk]);
    const per = Array.from({ length: k.c }, (_, i) => sink.values.get(`val/acc_class_${i}`)!);
    assertClose(per, k.perClass);
    assert.equal(sink.entries.find((e) => e.name === "val/acc_top1")!.options.progBar, true);
    if (k.c === 3) {
      assert.equal(sink.values.get("val/acc_top5"), 1, "top-k with k = 3 of 3 classes");
    }
    assert.equal(conf.flat().reduce((a, v) => a + v, 0), k.n);
    assertClose([conf.reduce((a, row, i) => a + row[i], 0) / k.n], [k.top1]);
    // Metrics were reset: a second epoch end without steps logs zeros.
    await model.onValidationEpochEnd();
    assert.equal(sink.values.get("val/acc_top1"), 0);

    // Test stage logs the test/ names.
    scope(() => model.testStep(batchOf(k), 0));
    await model.onTestEpochEnd();
    const testNames = sink.names().filter((n) => n.startsWith("test/"));
    assert.deepEqual(testNames, [
      "test/loss",
      "test/acc_top1",
      "test/acc_top5",
      ...Array.from({ length: k.c }, (_, i) => `test/acc_class_${i}`),
    ]);
    optimizer.dispose();
    model.dispose();
  });
}

Deno.test("configureOptimizers: the per-epoch lr of PyTorch's schedule; warmupEpochs 0 = cosine only", () => {
  for (const t of G.lr) {
    const model = new TinyModel({ numClasses: 3, warmupEpochs: t.warmup });
    const { optimizer, scheduler } = model.configureOptimizers(t.maxEpochs);
    assert.equal(optimizer.weightDecay, 1e-4);
    const lrs = [optimizer.lr];
    for (let e = 0; e < t.maxEpochs; e++) {
      scheduler.step();
      lrs.push(optimizer.lr);
    }
    assertClose(lrs, t.lrs, { rtol: 1e-12, atol: 0, msg: `${t.maxEpochs}/${t.warmup}` });
    optimizer.dispose();
    model.dispose();
  }
  const model = new TinyModel({ numClasses: 3, warmupEpochs: 0 });
  const { optimizer, scheduler } = model.configureOptimizers(4);
  const lrs = [optimizer.lr];
  for (let e = 0; e < 4; e++) {
    scheduler.step();
    lrs.push(optimizer.lr);
  }
  const cos = (e: number) => 5e-6 + (1e-4 - 5e-6) * (1 + Math.cos(Math.PI * e / 4)) / 2;
  assertClose(lrs, [0, 1, 2, 3, 4].map(cos), { rtol: 1e-12, atol: 0 });
  optimizer.dispose();
  model.dispose();
});

Deno.test("hparams are plain JSON with defaults; setClassWeights validates", async () => {
  const model = new TinyModel({ numClasses: 4 });
  assert.deepEqual(JSON.parse(JSON.stringify(model.hparams)), {
    inFeatures: 4,
    name: "tiny_test",
    numClasses: 4,
    learningRate: 1e-4,
    weightDecay: 1e-4,
    warmupEpochs: 5,
    labelSmoothing: 0.1,
    warmupStartFactor: 1e-3,
    cosineEtaMinFactor: 0.05,
  });
  // The same defaults as the training config: one declaration (models/hparams.ts).
  for (const [k, v] of Object.entries(hparamsOf(DEFAULT_TRAIN_CONFIG))) {
    assert.equal(model.hparams[k], v, k);
  }
  assert.deepEqual(Array.from(await model.classWeights.toArray()), [1, 1, 1, 1]);
  assert.throws(() => model.setClassWeights([1, 2, 3]), /expected 4 weights, got 3/);
  assert.throws(
    () => model.setClassWeights([1, NaN, 1, 1]),
    /weight 1 must be finite and >= 0, got NaN/,
  );
  assert.throws(() => model.setClassWeights([1, -1, 1, 1]), /weight 1 must be finite and >= 0/);
  model.setClassWeights([0.5, 1, 2, 4]);
  assert.deepEqual(Array.from(await model.classWeights.toArray()), [0.5, 1, 2, 4]);
  assert.equal(model.stateDict().get("class_weights"), model.classWeights);
  assert.throws(
    () => new TinyModel({ numClasses: 0 }),
    /numClasses must be an integer >= 1, got 0/,
  );
  model.dispose();
});

Deno.test("a tiny model trains: the loss falls; GPU memory stays flat across steps", async () => {
  const c = 3;
  const n = 12;
  const model = new TinyModel({
    numClasses: c,
    inFeatures: 4,
    learningRate: 5e-2,
    warmupEpochs: 0,
  });
  const sink = new RecordingSink();
  model.setLogger(sink);
  const { optimizer } = model.configureOptimizers(10);
  // Separable data: class = argmax of the first three pixels.
  const x = rand(n * 4, 9);
  const y = Int32Array.from({ length: n }, (_, i) => {
    const v = [x[i * 4], x[i * 4 + 1], x[i * 4 + 2]];
    return v.indexOf(Math.max(...v));
  });
  const images = Tensor.fromArray(x, [n, 1, 2, 2]);
  const labels = Tensor.fromArray(y, [n], { dtype: "i32" });
  const losses: number[] = [];
  let live = 0;
  for (let step = 0; step < 12; step++) {
    const loss = await scope(async () => {
      const l = model.trainingStep({ images, labels }, step);
      backward(l);
      optimizer.step();
      optimizer.zeroGrad();
      return step % 11 === 0 ? await l.item() : NaN;
    });
    if (step === 1) live = memoryStats().liveBuffers;
    if (step > 1) assert.equal(memoryStats().liveBuffers, live, `live buffers at step ${step}`);
    if (!Number.isNaN(loss)) losses.push(loss);
  }
  assert.ok(losses[1] < losses[0] * 0.8, `loss ${losses[0]} -> ${losses[1]}`);
  await model.onTrainEpochEnd();
  assert.ok(sink.values.get("train/acc_top1")! > 0.5);
  images.dispose();
  labels.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("registry: decorator and call forms, unknown names list the known ones, duplicates rejected", () => {
  assert.equal(getModel("tiny_test"), TinyModel);
  class Other extends TinyModel {}
  register("tiny_other", Other);
  try {
    assert.ok(listModels().includes("tiny_other"));
    const m = createModel("tiny_other", { numClasses: 2 });
    assert.ok(m instanceof Other);
    m.dispose();
    assert.throws(
      () => register("tiny_other", TinyModel),
      /model "tiny_other" is already registered/,
    );
    assert.throws(() => getModel("nope"), /unknown model "nope": expected one of .*"tiny_test"/);
  } finally {
    unregister("tiny_other");
  }
});
