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
import { DEFAULT_DATA_CONFIG } from "../../src/data/config.ts";
import { resolveDataConfig } from "../../src/data/data_module.ts";
import { DataError } from "../../src/data/errors.ts";
import { checkModelHparams, hparamsOf, type ModelHparams } from "../../src/models/hparams.ts";
import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "../../src/models/base_classification_model.ts";

/** A bare model class: its constructor is the base's, which checks the options first. */
function createModelClass(): new (o: BaseClassificationModelOptions) => BaseClassificationModel {
  return class extends BaseClassificationModel {
    constructor(o: BaseClassificationModelOptions) {
      super("probe", o);
    }
  };
}

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

Deno.test("config: YAML aliases that cannot resolve are config errors naming the file", () => {
  // Found by `deno task fuzz --seed 7`: an alias before its anchor threw the yaml package's
  // ReferenceError, which named no file.
  assert.equal(
    err(BASE.replace("maxEpochs: 3", "maxEpochs: *three")),
    "configs/x.yaml: Unresolved alias (the anchor must be set before the alias): three",
  );
  // An alias bomb (each level ten aliases of the one before) stops at the package's limit.
  const levels = ["a0: &a0 [1]"];
  for (let i = 1; i < 8; i++) {
    levels.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  }
  assert.match(err(levels.join("\n") + "\n" + BASE), /^configs\/x\.yaml: Excessive alias count/);
});

Deno.test("config: trainer.precision takes Lightning's spellings; others name the field", () => {
  const precision = (v: string) =>
    resolveConfig(BASE + `  precision: ${v}\n`, "configs/x.yaml").trainer.precision;
  assert.equal(resolveConfig(BASE, "configs/x.yaml").trainer.precision, "32");
  assert.equal(precision("32"), "32");
  assert.equal(precision('"32"'), "32");
  assert.equal(precision("32-true"), "32");
  assert.equal(precision("16-mixed"), "16-mixed");
  assert.equal(
    resolveConfig(BASE, "configs/x.yaml", { overrides: ["trainer.precision=16-mixed"] }).trainer
      .precision,
    "16-mixed",
  );
  assert.equal(
    err(BASE, ["trainer.precision=16"]),
    `override trainer.precision=16: trainer.precision: expected one of "32", "32-true", "16-mixed", got 16`,
  );
  assert.equal(
    err(BASE + "  precision: bf16-mixed\n"),
    `configs/x.yaml:10 trainer.precision: expected one of "32", "32-true", "16-mixed", got "bf16-mixed"`,
  );
});

