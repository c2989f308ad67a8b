import assert from "node:assert/strict";
import { rand } from "../helpers.ts";
import { memoryStats, Tensor } from "../../src/gpu/tensor.ts";
import * as ops from "../../src/autograd/ops.ts";
import {
  clipGradNorm,
  clipGradValue,
  limitBatches,
  NonFiniteLossError,
  Trainer,
} from "../../src/train/trainer.ts";
import { loadCheckpoint, writeCheckpoint } from "../../src/train/checkpoint.ts";
import { parseCsv, parseJsonl } from "../../src/train/loggers.ts";
import { readEventFile } from "../../src/train/tensorboard.ts";
import { build, captureOut, tinyConfig, withTinyRun } from "./fixtures.ts";
import { BUILTIN_CLASSES } from "../../src/data/builtin.ts";

async function weightsOf(dict: Map<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of dict) out[k] = Array.from(await t.toArray());
  return out;
}

Deno.test("clipGradNorm: PyTorch's clip_grad_norm_ (coef = max/(norm+1e-6), capped at 1)", async () => {
  const g1 = rand(6, 1);
  const g2 = rand(4, 2);
  const p1 = Tensor.fromArray(new Float32Array(6), [2, 3], { requiresGrad: true });
  const p2 = Tensor.fromArray(new Float32Array(4), [4], { requiresGrad: true });
  p1.grad = Tensor.fromArray(g1, [2, 3]);
  p2.grad = Tensor.fromArray(g2, [4]);
  const norm = Math.hypot(...g1, ...g2);
  clipGradNorm([p1, p2], 0.5);
  const coef = 0.5 / (norm + 1e-6);
  const got = [...(await p1.grad.toArray()), ...(await p2.grad.toArray())];
  const want = [...g1, ...g2].map((v) => v * coef);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
  clipGradNorm([p1, p2], 100); // below the threshold: unchanged (coef capped at 1)
  const again = [...(await p1.grad.toArray()), ...(await p2.grad.toArray())];
  again.forEach((v, i) => assert.ok(Math.abs(v - got[i]) < 1e-7));
  clipGradValue([p1], 0.01);
  for (const v of await p1.grad.toArray()) assert.ok(Math.abs(v) <= 0.01 + 1e-9);
  p1.dispose();
  p2.dispose();
});

Deno.test("limitBatches: null, counts and fractions", () => {
  assert.equal(limitBatches(10, null), 10);
  assert.equal(limitBatches(10, 3), 3);
  assert.equal(limitBatches(10, 30), 10);
  assert.equal(limitBatches(10, 0.25), 2);
  assert.equal(limitBatches(10, 0.01), 1);
});

