import assert from "node:assert/strict";
import {
  ConfigError,
  configToYaml,
  DEFAULT_TRAIN_CONFIG,
  loadConfig,
  parseOverride,
  resolveConfig,
} from "../../src/train/config.ts";
import { parse as parseYaml } from "yaml";

const MODELS = ["resnet18", "resnet34", "resnet50"];

const BASE = `seed: 1
model:
  name: resnet18
  smallInput: true
data:
  source: builtin
  imageSize: 32
trainer:
  maxEpochs: 3
`;

function err(text: string, overrides: string[] = []): string {
  try {
    resolveConfig(text, "configs/x.yaml", { overrides, models: MODELS });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.message;
  }
  throw new Error("expected an error");
}

Deno.test("config: defaults fill what the file leaves out", () => {
  const c = resolveConfig(BASE, "x.yaml", { models: MODELS });
  assert.equal(c.trainer.maxEpochs, 3);
  assert.equal(c.data.imageSize, 32);
  assert.equal(c.data.batchSize, DEFAULT_TRAIN_CONFIG.data.batchSize);
  assert.deepEqual(c.data.augment, DEFAULT_TRAIN_CONFIG.data.augment);
  assert.equal(c.checkpoint.monitor, "val/acc_top1");
  assert.equal(c.checkpoint.mode, "max");
  assert.equal(c.earlyStopping, null);
  assert.equal(c.resume, null);
});

Deno.test("config: overrides are YAML values on dot paths, type-checked", () => {
  const c = resolveConfig(BASE, "x.yaml", {
    models: MODELS,
    overrides: [
      "trainer.maxEpochs=7",
      "model.name=resnet34",
      "data.augment.randomCrop=null",
      "data.augment.mean=[0.5, 0.5, 0.5]",
      "earlyStopping.patience=2",
      "resume=runs/a/checkpoints/last.json",
    ],
  });
  assert.equal(c.trainer.maxEpochs, 7);
  assert.equal(c.model.name, "resnet34");
  assert.equal(c.data.augment.randomCrop, null);
  assert.deepEqual(c.data.augment.mean, [0.5, 0.5, 0.5]);
  assert.deepEqual(c.earlyStopping, {
    monitor: "val/acc_top1",
    patience: 2,
    minDelta: 0,
    mode: "max",
  });
  assert.equal(c.resume, "runs/a/checkpoints/last.json");
  assert.deepEqual(parseOverride("a.b=true"), { path: ["a", "b"], value: true });
  assert.deepEqual(parseOverride("data.root=/x/y"), { path: ["data", "root"], value: "/x/y" });
});

Deno.test("config: wrong type names file, line and path", () => {
  assert.equal(
    err(BASE.replace("maxEpochs: 3", "maxEpochs: ten")),
    `configs/x.yaml:9 trainer.maxEpochs: expected a positive integer, got "ten"`,
  );
  assert.equal(
    err(BASE.replace("smallInput: true", "smallInput: 3")),
    `configs/x.yaml:4 model.smallInput: expected true or false, got 3`,
  );
  assert.equal(
    err(BASE, ["trainer.maxEpochs=ten"]),
    `override trainer.maxEpochs=ten: trainer.maxEpochs: expected a positive integer, got "ten"`,
  );
  assert.equal(
    err(BASE + "  limitTrainBatches: 1.5\n"),
    `configs/x.yaml:10 trainer.limitTrainBatches: expected null, a batch count (integer >= 1) or a fraction in (0, 1), got 1.5`,
  );
});

Deno.test("config: unknown keys are errors", () => {
  assert.equal(
    err(BASE.replace("  maxEpochs: 3", "  maxEpochs: 3\n  maxEpoch: 4")),
    "configs/x.yaml:10 trainer.maxEpoch: unknown key (known: maxEpochs, limitTrainBatches, " +
      "limitValBatches, limitTestBatches, fastDevRun, gradientClipVal, gradientClipAlgorithm, " +
      "accumulateGradBatches, logEveryNSteps, checkValEveryNEpoch, progress, test, " +
      "freezeBackboneEpochs)",
  );
  assert.match(
    err(BASE, ["data.foo=1"]),
    /^override data\.foo=1: data\.foo: unknown key \(known: source, /,
  );
});

Deno.test("config: unknown model lists the registered ones", () => {
  assert.equal(
    err(BASE.replace("name: resnet18", "name: resnet19")),
    `configs/x.yaml:3 model.name: expected one of "resnet18", "resnet34", "resnet50", got "resnet19"`,
  );
});

Deno.test("config: a missing data root is an error", () => {
  const text = BASE.replace("source: builtin", "source: imagefolder\n  root: /nonexistent/signs");
  assert.equal(
    err(text),
    `configs/x.yaml:7 data.root: expected an existing folder, got "/nonexistent/signs" (not found)`,
  );
  assert.equal(
    err(BASE.replace("source: builtin", "source: idx")),
    `configs/x.yaml:6 data.root: expected a folder for source "idx", got null`,
  );
});

Deno.test("config: mean/std must fit the channels", () => {
  assert.equal(
    err(BASE, ["data.augment.mean=[0.5, 0.5]"]),
    `override data.augment.mean=[0.5, 0.5]: data.augment.mean: expected 1 or 3 values (data.channels is 3), got 2`,
  );
});

Deno.test("config: the resolved YAML round-trips", () => {
  const c = resolveConfig(BASE, "x.yaml", {
    models: MODELS,
    overrides: ["earlyStopping.patience=4"],
  });
  const again = resolveConfig(configToYaml(c), "config.yaml", { models: MODELS });
  assert.deepEqual(again, c);
  assert.deepEqual(parseYaml(configToYaml(c)), JSON.parse(JSON.stringify(c)));
});

Deno.test("config: the shipped configs are valid", () => {
  for (
    const f of [
      "resnet18",
      "resnet18_fashion_mnist",
      "resnet18_imagefolder",
      "resnet50",
      "resnet18_finetune",
      "resnet50_finetune",
    ]
  ) {
    const path = new URL(`../../configs/${f}.yaml`, import.meta.url).pathname;
    const c = loadConfig(path, [], { models: MODELS, checkPaths: false });
    assert.ok(c.trainer.maxEpochs >= 1, f);
  }
  assert.throws(
    () => loadConfig("/nonexistent.yaml"),
    (e: Error) => e.message.startsWith("/nonexistent.yaml: cannot read the config ("),
  );
});
