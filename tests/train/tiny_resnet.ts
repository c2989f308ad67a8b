/**
 * A registered tiny ResNet for mixed-precision trainer tests: every op ResNet uses (conv,
 * BN + ReLU, max-pool, basic blocks with and without a downsample shortcut, average pool,
 * linear), at 8 and 16 channels, so a few epochs run in seconds on lavapipe.
 */
import type { Tensor } from "../../src/gpu/tensor.ts";
import { Module } from "../../src/nn/module.ts";
import { Rng } from "../../src/nn/init.ts";
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Flatten,
  Linear,
  MaxPool2d,
  Sequential,
} from "../../src/nn/layers.ts";
import { BasicBlock } from "../../src/nn/resnet.ts";
import {
  BaseClassificationModel,
  type BaseClassificationModelOptions,
} from "../../src/models/base_classification_model.ts";
import { register } from "../../src/models/registry.ts";

class TinyResNetNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d;
  readonly layer1: BasicBlock;
  readonly layer2: BasicBlock;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly flatten: Flatten;
  readonly fc: Linear;

  constructor(inChannels: number, classes: number, seed: number) {
    super();
    const rng = new Rng(seed);
    const conv = (i: number, o: number, k: number, stride: number) =>
      new Conv2d(i, o, {
        kernelSize: k,
        stride,
        padding: k === 3 ? 1 : 0,
        bias: false,
        init: "kaiming_normal",
        rng,
      });
    this.conv1 = this.registerModule("conv1", conv(inChannels, 8, 3, 1));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(8));
    this.maxpool = this.registerModule("maxpool", new MaxPool2d(2));
    this.layer1 = this.registerModule("layer1", new BasicBlock(8, 8, { rng }));
    const down = new Sequential(conv(8, 16, 1, 2), new BatchNorm2d(16));
    this.layer2 = this.registerModule(
      "layer2",
      new BasicBlock(8, 16, { stride: 2, downsample: down, rng }),
    );
    this.avgpool = this.registerModule("avgpool", new AdaptiveAvgPool2d(1));
    this.flatten = this.registerModule("flatten", new Flatten());
    this.fc = this.registerModule("fc", new Linear(16, classes, { rng }));
  }

  forward(x: Tensor): Tensor {
    let y = this.maxpool.forward(this.bn1.forwardRelu(this.conv1.forward(x)));
    y = this.layer2.forward(this.layer1.forward(y));
    return this.fc.forward(this.flatten.forward(this.avgpool.forward(y)));
  }
}

/** Options of the tiny ResNet (the registry passes the config's model options). */
export interface TinyResNetOptions extends BaseClassificationModelOptions {
  inChannels?: number;
  seed?: number;
}

/** The registered `tiny_resnet`. */
@register("tiny_resnet")
export class TinyResNet extends BaseClassificationModel {
  constructor(opts: TinyResNetOptions) {
    const inChannels = opts.inChannels ?? 3;
    const seed = opts.seed ?? 0;
    super("tiny_resnet", opts, { inChannels, seed });
    this.setBackbone(new TinyResNetNet(inChannels, opts.numClasses, seed + 11));
  }
}