Deno.test("fit: run folder files, metric names, LR per epoch, best checkpoint tested", async () => {
  const root = Deno.makeTempDirSync();
  const cfg = tinyConfig(root);
  const { model, data } = await build(cfg);
  const out = captureOut();
  const tr = new Trainer(cfg, { out });
  const live0 = memoryStats().liveBuffers;
  const r = await tr.fit(model, data);
  const test = await tr.test(model, data);
  tr.writeReport(test, { label: "test (best checkpoint)", facts: { model: "tiny_mlp" } });
  tr.close();
  assert.equal(r.runDir, `${root}/tiny/version_0`);
  assert.equal(r.epochs, 2);
  assert.equal(r.globalStep, 2 * 16);
  // Warmup 1 epoch from 0.1·lr, then cosine over 1 epoch.
  assert.deepEqual(r.lrs, [0.001, 0.01]);
  const files = [...Deno.readDirSync(r.runDir)].map((e) => e.name).sort();
  assert.deepEqual(files.filter((f) => !f.startsWith("events.")), [
    "checkpoints",
    "config.yaml",
    "metrics.csv",
    "metrics.jsonl",
    "report.html",
  ]);
  assert.equal(files.filter((f) => f.startsWith("events.out.tfevents.")).length, 1);
  const csv = parseCsv(Deno.readTextFileSync(`${r.runDir}/metrics.csv`));
  const header = Deno.readTextFileSync(`${r.runDir}/metrics.csv`).split("\n")[0].split(",");
  assert.deepEqual(header, [
    "epoch",
    "lr-AdamW",
    "step",
    "test/acc_class_0",
    "test/acc_class_1",
    "test/acc_top1",
    "test/acc_top5",
    "test/loss",
    "train/acc_top1",
    "train/loss_epoch",
    "train/loss_step",
    "val/acc_class_0",
    "val/acc_class_1",
    "val/acc_top1",
    "val/acc_top5",
    "val/loss",
  ]);
  // logEveryNSteps 4: 4 step rows per epoch, one epoch row, one test row.
  assert.equal(csv.length, 2 * 4 + 2 + 1);
  assert.deepEqual(csv.filter((x) => "train/loss_step" in x.metrics).map((x) => x.step), [
    4,
    8,
    12,
    16,
    20,
    24,
    28,
    32,
  ]);
  const epochRows = csv.filter((x) => "val/acc_top1" in x.metrics);
  assert.deepEqual(epochRows.map((x) => [x.epoch, x.step, x.metrics["lr-AdamW"]]), [
    [0, 16, 0.001],
    [1, 32, 0.01],
  ]);
  const jsonl = parseJsonl(Deno.readTextFileSync(`${r.runDir}/metrics.jsonl`));
  assert.deepEqual(
    jsonl,
    csv.map((x) => ({ ...x, metrics: Object.fromEntries(Object.entries(x.metrics)) })),
  );
  const events = readEventFile(`${r.runDir}/${files.find((f) => f.startsWith("events."))}`);
  assert.equal(events[0].fileVersion, "brain.Event:2");
  assert.equal(events.filter((e) => "val/acc_top1" in e.scalars).length, 2);
  // Learned something: validation accuracy beats chance (2 classes).
  const best = Math.max(...epochRows.map((x) => x.metrics["val/acc_top1"]));
  assert.equal(r.bestScore, best);
  assert.ok(best > 0.6, `val/acc_top1 ${best} should beat chance (0.5)`);
  assert.equal(test.checkpoint, `${r.runDir}/checkpoints/best.json`);
  assert.ok(test.confusion && test.confusion.flat().reduce((a, b) => a + b) === 128);
  const ck = await loadCheckpoint(`${r.runDir}/checkpoints/best.json`);
  assert.deepEqual(ck.state.classNames, BUILTIN_CLASSES.slice(0, 2));
  assert.equal((ck.state.hparams as { name: string }).name, "tiny_mlp");
  assert.equal(ck.state.rng.seed, 3);
  ck.dispose();
  assert.match(out.text, /^train epoch 1\/2 step 4\/16 loss \d\.\d{4} [\d.]+ img\/s ETA \d+s$/m);
  assert.match(out.text, /^epoch 2\/2 train\/loss_epoch /m);
  assert.match(Deno.readTextFileSync(`${r.runDir}/config.yaml`), /name: tiny_mlp/);
  model.dispose();
  data.dispose();
  assert.ok(memoryStats().liveBuffers <= live0 + 2, "no GPU memory leaked by fit/test");
  Deno.removeSync(root, { recursive: true });
});

