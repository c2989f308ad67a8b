/**
 * Measured kernel choice in training runs (src/train/run_tuning.ts): a run with tuning on
 * records the table it used in `tuning.json` and caches it per adapter; a resumed run replays
 * the recorded table (here one that differs from the heuristics) and ends bit-identical to a
 * straight run with that table; a corrupt cache is ignored with a one-line warning; CT_TUNE=0
 * and `trainer.tune: false` keep the heuristics and write nothing. Tuning is off in tests
 * (tests/helpers.ts) unless a test turns it on, as these do around each run.
 */
import { host } from "../../src/platform/host.ts";
import assert from "node:assert/strict";
import { gpu } from "../../src/gpu/device.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  adapterIdentity,
  type ChoiceTable,
  parseTuneCache,
  serializeTuneCache,
  tuneFamilies,
  tuningEnabled,
} from "../../src/gpu/tune.ts";
import { MATMUL_CANDIDATES } from "../../src/kernels/tuning.ts";
import { matmulCandidateName, matmulPlan } from "../../src/kernels/matmul.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { loadTuneCache, RUN_CHOICES_FILE, tuneCacheFileName } from "../../src/train/tune_cache.ts";
import { captureOut, tinyConfig } from "./fixtures.ts";
import { warmupTuning } from "../../src/train/run_tuning.ts";
import { ClassificationDataModule } from "../../src/data/data_module.ts";
import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "../../src/models/base_classification_model.ts";
import { register } from "../../src/models/registry.ts";
import { modelOptions } from "../../src/cli/common.ts";
import type { TrainConfig } from "../../src/train/config.ts";
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Flatten,
  Linear,
  ReLU,
  Sequential,
} from "../../src/nn/layers.ts";

/** Conv 3→8 (3×3) + BatchNorm + ReLU + average pool + linear: every tuned family in a step. */
@register("tiny_cnn")
class TinyCnn extends BaseClassificationModel {
  constructor(opts: BaseClassificationModelOptions) {
    super("tiny_cnn", opts, {});
    this.setBackbone(
      new Sequential(
        new Conv2d(3, 8, { kernelSize: 3, padding: 1, bias: false, seed: 5 }),
        new BatchNorm2d(8),
        new ReLU(),
        new AdaptiveAvgPool2d(1),
        new Flatten(),
        new Linear(8, opts.numClasses, { seed: 6 }),
      ),
    );
  }
}

async function build(
  cfg: TrainConfig,
): Promise<{ model: TinyCnn; data: ClassificationDataModule }> {
  const data = new ClassificationDataModule(cfg.data, { seed: cfg.seed });
  await data.setup();
  return { model: new TinyCnn(modelOptions(cfg, data.numClasses)), data };
}

// Every bucket of these small runs is tuned, however loaded the machine (the default budget
// would leave some on the heuristics there, and the assertions below name them).
warmupTuning.budgetMs = Infinity;

const HEURISTIC_MATMUL = () => (gpu().adapter.isCpu ? "register" : "tiled");
/** The linear layer's forward product: batch 32, 2 classes, 8 features. */
const FC_KEY = "matmul/32x2x8x1";
/** The conv: N, C, H, W, O up to powers of two, then kernel, stride, padding, dilation. */
const CONV_KEY = "conv2d/32x4x8x8x8x3x3x1x1x1x1x1x1";

/**
 * Runs `fn` with CT_TUNE and XDG_CACHE_HOME as given. They are swapped in the platform seam
 * (`host.env`), not in `Deno.env`: `deno test --parallel` runs other test files in workers of
 * the same process, which share `Deno.env` (a CT_TUNE=1 there would make their runs tune, and
 * their tables would land in this test's cache), but each worker has its own `host`.
 */
async function withEnv<T>(
  env: { CT_TUNE: string; XDG_CACHE_HOME: string },
  fn: () => Promise<T>,
): Promise<T> {
  const real = host.env;
  host.env = (name) => name in env ? env[name as keyof typeof env] : real(name);
  try {
    return await fn();
  } finally {
    host.env = real;
  }
}

async function weightsOf(dict: Map<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of dict) out[k] = Array.from(await t.toArray());
  return out;
}

interface RunOutcome {
  runDir: string;
  text: string;
  weights: Record<string, number[]>;
  /** Per training batch: whether tuning was on and the fc1 matmul candidate `auto` gave. */
  seen: { tuning: boolean; fc1: string }[];
}

