/**
 * The concrete models: ResNet-18/34/50 backbones under `BaseClassificationModel`, registered
 * as "resnet18", "resnet34", "resnet50".
 *
 * @module
 */

import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "./base_classification_model.ts";
import { register } from "./registry.ts";
import { type ResNet, resnet18, resnet34, resnet50, type ResNetOptions } from "../nn/resnet.ts";

/** Options of the ResNet models. */
export interface ResNetModelOptions extends BaseClassificationModelOptions {
  /** CIFAR-style 3×3 stem without max-pool, for 28–64 px images (default false). */
  smallInput?: boolean;
  /** Input channels (default 3; 1 for grayscale). */
  inChannels?: number;
  /** Seed of the initialisation (default 0). */
  seed?: number;
}

function backboneOptions(opts: ResNetModelOptions): ResNetOptions {
  return {
    numClasses: opts.numClasses,
    smallInput: opts.smallInput ?? false,
    inChannels: opts.inChannels ?? 3,
    seed: opts.seed ?? 0,
  };
}

function extras(
  opts: ResNetModelOptions,
): { smallInput: boolean; inChannels: number; seed: number } {
  const b = backboneOptions(opts);
  return { smallInput: b.smallInput!, inChannels: b.inChannels!, seed: b.seed! };
}

/**
 * What the registered ResNet models share: the backbone built from the model options and its
 * typed getter. Not registered itself.
 */
export abstract class ResNetModel extends BaseClassificationModel {
  /** Builds the backbone with `build` (`resnet18`, …) and `numClasses` outputs. */
  constructor(
    name: string,
    build: (opts: ResNetOptions) => ResNet,
    opts: ResNetModelOptions,
  ) {
    super(name, opts, extras(opts));
    this.setBackbone(build(backboneOptions(opts)));
  }

  /** The ResNet backbone. */
  get resnet(): ResNet {
    return this.model as ResNet;
  }
}

/** ResNet-18 classifier (state-dict keys `model.conv1.weight`, …). */
@register("resnet18")
export class ResNet18Model extends ResNetModel {
  /** Builds the backbone with `numClasses` outputs. */
  constructor(opts: ResNetModelOptions) {
    super("resnet18", resnet18, opts);
  }
}

/** ResNet-34 classifier. */
@register("resnet34")
export class ResNet34Model extends ResNetModel {
  /** Builds the backbone with `numClasses` outputs. */
  constructor(opts: ResNetModelOptions) {
    super("resnet34", resnet34, opts);
  }
}

/** ResNet-50 classifier. */
@register("resnet50")
export class ResNet50Model extends ResNetModel {
  /** Builds the backbone with `numClasses` outputs. */
  constructor(opts: ResNetModelOptions) {
    super("resnet50", resnet50, opts);
  }
}