Deno.test("resume: 1 epoch + resume 1 epoch equals 2 epochs straight (weights and LR)", async () => {
  const root = Deno.makeTempDirSync();
  const straight = tinyConfig(root, ["trainer.progress=none", "logging.version=straight"]);
  const a = await build(straight);
  const ra = await new Trainer(straight).fit(a.model, a.data);
  const wa = await weightsOf(a.model.stateDict());

  const cut = tinyConfig(root, ["trainer.progress=none", "logging.version=cut"]);
  const b = await build(cut);
  const interrupted = new Trainer(cut, {
    lossHook: (loss, epoch) => {
      if (epoch === 1) throw new Error("simulated interruption");
      return loss;
    },
  });
  await assert.rejects(() => interrupted.fit(b.model, b.data), /simulated interruption/);
  b.model.dispose();

  const resumed = tinyConfig(root, [
    "trainer.progress=none",
    "logging.version=resumed",
    `resume=${root}/tiny/cut/checkpoints/last.json`,
  ]);
  const c = await build(resumed);
  const rc = await new Trainer(resumed).fit(c.model, c.data);
  const wc = await weightsOf(c.model.stateDict());
  assert.deepEqual(rc.lrs, ra.lrs.slice(1), "the resumed epoch uses the second LR");
  assert.equal(rc.globalStep, ra.globalStep);
  assert.deepEqual(Object.keys(wc), Object.keys(wa));
  for (const k of Object.keys(wa)) assert.deepEqual(wc[k], wa[k], `${k} identical after resume`);
  // The resumed run carries epoch 0's metrics forward.
  const recs = parseJsonl(Deno.readTextFileSync(`${root}/tiny/resumed/metrics.jsonl`));
  assert.deepEqual([...new Set(recs.map((x) => x.epoch))], [0, 1]);
  for (const m of [a, c]) {
    m.model.dispose();
    m.data.dispose();
  }
  b.data.dispose();
  Deno.removeSync(root, { recursive: true });
});

Deno.test("checkpoint: a crash during a write leaves the previous checkpoint loadable", async () => {
  const dir = Deno.makeTempDirSync();
  const w = Tensor.fromArray([1, 2, 3], [3]);
  const m = Tensor.fromArray([0.5, 0.5, 0.5], [3]);
  const state = (epoch: number) => ({
    epoch,
    globalStep: 10 * (epoch + 1),
    scheduler: { lastEpoch: epoch },
    rng: { seed: 1, nextEpoch: epoch + 1 },
    hparams: { name: "x" },
    classNames: ["a", "b"],
    config: {},
    callbacks: {},
    metrics: { "val/acc_top1": 0.5 },
  });
  await writeCheckpoint(`${dir}/last`, {
    stateDict: new Map([["w", w]]),
    optimizer: { step: 1, state: [{ expAvg: m }] },
    state: state(0),
  });
  const w2 = Tensor.fromArray([7, 8, 9], [3]);
  for (const failAt of [0, 1, 2]) {
    let n = 0;
    await assert.rejects(
      () =>
        writeCheckpoint(`${dir}/last`, {
          stateDict: new Map([["w", w2]]),
          optimizer: { step: 2, state: [{ expAvg: w2 }] },
          state: state(1),
        }, {
          atomic: {
            beforeRename: () => {
              if (n++ === failAt) throw new Error("simulated crash");
            },
          },
        }),
      /simulated crash/,
    );
    const ck = await loadCheckpoint(`${dir}/last.json`);
    assert.equal(ck.state.epoch, 0, `crash at write ${failAt}: still epoch 0`);
    assert.deepEqual(Array.from(await ck.weights.get("w")!.toArray()), [1, 2, 3]);
    const opt = ck.optimizer as { step: number; state: { expAvg: Tensor }[] };
    assert.equal(opt.step, 1);
    assert.deepEqual(Array.from(await opt.state[0].expAvg.toArray()), [0.5, 0.5, 0.5]);
    ck.dispose();
  }
  // The next successful write commits and removes the orphans.
  await writeCheckpoint(`${dir}/last`, {
    stateDict: new Map([["w", w2]]),
    optimizer: { step: 2, state: [{ expAvg: w2 }] },
    state: state(1),
  });
  const ck = await loadCheckpoint(dir);
  assert.equal(ck.state.epoch, 1);
  assert.deepEqual(Array.from(await ck.weights.get("w")!.toArray()), [7, 8, 9]);
  ck.dispose();
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "last-epoch=1-step=20.optim.safetensors",
    "last-epoch=1-step=20.safetensors",
    "last.json",
  ]);
  for (const t of [w, m, w2]) t.dispose();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("fit: a crash while writing a checkpoint leaves the previous one loadable", () =>
  withTinyRun(
    ["trainer.progress=none", "checkpoint.saveBest=false"],
    async ({ cfg, model, data }) => {
      let writes = 0;
      const tr = new Trainer(cfg, {
        checkpointWrite: {
          atomic: {
            beforeRename: () => {
              if (++writes > 3) throw new Error("simulated crash");
            },
          },
        },
      });
      await assert.rejects(() => tr.fit(model, data), /simulated crash/);
      const ck = await loadCheckpoint(`${tr.runDir}/checkpoints/last.json`);
      assert.equal(ck.state.epoch, 0);
      assert.equal(ck.weights.size, model.stateDict().size);
      ck.dispose();
    },
  ));

