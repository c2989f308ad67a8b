/**
 * What the two exporters share: finding the torchvision-shaped ResNet inside a model, its
 * architecture, the deployment facts (class names, input size, normalisation) and their
 * validation, and the project version written into every export.
 *
 * No Deno APIs here: the exporters run in the browser too.
 *
 * @module
 */

import denoConfig from "../../deno.json" with { type: "json" };
import { BasicBlock, Bottleneck, ResNet } from "../nn/resnet.ts";
import type { Module } from "../nn/module.ts";

/** The project's version (from deno.json), written into every export. */
export const PROJECT_VERSION: string = denoConfig.version;

/** What a deployer needs besides the weights; the run's config and checkpoint provide it. */
export interface ExportOptions {
  /** Class names in output order (one per logit). */
  classNames: readonly string[];
  /** Side of the square input images, in pixels (the config's `data.imageSize`). */
  inputSize: number;
  /** Normalisation mean, one value per input channel (pixels scaled to [0, 1] first). */
  mean: readonly number[];
  /** Normalisation std, one value per input channel. */
  std: readonly number[];
  /** Side the evaluation pipeline resizes to before the center crop; null resizes straight to `inputSize`. */
  resize?: number | null;
}

/** A torchvision ResNet architecture this project builds. */
export type ResNetArchitecture = "resnet18" | "resnet34" | "resnet50";

/** The shape facts of a ResNet, read from its modules (not from hyper-parameters). */
export interface ResNetFacts {
  /** The backbone itself. */
  resnet: ResNet;
  /** torchvision's builder name. */
  architecture: ResNetArchitecture;
  /** Number of logits. */
  numClasses: number;
  /** Input channels of `conv1`. */
  inChannels: number;
  /** CIFAR-style stem: 3×3 stride-1 `conv1` and no max-pool. */
  smallInput: boolean;
}

const ARCHITECTURES: Record<string, ResNetArchitecture> = {
  "basic:2,2,2,2": "resnet18",
  "basic:3,4,6,3": "resnet34",
  "bottleneck:3,4,6,3": "resnet50",
};

/**
 * The ResNet of `model`: the model itself, or the backbone of a classification model (its
 * child `model`). Anything else is an error saying what was expected.
 */
export function resnetFacts(model: Module): ResNetFacts {
  const resnet = model instanceof ResNet
    ? model
    : model.namedChildren().find(([n]) => n === "model")?.[1];
  if (!(resnet instanceof ResNet)) {
    throw new TypeError(
      `export: expected a ResNet or a classification model with a ResNet backbone, got ${model.constructor.name}`,
    );
  }
  const first = resnet.stages[0].at(0);
  const kind = first instanceof BasicBlock
    ? "basic"
    : first instanceof Bottleneck
    ? "bottleneck"
    : "";
  const key = `${kind}:${resnet.stages.map((s) => s.length).join(",")}`;
  const architecture = ARCHITECTURES[key];
  if (!architecture) {
    throw new TypeError(
      `export: expected a ResNet-18, 34 or 50 layout, got ${kind || "unknown"} blocks [${
        resnet.stages.map((s) => s.length).join(", ")
      }]`,
    );
  }
  return {
    resnet,
    architecture,
    numClasses: resnet.numClasses,
    inChannels: resnet.conv1.weight.shape[1],
    smallInput: resnet.maxpool === null,
  };
}

/** Checks `options` against the model; errors name the field, what was expected and what was got. */
export function checkExportOptions(facts: ResNetFacts, options: ExportOptions): void {
  const { classNames, inputSize, mean, std } = options;
  if (!Array.isArray(classNames) || classNames.length !== facts.numClasses) {
    throw new RangeError(
      `export: classNames: expected ${facts.numClasses} names (one per logit), got ${
        Array.isArray(classNames) ? classNames.length : typeof classNames
      }`,
    );
  }
  if (!classNames.every((n) => typeof n === "string")) {
    throw new TypeError("export: classNames: expected strings");
  }
  if (!Number.isInteger(inputSize) || inputSize < 1) {
    throw new RangeError(`export: inputSize: expected a positive integer, got ${inputSize}`);
  }
  for (const [name, v, positive] of [["mean", mean, false], ["std", std, true]] as const) {
    if (!Array.isArray(v) || v.length !== facts.inChannels) {
      throw new RangeError(
        `export: ${name}: expected ${facts.inChannels} values (one per input channel), got ${
          Array.isArray(v) ? v.length : typeof v
        }`,
      );
    }
    if (!v.every((x) => Number.isFinite(x) && (!positive || x > 0))) {
      throw new RangeError(
        `export: ${name}: expected finite${positive ? " positive" : ""} numbers, got [${
          v.join(", ")
        }]`,
      );
    }
  }
}
