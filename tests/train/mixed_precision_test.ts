/**
 * `trainer.precision: "16-mixed"` on a tiny ResNet (tests/train/tiny_resnet.ts): the loss
 * curve stays within a stated tolerance of the f32 run; an overflowing step is skipped,
 * counted and logged, the scale halves and the weights stay; a NaN loss still stops the run;
 * resume is bit-identical (the scaler's state is in the checkpoint); live tensors stay flat;
 * an adapter without shader-f16 gets a one-line error naming the field.
 */
import assert from "node:assert/strict";
import "../helpers.ts";
import { TinyResNet } from "./tiny_resnet.ts";
import { captureOut, tinyYaml } from "./fixtures.ts";
import { gpu } from "../../src/gpu/device.ts";
import { memoryStats, type Tensor } from "../../src/gpu/tensor.ts";
import * as ops from "../../src/autograd/ops.ts";
import { resolveConfig, type TrainConfig } from "../../src/train/config.ts";
import { ClassificationDataModule } from "../../src/data/data_module.ts";
import { modelOptions } from "../../src/cli/common.ts";
import { NonFiniteLossError, Trainer, type TrainerOptions } from "../../src/train/trainer.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import type { MetricRecord } from "../../src/train/loggers.ts";

/** Largest |Δ| allowed between the f32 and 16-mixed epoch losses (train and val). */
const EPOCH_LOSS_TOL = 0.02;
/** Largest |Δ| allowed between their step losses in the first epoch. */
const FIRST_EPOCH_STEP_TOL = 0.005;

function config(root: string, overrides: string[]): TrainConfig {
  return resolveConfig(tinyYaml(root).replace("tiny_mlp", "tiny_resnet"), "tiny.yaml", {
    overrides: ["trainer.progress=none", "trainer.test=false", ...overrides],
  });
}

interface Fit {
  records: MetricRecord[];
  weights: Float32Array[];
  trainer: Trainer;
}

/** Fits the tiny ResNet under `overrides`; returns the records and final parameters. */
async function fit(root: string, overrides: string[], opts: TrainerOptions = {}): Promise<Fit> {
  const cfg = config(root, overrides);
  const data = new ClassificationDataModule(cfg.data, { seed: cfg.seed });
  await data.setup();
  const model = new TinyResNet({
    ...modelOptions(cfg, data.numClasses),
    inChannels: cfg.data.channels,
  });
  const trainer = new Trainer(cfg, { out: captureOut(), ...opts });
  try {
    await trainer.fit(model, data);
    return {
      records: trainer.files!.records,
      weights: await Promise.all(
        model.parameters().map((p) => p.toArray() as Promise<Float32Array>),
      ),
      trainer,
    };
  } finally {
    trainer.close();
    model.dispose();
    data.dispose();
  }
}

const series = (r: MetricRecord[], key: string): number[] =>
  r.filter((x) => key in x.metrics).map((x) => x.metrics[key]);

/** Multiplies the loss of batch `i` of epoch 0 by 10⁶: its scaled gradients overflow f16. */
const overflowAt = (at: number) => (loss: Tensor, epoch: number, i: number): Tensor =>
  epoch === 0 && i === at ? ops.mulScalar(loss, 1e6) : loss;