Deno.test("fit: a NaN loss stops the run with a clear message; best stays intact", () =>
  withTinyRun(["trainer.progress=none", "trainer.maxEpochs=3"], async ({ cfg, model, data }) => {
    const tr = new Trainer(cfg, {
      lossHook: (loss, epoch, i) => (epoch === 1 && i === 5 ? ops.mulScalar(loss, NaN) : loss),
    });
    await assert.rejects(
      () => tr.fit(model, data),
      (e: Error) => {
        assert.ok(e instanceof NonFiniteLossError);
        assert.equal(
          e.message,
          `training loss became NaN in epoch 1 by batch 8 (global step 24); stopping: the best checkpoint ${tr.runDir}/checkpoints/best.json is intact. Try a lower optimizer.learningRate or trainer.gradientClipVal`,
        );
        return true;
      },
    );
    const ck = await loadCheckpoint(`${tr.runDir}/checkpoints/best.json`);
    assert.equal(ck.state.epoch, 0);
    for (const t of ck.weights.values()) {
      assert.ok((await t.toArray()).every(Number.isFinite), "best weights are finite");
    }
    ck.dispose();
  }));

Deno.test("fit: gradient accumulation, clipping, limits and early stopping", () =>
  withTinyRun([
    "trainer.progress=none",
    "trainer.maxEpochs=6",
    "trainer.accumulateGradBatches=2",
    "trainer.gradientClipVal=0.5",
    "trainer.limitTrainBatches=0.5",
    "trainer.limitValBatches=1",
    "trainer.logEveryNSteps=1",
    "earlyStopping.monitor=val/loss",
    "earlyStopping.mode=min",
    "earlyStopping.patience=1",
    "earlyStopping.minDelta=10",
  ], async ({ cfg, model, data }) => {
    const tr = new Trainer(cfg);
    const r = await tr.fit(model, data);
    tr.close();
    // minDelta 10 never counts as improvement after the first: stops after 2 validations.
    assert.equal(r.stopReason, "earlyStopping");
    assert.equal(r.epochs, 2);
    // 8 of 16 batches, one optimizer step per 2 batches: 4 steps per epoch.
    assert.equal(r.globalStep, 8);
    const ck = await loadCheckpoint(`${tr.runDir}/checkpoints/last.json`);
    assert.deepEqual(ck.state.callbacks.esWait, 1);
    ck.dispose();
  }));

Deno.test("fit: fastDevRun runs n batches of one epoch, writes no checkpoint", () =>
  withTinyRun(["trainer.progress=none", "trainer.fastDevRun=2"], async ({ cfg, model, data }) => {
    const tr = new Trainer(cfg);
    const r = await tr.fit(model, data);
    const test = await tr.test(model, data);
    tr.close();
    assert.equal(r.epochs, 1);
    assert.equal(r.globalStep, 2);
    assert.equal(r.bestPath, null);
    assert.equal(test.checkpoint, null);
    assert.equal(test.images, 2 * 32);
    assert.throws(() => Deno.statSync(`${tr.runDir}/checkpoints`), Deno.errors.NotFound);
  }));
