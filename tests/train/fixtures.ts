/** Shared fixtures of the trainer tests: a tiny MLP model and tiny configs. */
import { rand } from "../helpers.ts";
import { Tensor } from "../../src/gpu/tensor.ts";
import * as ops from "../../src/autograd/ops.ts";
import { Module } from "../../src/nn/module.ts";
import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "../../src/models/base_classification_model.ts";
import { register } from "../../src/models/registry.ts";
import { resolveConfig, type TrainConfig } from "../../src/train/config.ts";
import { ClassificationDataModule } from "../../src/data/data_module.ts";
import type { TextSink } from "../../src/train/progress.ts";
import { modelOptions } from "../../src/cli/common.ts";

/** Flatten → Linear → ReLU → Linear, seeded (small enough for lavapipe in tests). */
class TinyMlp extends Module {
  constructor(inFeatures: number, hidden: number, classes: number, seed: number) {
    super();
    const r1 = rand(hidden * inFeatures + hidden, seed);
    const r2 = rand(classes * hidden + classes, seed + 1);
    const s1 = 1 / Math.sqrt(inFeatures);
    const s2 = 1 / Math.sqrt(hidden);
    this.registerParameter(
      "fc1_weight",
      Tensor.fromArray(r1.subarray(0, hidden * inFeatures).map((v) => v * s1), [
        hidden,
        inFeatures,
      ]),
    );
    this.registerParameter(
      "fc1_bias",
      Tensor.fromArray(r1.subarray(hidden * inFeatures).map((v) => v * s1), [hidden]),
    );
    this.registerParameter(
      "fc2_weight",
      Tensor.fromArray(r2.subarray(0, classes * hidden).map((v) => v * s2), [classes, hidden]),
    );
    this.registerParameter(
      "fc2_bias",
      Tensor.fromArray(r2.subarray(classes * hidden).map((v) => v * s2), [classes]),
    );
  }
  forward(x: Tensor): Tensor {
    const [w1, b1, w2, b2] = this.parameters();
    const flat = ops.reshape(x, [x.shape[0], -1]);
    const h = ops.relu(ops.add(ops.matmul(flat, w1, { transB: true }), b1));
    return ops.add(ops.matmul(h, w2, { transB: true }), b2);
  }
}

/** Options of the tiny model (the registry passes the config's model options). */
export interface TinyOptions extends BaseClassificationModelOptions {
  inChannels?: number;
  imageSize?: number;
  seed?: number;
}

/** A registered tiny model for trainer tests. */
@register("tiny_mlp")
export class TinyModel extends BaseClassificationModel {
  constructor(opts: TinyOptions) {
    const inChannels = opts.inChannels ?? 3;
    const imageSize = opts.imageSize ?? 8;
    const seed = opts.seed ?? 0;
    super("tiny_mlp", opts, { inChannels, imageSize, seed });
    this.setBackbone(
      new TinyMlp(inChannels * imageSize * imageSize, 32, opts.numClasses, seed + 7),
    );
  }
}

/** A tiny YAML config (built-in data at 8×8, 4 classes) writing runs under `root`. */
export function tinyYaml(root: string): string {
  return `seed: 3
model:
  name: tiny_mlp
  labelSmoothing: 0.0
data:
  source: builtin
  imageSize: 8
  batchSize: 32
  numWorkers: 0
  augment:
    randomCrop: null
    hflip: 0.0
  builtin: { numClasses: 2, trainSize: 512, valSize: 128, testSize: 128 }
optimizer:
  learningRate: 0.01
  weightDecay: 0.0001
scheduler:
  warmupEpochs: 1
  warmupStartFactor: 0.1
trainer:
  maxEpochs: 2
  logEveryNSteps: 4
  progress: lines
logging:
  rootDir: ${root}
  name: tiny
`;
}

/** The tiny config with overrides. */
export function tinyConfig(root: string, overrides: string[] = []): TrainConfig {
  return resolveConfig(tinyYaml(root), "tiny.yaml", { overrides });
}

/**
 * Runs `fn` on the model and data of the tiny config with `overrides` in a fresh root folder,
 * then frees them and removes the folder.
 */
export async function withTinyRun(
  overrides: string[],
  fn: (
    run: { cfg: TrainConfig; model: TinyModel; data: ClassificationDataModule },
  ) => Promise<void>,
): Promise<void> {
  const root = Deno.makeTempDirSync();
  const cfg = tinyConfig(root, overrides);
  const { model, data } = await build(cfg);
  try {
    await fn({ cfg, model, data });
  } finally {
    model.dispose();
    data.dispose();
    Deno.removeSync(root, { recursive: true });
  }
}

/** Model and data of a config. */
export async function build(
  cfg: TrainConfig,
): Promise<{ model: TinyModel; data: ClassificationDataModule }> {
  const data = new ClassificationDataModule(cfg.data, { seed: cfg.seed });
  await data.setup();
  const model = new TinyModel({
    ...modelOptions(cfg, data.numClasses),
    inChannels: cfg.data.channels,
    imageSize: cfg.data.imageSize,
  });
  return { model, data };
}

/** Captures progress output. */
export function captureOut(): TextSink & { text: string } {
  const o = {
    text: "",
    isTerminal: false,
    write(t: string) {
      o.text += t;
    },
  };
  return o;
}