Deno.test("16-mixed: the loss curve of 3 epochs stays within tolerance of f32", async () => {
  const root = Deno.makeTempDirSync();
  const common = ["trainer.maxEpochs=3", "trainer.logEveryNSteps=1"];
  const f32 = await fit(root, [...common, "logging.version=f32"]);
  const live = new Set<string>();
  const mixed = await fit(
    root,
    [...common, "logging.version=mixed", "trainer.precision=16-mixed"],
    {
      // Live tensors and buffers at the same point of every step (after the forward) stay flat.
      lossHook: (loss, epoch, i) => {
        const m = memoryStats();
        if (epoch > 0 || i > 0) live.add(`${m.liveTensors} tensors, ${m.liveBuffers} buffers`);
        return loss;
      },
    },
  );
  assert.equal(live.size, 1, `live tensors at each step: ${[...live]}`);
  const steps = (f: Fit) => series(f.records, "train/loss_step");
  const worst = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  assert.equal(steps(mixed).length, 48);
  const first = worst(steps(mixed).slice(0, 16), steps(f32).slice(0, 16));
  assert.ok(first <= FIRST_EPOCH_STEP_TOL, `first-epoch step losses differ by ${first}`);
  for (const key of ["train/loss_epoch", "val/loss"]) {
    const a = series(mixed.records, key);
    const b = series(f32.records, key);
    assert.equal(a.length, 3);
    const d = worst(a, b);
    assert.ok(d <= EPOCH_LOSS_TOL, `${key} differs by ${d}: ${a} vs ${b}`);
  }
  // It learns: the last epoch's loss is well below the first's.
  const epochs = series(mixed.records, "train/loss_epoch");
  assert.ok(epochs[2] < epochs[0] - 0.1, `${epochs}`);
  // f16 rounding changed something: the runs are not secretly both f32.
  assert.notDeepEqual(mixed.weights, f32.weights);
  assert.deepEqual(series(mixed.records, "train/amp_skipped_steps").at(-1), 0);
  assert.deepEqual(series(mixed.records, "train/amp_scale").at(-1), 65536);
  assert.deepEqual(series(f32.records, "train/amp_scale"), []);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("16-mixed: an overflowing step is skipped, counted, the scale halves, weights stay", async () => {
  const root = Deno.makeTempDirSync();
  const base = ["trainer.maxEpochs=1", "trainer.logEveryNSteps=1", "trainer.precision=16-mixed"];
  // One step, which overflows: the weights after fit are the initial ones.
  const none = await fit(root, [...base, "trainer.limitTrainBatches=1", "logging.version=a"], {
    lossHook: overflowAt(-1),
  });
  const one = await fit(root, [...base, "trainer.limitTrainBatches=1", "logging.version=b"], {
    lossHook: overflowAt(0),
  });
  const init = await (async () => {
    const cfg = config(root, base);
    const m = new TinyResNet({ ...modelOptions(cfg, 2), inChannels: 3 });
    const w = await Promise.all(m.parameters().map((p) => p.toArray()));
    m.dispose();
    return w;
  })();
  assert.deepEqual(one.weights, init, "the skipped step left every weight as it was");
  assert.notDeepEqual(none.weights, init, "without overflow the step changes the weights");
  const step = one.records.find((r) => "train/loss_step" in r.metrics)!.metrics;
  assert.ok(Number.isFinite(step["train/loss_step"]), "the loss itself was finite");
  assert.equal(step["train/amp_skipped_steps"], 1);
  assert.equal(step["train/amp_scale"], 32768);
  // A later clean step is taken at the halved scale.
  const later = await fit(root, [...base, "trainer.limitTrainBatches=3", "logging.version=c"], {
    lossHook: overflowAt(1),
  });
  const stepRecords = later.records.filter((r) => "train/loss_step" in r.metrics);
  assert.deepEqual(series(stepRecords, "train/amp_skipped_steps"), [0, 1, 1]);
  assert.deepEqual(series(stepRecords, "train/amp_scale"), [65536, 32768, 32768]);
  // The epoch record carries them too.
  assert.equal(series(later.records, "train/amp_skipped_steps").length, 4);
  // A NaN loss is not an overflow: the guard still stops the run.
  await assert.rejects(
    () =>
      fit(root, [...base, "trainer.limitTrainBatches=3", "logging.version=d"], {
        lossHook: (loss, _e, i) => (i === 1 ? ops.mulScalar(loss, NaN) : loss),
      }),
    (e: Error) => e instanceof NonFiniteLossError && /loss became NaN/.test(e.message),
  );
  Deno.removeSync(root, { recursive: true });
});

Deno.test("16-mixed: resume is bit-identical to a straight run (scaler state included)", async () => {
  const root = Deno.makeTempDirSync();
  const base = ["trainer.maxEpochs=2", "trainer.limitTrainBatches=4", "trainer.precision=16-mixed"];
  const straight = await fit(root, [...base, "logging.version=straight"], {
    lossHook: overflowAt(2),
  });
  await assert.rejects(
    () =>
      fit(root, [...base, "logging.version=cut"], {
        lossHook: (loss, epoch, i) => {
          if (epoch === 1) throw new Error("simulated interruption");
          return overflowAt(2)(loss, epoch, i);
        },
      }),
    /simulated interruption/,
  );
  const last = `${root}/tiny/cut/checkpoints/last.json`;
  const ck = await loadCheckpoint(last, { optimizer: false });
  assert.deepEqual(ck.state.ampScaler, { scale: 32768, growthTracker: 1, skippedSteps: 1 });
  ck.dispose();
  const resumed = await fit(root, [...base, "logging.version=resumed", `resume=${last}`]);
  assert.equal(resumed.weights.length, straight.weights.length);
  straight.weights.forEach((w, i) => assert.deepEqual(resumed.weights[i], w, `parameter ${i}`));
  const end = (f: Fit) => series(f.records, "train/amp_scale").at(-1);
  assert.equal(end(resumed), end(straight));
  assert.deepEqual(
    series(resumed.records, "train/amp_skipped_steps").at(-1),
    series(straight.records, "train/amp_skipped_steps").at(-1),
  );
  Deno.removeSync(root, { recursive: true });
});

Deno.test("16-mixed on an adapter without shader-f16: a one-line error naming the field", async () => {
  const features = gpu().adapter.features;
  const root = Deno.makeTempDirSync();
  gpu().adapter.features = features.filter((f) => f !== "shader-f16");
  try {
    await assert.rejects(
      () => fit(root, ["trainer.precision=16-mixed"]),
      (e: Error) => {
        assert.match(
          e.message,
          /^trainer\.precision: expected "32" on this adapter \(.+ lacks the feature shader-f16 that "16-mixed" needs\), got "16-mixed"$/,
        );
        return true;
      },
    );
  } finally {
    gpu().adapter.features = features;
  }
  assert.deepEqual([...Deno.readDirSync(root)], [], "no run folder was created");
  Deno.removeSync(root, { recursive: true });
});