/** One tiny-MLP fit (`fail` throws in the loss hook of that epoch: an interruption). */
async function fit(root: string, overrides: string[], fail?: number): Promise<RunOutcome> {
  const cfg = tinyConfig(root, ["model.name=tiny_cnn", "trainer.progress=lines", ...overrides]);
  const { model, data } = await build(cfg);
  const out = captureOut();
  const seen: RunOutcome["seen"] = [];
  const trainer = new Trainer(cfg, {
    out,
    lossHook: (loss, epoch) => {
      if (epoch === fail) throw new Error("simulated interruption");
      seen.push({
        tuning: tuningEnabled(),
        fc1: matmulCandidateName(matmulPlan("auto", [32, 2, 8])),
      });
      return loss;
    },
  });
  try {
    if (fail === undefined) await trainer.fit(model, data);
    else await assert.rejects(() => trainer.fit(model, data), /simulated interruption/);
    return {
      runDir: trainer.runDir,
      text: out.text,
      weights: await weightsOf(model.stateDict()),
      seen,
    };
  } finally {
    trainer.close();
    model.dispose();
    data.dispose();
  }
}

function recorded(runDir: string): ChoiceTable | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${runDir}/${RUN_CHOICES_FILE}`);
  } catch {
    return null;
  }
  return parseTuneCache(text, adapterIdentity(gpu().adapter), (m) => assert.fail(m));
}

const SHORT = ["trainer.maxEpochs=1", "trainer.limitTrainBatches=3", "trainer.limitValBatches=1"];
/**
 * Four of the 16 training batches per epoch in the resume test's runs: every batch is a full
 * one (the same kernel buckets as whole epochs), and an epoch of several steps is cut and
 * resumed as before, with a quarter of the lavapipe steps.
 */
const FOUR = ["trainer.limitTrainBatches=4"];

Deno.test("tuning on: the run records the buckets it used in tuning.json and caches them", async () => {
  const root = Deno.makeTempDirSync();
  const cache = Deno.makeTempDirSync();
  try {
    const r = await withEnv({ CT_TUNE: "1", XDG_CACHE_HOME: cache }, () => fit(root, SHORT));
    assert.equal(tuningEnabled(), false, "close() turns tuning off again");
    const table = recorded(r.runDir);
    assert.ok(table, "tuning.json written");
    assert.ok(FC_KEY in table, Object.keys(table).join(", "));
    for (const [key, choice] of Object.entries(table)) {
      assert.ok(tuneFamilies().includes(key.split("/")[0]), key);
      assert.equal(typeof choice, "string");
    }
    assert.ok(MATMUL_CANDIDATES.includes(table[FC_KEY]));
    // Step 1 ran the heuristic; from step 2 on, the table's choice.
    assert.deepEqual(r.seen.map((s) => s.tuning), [true, true, true]);
    assert.equal(r.seen[0].fc1, HEURISTIC_MATMUL());
    assert.equal(r.seen[1].fc1, table[FC_KEY]);
    assert.match(r.text, /kernel choices: \d+ bucket\(s\) tuned in [\d.]+ s/);
    // The per-adapter cache in $XDG_CACHE_HOME/classifier-training/tune holds the same table.
    const identity = adapterIdentity(gpu().adapter);
    const dir = `${cache}/classifier-training/tune`;
    assert.deepEqual(
      loadTuneCache(dir, identity, (m) => assert.fail(m)),
      table,
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("CT_TUNE=0 or trainer.tune=false: heuristics, no tuning.json, no cache", async () => {
  const root = Deno.makeTempDirSync();
  const cache = Deno.makeTempDirSync();
  try {
    for (
      const [ct, over] of [["0", []], ["1", ["trainer.tune=false"]]] as [string, string[]][]
    ) {
      const r = await withEnv(
        { CT_TUNE: ct, XDG_CACHE_HOME: cache },
        () => fit(root, [...SHORT, ...over]),
      );
      assert.equal(recorded(r.runDir), null, `no ${RUN_CHOICES_FILE} (CT_TUNE=${ct} ${over})`);
      assert.ok(r.seen.every((s) => !s.tuning && s.fc1 === HEURISTIC_MATMUL()));
      assert.doesNotMatch(r.text, /kernel choices/);
    }
    assert.deepEqual([...Deno.readDirSync(cache)], [], "nothing written to the cache folder");
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("resume replays a recorded non-heuristic table: bit-identical to a straight run", async () => {
  const root = Deno.makeTempDirSync();
  const cache = Deno.makeTempDirSync();
  const identity = adapterIdentity(gpu().adapter);
  const dir = `${cache}/classifier-training/tune`;
  const env = { CT_TUNE: "1", XDG_CACHE_HOME: cache };
  try {
    // The buckets of a run, from tuned runs; then choices off the heuristics forced. Forcing
    // im2col brings in the buckets of its matmul: probe again until nothing is left to tune.
    const forced: ChoiceTable = {};
    const seed = () => {
      Deno.mkdirSync(dir, { recursive: true });
      Deno.writeTextFileSync(
        `${dir}/${tuneCacheFileName(identity)}`,
        serializeTuneCache(identity, forced),
      );
    };
    for (let i = 0; i < 3; i++) {
      seed();
      const probe = await withEnv(
        env,
        () => fit(root, [`logging.version=probe${i}`, "trainer.maxEpochs=1", ...FOUR]),
      );
      if (i > 0 && /kernel choices: 0 bucket/.test(probe.text)) break;
      for (const [key, choice] of Object.entries(recorded(probe.runDir)!)) {
        // Off the heuristic, with a tile shape it would not pick (replayed on resume too).
        forced[key] = key.startsWith("matmul/")
          ? (HEURISTIC_MATMUL() === "register" ? "tiled:128x64_8x4" : "register")
          : key.startsWith("bn_reduce/")
          ? "8"
          : choice;
      }
      // im2col is the heuristic of no adapter for this conv (8-pixel rows).
      assert.ok(CONV_KEY in forced, Object.keys(forced).join(", "));
      forced[CONV_KEY] = "im2col";
    }
    // Straight: 2 epochs with the forced table from step 1 (it covers every bucket: nothing
    // left to tune).
    seed();
    const straight = await withEnv(env, () => fit(root, ["logging.version=straight", ...FOUR]));
    assert.deepEqual(recorded(straight.runDir), forced);
    assert.match(straight.text, /kernel choices: 0 bucket\(s\) tuned/);
    assert.ok(straight.seen.every((s) => s.fc1 !== HEURISTIC_MATMUL()));
    // The table matters: the heuristics give other weights.
    const heuristic = await withEnv(
      { ...env, CT_TUNE: "0" },
      () => fit(root, ["logging.version=heuristic", ...FOUR]),
    );
    assert.notDeepEqual(heuristic.weights, straight.weights, "the forced table changes bits");

    // Cut in epoch 1 with the same table; then the cache is gone, so only tuning.json can
    // give the resumed run the forced choices.
    seed();
    const cut = await withEnv(env, () => fit(root, ["logging.version=cut", ...FOUR], 1));
    Deno.removeSync(cache, { recursive: true });
    Deno.mkdirSync(cache);
    const resumed = await withEnv(env, () =>
      fit(root, [
        "logging.version=resumed",
        `resume=${cut.runDir}/checkpoints/last.json`,
        ...FOUR,
      ]));
    assert.match(resumed.text, /kernel choices: \d+ replayed from .*cut\/tuning\.json/);
    assert.doesNotMatch(resumed.text, /tuned in/, "no re-tuning");
    assert.deepEqual(recorded(resumed.runDir), forced, "the resumed run records it too");
    assert.ok(resumed.seen.every((s) => s.tuning && s.fc1 === forced[FC_KEY]));
    assert.deepEqual(Object.keys(resumed.weights), Object.keys(straight.weights));
    for (const k of Object.keys(straight.weights)) {
      assert.deepEqual(resumed.weights[k], straight.weights[k], `${k} identical after resume`);
    }
    assert.deepEqual([...Deno.readDirSync(cache)], [], "a replayed table is not re-cached");

    // A record from another adapter: one warning naming the file, then tuning afresh.
    Deno.writeTextFileSync(
      `${cut.runDir}/${RUN_CHOICES_FILE}`,
      serializeTuneCache("another adapter", forced),
    );
    const other = await withEnv(env, () =>
      fit(root, [
        "logging.version=other",
        `resume=${cut.runDir}/checkpoints/last.json`,
        "trainer.limitTrainBatches=3",
      ]));
    const warnings = other.text.split("\n").filter((l) => l.includes("warning"));
    assert.equal(warnings.length, 1, other.text);
    assert.match(warnings[0], /cut\/tuning\.json: adapter "another adapter".*tuning afresh/);
    assert.match(other.text, /kernel choices: \d+ bucket\(s\) tuned/);
    assert.ok(recorded(other.runDir), "recorded for this adapter");
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(cache, { recursive: true });
  }
});

Deno.test("a corrupt tune cache is ignored with a one-line warning naming the file", async () => {
  const root = Deno.makeTempDirSync();
  const cache = Deno.makeTempDirSync();
  const identity = adapterIdentity(gpu().adapter);
  const dir = `${cache}/classifier-training/tune`;
  const path = `${dir}/${tuneCacheFileName(identity)}`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(path, '{"format": "classifier-training-tune", "choices": [tru');
    const r = await withEnv({ CT_TUNE: "1", XDG_CACHE_HOME: cache }, () => fit(root, SHORT));
    const warnings = r.text.split("\n").filter((l) => l.includes("warning"));
    assert.equal(warnings.length, 1, r.text);
    assert.ok(warnings[0].includes(path), warnings[0]);
    assert.match(warnings[0], /not JSON.*ignored/);
    // The run went on, tuned, and replaced the corrupt file with its table.
    const table = recorded(r.runDir);
    assert.ok(table && FC_KEY in table);
    assert.deepEqual(loadTuneCache(dir, identity, (m) => assert.fail(m)), table);
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(cache, { recursive: true });
  }
});