Deno.test("config: unknown keys are errors", () => {
  assert.equal(
    err(BASE.replace("  maxEpochs: 3", "  maxEpochs: 3\n  maxEpoch: 4")),
    "configs/x.yaml:10 trainer.maxEpoch: unknown key (known: maxEpochs, limitTrainBatches, " +
      "limitValBatches, limitTestBatches, fastDevRun, gradientClipVal, gradientClipAlgorithm, " +
      "accumulateGradBatches, logEveryNSteps, checkValEveryNEpoch, progress, test, " +
      "freezeBackboneEpochs, tune, precision)",
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

Deno.test("config: a field's own error stops the cross-field checks that read it", () => {
  // Found by `deno task fuzz --seed 6`: a null mean reached the channel-count check, which
  // threw a TypeError instead of the config error.
  for (const f of ["mean", "std"]) {
    assert.match(
      err(BASE, [`data.augment.${f}=null`]),
      new RegExp(`^override data\\.augment\\.${f}=null: data\\.augment\\.${f}: expected a list of`),
    );
  }
  // A bad fraction is named as itself, not as the sum check that reads it.
  assert.equal(
    err(BASE, ["data.valFraction=abc"]),
    `override data.valFraction=abc: data.valFraction: expected a number in [0, 1), got "abc"`,
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

Deno.test("config: a cross-field data error names file, line and path", () => {
  const text = BASE.replace(
    "imageSize: 32",
    "imageSize: 32\n  valFraction: 0.6\n  testFraction: 0.5",
  );
  const why = "expected valFraction + testFraction < 1, got 0.6 + 0.5";
  assert.equal(err(text), `configs/x.yaml:9 data.testFraction: ${why}`);
  // Set by an override, the error points at the override (the value written last).
  assert.equal(
    err(BASE, ["data.testFraction=0.5", "data.valFraction=0.6"]),
    `override data.valFraction=0.6: data.testFraction: ${why}`,
  );
  const onlyVal = BASE.replace("imageSize: 32", "imageSize: 32\n  valFraction: 0.95");
  assert.equal(
    err(onlyVal),
    "configs/x.yaml:8 data.testFraction: expected valFraction + testFraction < 1, got 0.95 + 0.1",
  );
  // The data module runs the same check, with the same words, for API users.
  assert.throws(
    () => resolveDataConfig({ valFraction: 0.6, testFraction: 0.5 }),
    (e: Error) => e instanceof DataError && e.message === `data.testFraction: ${why}`,
  );
});

Deno.test("config: model constructors check hyperparameters with the config's ranges", () => {
  // label_smoothing in [0, 1] (torch CrossEntropyLoss); lr, weight decay >= 0 (torch AdamW);
  // start factor in (0, 1] (torch LinearLR); eta_min factor in [0, 1].
  const cases: [string, number, boolean][] = [
    ["model.labelSmoothing", 0, true],
    ["model.labelSmoothing", 1, true],
    ["model.labelSmoothing", 1.01, false],
    ["model.labelSmoothing", -0.1, false],
    ["optimizer.learningRate", 0, true],
    ["optimizer.learningRate", -1e-4, false],
    ["optimizer.weightDecay", 0, true],
    ["optimizer.weightDecay", -1, false],
    ["scheduler.warmupEpochs", 0, true],
    ["scheduler.warmupEpochs", 1.5, false],
    ["scheduler.warmupStartFactor", 1, true],
    ["scheduler.warmupStartFactor", 0, false],
    ["scheduler.cosineEtaMinFactor", 1, true],
    ["scheduler.cosineEtaMinFactor", 1.5, false],
  ];
  for (const [path, value, ok] of cases) {
    const field = path.split(".")[1];
    const api = () => checkModelHparams("BaseClassificationModel", { [field]: value });
    const fromFile = () =>
      resolveConfig(BASE, "x.yaml", { models: MODELS, overrides: [`${path}=${value}`] });
    if (ok) {
      assert.equal(api()[field as keyof ModelHparams], value, path);
      assert.equal(hparamsOf(fromFile())[field as keyof ModelHparams], value, path);
      continue;
    }
    const cfgMsg = err(BASE, [`${path}=${value}`]);
    const prefix = `override ${path}=${value}: ${path}: `;
    assert.ok(cfgMsg.startsWith(prefix), cfgMsg);
    const why = cfgMsg.slice(prefix.length);
    assert.match(why, /^expected .*, got /);
    // The model constructor itself (it checks before touching the GPU).
    assert.throws(
      () => new (createModelClass())({ numClasses: 3, [field]: value }),
      (e: Error) =>
        e instanceof RangeError && e.message === `BaseClassificationModel: ${field}: ${why}`,
      path,
    );
  }
});

Deno.test("config: defaults are declared once and shared by config, model and data module", () => {
  assert.deepEqual(resolveConfig("{}", "x.yaml"), DEFAULT_TRAIN_CONFIG);
  assert.deepEqual(checkModelHparams("m", {}), hparamsOf(DEFAULT_TRAIN_CONFIG));
  assert.deepEqual(resolveDataConfig(), DEFAULT_TRAIN_CONFIG.data);
  assert.deepEqual(DEFAULT_DATA_CONFIG, DEFAULT_TRAIN_CONFIG.data);
  // Every default passes its own check, and a partial section keeps the other defaults.
  const c = resolveConfig("optimizer:\n  learningRate: 0.5\n", "x.yaml");
  assert.equal(c.optimizer.learningRate, 0.5);
  assert.equal(c.optimizer.weightDecay, DEFAULT_TRAIN_CONFIG.optimizer.weightDecay);
  assert.deepEqual(c.scheduler, DEFAULT_TRAIN_CONFIG.scheduler);
  // The exported defaults are fresh objects: mutating a parsed config leaves them alone.
  c.data.augment.mean[0] = 9;
  assert.notEqual(DEFAULT_TRAIN_CONFIG.data.augment.mean[0], 9);
});
