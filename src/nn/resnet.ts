/**
 * ResNets identical to torchvision's (0.14): `BasicBlock`, `Bottleneck` (expansion 4, the
 * stride on the 3×3 conv2, "v1.5"), `ResNet`, and `resnet18`, `resnet34`, `resnet50`.
 * Module names, state-dict keys and parameter order match torchvision, so its weights load
 * with `loadStateDict(await loadSafetensors(path))` and give the same logits.
 *
 * ```ts
 * import { getDevice, resnet18, scope, Tensor } from "@classifier-training/core";
 * await getDevice();
 * const net = resnet18({ numClasses: 10, smallInput: true, seed: 0 }).eval();
 * const x = Tensor.fromArray(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
 * const logits = await scope(() => net.forward(x)).toArray(); // 2 × 10
 * ```
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { type InitOptions, type Rng, rngFrom } from "./init.ts";
import { Module } from "./module.ts";
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
} from "./layers.ts";
import { fillInPlace } from "../kernels/elementwise.ts";

function conv3x3(inC: number, outC: number, stride: number, rng: Rng): Conv2d {
  return new Conv2d(inC, outC, {
    kernelSize: 3,
    stride,
    padding: 1,
    bias: false,
    init: "kaiming_normal",
    rng,
  });
}

function conv1x1(inC: number, outC: number, stride: number, rng: Rng): Conv2d {
  return new Conv2d(inC, outC, { kernelSize: 1, stride, bias: false, init: "kaiming_normal", rng });
}

/** Options of `BasicBlock` and `Bottleneck`. */
export interface BlockOptions extends InitOptions {
  /** Stride of the 3×3 conv (default 1). */
  stride?: number;
  /** Shortcut projection (1×1 conv + BN, registered as `downsample`), needed when the shape changes. */
  downsample?: Sequential | null;
}

/** A residual block: what `BasicBlock` and `Bottleneck` share. */
export abstract class ResidualBlock extends Module {
  /** The shortcut projection (1×1 conv + BN) when shape changes, else null. */
  abstract readonly downsample: Sequential | null;
  /** The BN whose γ `zeroInitResidual` sets to 0 (bn2 or bn3). */
  abstract readonly lastBn: BatchNorm2d;

  /** Registers `opts.downsample` (last, as torchvision does) when given. */
  protected registerDownsample(opts: BlockOptions): Sequential | null {
    return opts.downsample ? this.registerModule("downsample", opts.downsample) : null;
  }

  /** The shortcut branch: `downsample(x)`, or x itself. */
  protected shortcut(x: Tensor): Tensor {
    return this.downsample ? this.downsample.forward(x) : x;
  }
}

/** torchvision's BasicBlock: 3×3 conv (stride s), BN, ReLU, 3×3 conv, BN, + shortcut, ReLU. */
export class BasicBlock extends ResidualBlock {
  /** Output channels = planes × expansion. */
  static readonly expansion = 1;
  /** First 3×3 conv (carries the stride). */
  readonly conv1: Conv2d;
  /** BN after conv1. */
  readonly bn1: BatchNorm2d;
  /** Shared ReLU (kept for torchvision's module tree; the BN layers apply it fused). */
  readonly relu: ReLU;
  /** Second 3×3 conv. */
  readonly conv2: Conv2d;
  /** BN after conv2. */
  readonly bn2: BatchNorm2d;
  /** The shortcut projection, or null. */
  readonly downsample: Sequential | null;

  /** Builds the block (children registered in torchvision's order). */
  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const rng = rngFrom(opts);
    const stride = opts.stride ?? 1;
    this.conv1 = this.registerModule("conv1", conv3x3(inplanes, planes, stride, rng));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(planes));
    this.relu = this.registerModule("relu", new ReLU());
    this.conv2 = this.registerModule("conv2", conv3x3(planes, planes, 1, rng));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(planes));
    this.downsample = this.registerDownsample(opts);
  }

  /** The BN whose γ `zeroInitResidual` zeroes. */
  get lastBn(): BatchNorm2d {
    return this.bn2;
  }

  /** `[N, inplanes, H, W]` → `[N, planes, H/s, W/s]`. */
  forward(x: Tensor): Tensor {
    // BN + ReLU and BN + shortcut add + ReLU run fused (bit-identical to the separate ops).
    const out = this.bn1.forwardRelu(this.conv1.forward(x));
    return this.bn2.forwardRelu(this.conv2.forward(out), this.shortcut(x));
  }
}

/**
 * torchvision's Bottleneck ("v1.5"): 1×1 conv, BN, ReLU, 3×3 conv (stride s), BN, ReLU,
 * 1×1 conv to planes·4, BN, + shortcut, ReLU.
 */
export class Bottleneck extends ResidualBlock {
  /** Output channels = planes × expansion. */
  static readonly expansion = 4;
  /** 1×1 reduce conv. */
  readonly conv1: Conv2d;
  /** BN after conv1. */
  readonly bn1: BatchNorm2d;
  /** 3×3 conv (carries the stride). */
  readonly conv2: Conv2d;
  /** BN after conv2. */
  readonly bn2: BatchNorm2d;
  /** 1×1 expand conv. */
  readonly conv3: Conv2d;
  /** BN after conv3. */
  readonly bn3: BatchNorm2d;
  /** Shared ReLU (kept for torchvision's module tree; the BN layers apply it fused). */
  readonly relu: ReLU;
  /** The shortcut projection, or null. */
  readonly downsample: Sequential | null;

  /** Builds the block (children registered in torchvision's order; groups 1, base width 64). */
  constructor(inplanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const rng = rngFrom(opts);
    const stride = opts.stride ?? 1;
    const width = planes;
    this.conv1 = this.registerModule("conv1", conv1x1(inplanes, width, 1, rng));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(width));
    this.conv2 = this.registerModule("conv2", conv3x3(width, width, stride, rng));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(width));
    this.conv3 = this.registerModule("conv3", conv1x1(width, planes * 4, 1, rng));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d(planes * 4));
    this.relu = this.registerModule("relu", new ReLU());
    this.downsample = this.registerDownsample(opts);
  }

  /** The BN whose γ `zeroInitResidual` zeroes. */
  get lastBn(): BatchNorm2d {
    return this.bn3;
  }

  /** `[N, inplanes, H, W]` → `[N, planes·4, H/s, W/s]`. */
  forward(x: Tensor): Tensor {
    // BN + ReLU and BN + shortcut add + ReLU run fused (bit-identical to the separate ops).
    let out = this.bn1.forwardRelu(this.conv1.forward(x));
    out = this.bn2.forwardRelu(this.conv2.forward(out));
    return this.bn3.forwardRelu(this.conv3.forward(out), this.shortcut(x));
  }
}

/** Which residual block a `ResNet` stacks. */
export type BlockKind = "basic" | "bottleneck";

/** Options shared by `ResNet` and the `resnet18/34/50` builders. */
export interface ResNetOptions {
  /** Size of the classifier output (default 1000, like torchvision). */
  numClasses?: number;
  /**
   * CIFAR-style stem for 28–64 px images: `conv1` is a 3×3 stride-1 pad-1 conv (shape
   * `[64, C, 3, 3]`) and there is no max-pool. Default false (7×7/s2 conv + 3×3/s2 max-pool).
   */
  smallInput?: boolean;
  /** Input channels (default 3; 1 for grayscale). */
  inChannels?: number;
  /** Seed of the initialisation (default 0). See the NOTE in `init.ts`: same distributions as torchvision, different stream. */
  seed?: number;
  /** A generator to draw from instead of `seed`. */
  rng?: Rng;
  /** torchvision's `zero_init_residual` (default false): the last BN γ of each block starts at 0. */
  zeroInitResidual?: boolean;
}

/** Options of the `ResNet` constructor: the block kind and blocks per stage, like torchvision's `ResNet(block, layers)`. */
export interface ResNetConfig extends ResNetOptions {
  /** Residual block type. */
  block: BlockKind;
  /** Number of blocks in layer1..layer4. */
  layers: [number, number, number, number];
}

/** Options of `ResNet.forwardFeatures`. */
export interface ForwardFeaturesOptions {
  /** Stop after `layer{stages}` (0: after the stem; default 4: the map before pooling). */
  stages?: number;
}

/** torchvision's ResNet: stem, layer1..layer4, global average pool, `fc`. */
export class ResNet extends Module {
  /** Stem convolution (7×7/s2/p3, or 3×3/s1/p1 with `smallInput`). */
  readonly conv1: Conv2d;
  /** Stem BN. */
  readonly bn1: BatchNorm2d;
  /** Stem ReLU. */
  readonly relu: ReLU;
  /** Stem max-pool (3×3/s2/p1), absent with `smallInput`. */
  readonly maxpool: MaxPool2d | null;
  /** The four stages. */
  readonly stages: [Sequential, Sequential, Sequential, Sequential];
  /** Global average pool. */
  readonly avgpool: AdaptiveAvgPool2d;
  /** Classifier `[numClasses, 512·expansion]`. */
  readonly fc: Linear;
  /** Classifier output size. */
  readonly numClasses: number;
  /** Features entering `fc`. */
  readonly numFeatures: number;
  #flatten = new Flatten(1);

  /** Builds the network with seeded torchvision-style initialisation. */
  constructor(config: ResNetConfig) {
    super();
    const numClasses = config.numClasses ?? 1000;
    const inC = config.inChannels ?? 3;
    for (const [name, v] of [["numClasses", numClasses], ["inChannels", inC]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`ResNet: ${name} must be a positive integer, got ${v}`);
      }
    }
    const rng = rngFrom(config);
    const Block = config.block === "basic" ? BasicBlock : Bottleneck;
    const expansion = Block.expansion;
    this.numClasses = numClasses;
    this.conv1 = this.registerModule(
      "conv1",
      config.smallInput
        ? new Conv2d(inC, 64, {
          kernelSize: 3,
          stride: 1,
          padding: 1,
          bias: false,
          init: "kaiming_normal",
          rng,
        })
        : new Conv2d(inC, 64, {
          kernelSize: 7,
          stride: 2,
          padding: 3,
          bias: false,
          init: "kaiming_normal",
          rng,
        }),
    );
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(64));
    this.relu = this.registerModule("relu", new ReLU());
    this.maxpool = config.smallInput
      ? null
      : this.registerModule("maxpool", new MaxPool2d(3, { stride: 2, padding: 1 }));
    let inplanes = 64;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      let downsample: Sequential | null = null;
      if (stride !== 1 || inplanes !== planes * expansion) {
        downsample = new Sequential(
          conv1x1(inplanes, planes * expansion, stride, rng),
          new BatchNorm2d(planes * expansion),
        );
      }
      const list: Module[] = [new Block(inplanes, planes, { stride, downsample, rng })];
      inplanes = planes * expansion;
      for (let i = 1; i < blocks; i++) list.push(new Block(inplanes, planes, { rng }));
      return new Sequential(...list);
    };
    const [n1, n2, n3, n4] = config.layers;
    this.stages = [
      this.registerModule("layer1", makeLayer(64, n1, 1)),
      this.registerModule("layer2", makeLayer(128, n2, 2)),
      this.registerModule("layer3", makeLayer(256, n3, 2)),
      this.registerModule("layer4", makeLayer(512, n4, 2)),
    ];
    this.avgpool = this.registerModule("avgpool", new AdaptiveAvgPool2d(1));
    this.numFeatures = 512 * expansion;
    this.fc = this.registerModule("fc", new Linear(this.numFeatures, numClasses, { rng }));
    if (config.zeroInitResidual) {
      for (const [, m] of this.namedModules()) {
        if (m instanceof ResidualBlock) fillInPlace(m.lastBn.weight, 0);
      }
    }
  }

  /** The feature map after the stem and `stages` stages (`[N, C, h, w]`). */
  forwardFeatures(x: Tensor, opts: ForwardFeaturesOptions = {}): Tensor {
    const stages = opts.stages ?? 4;
    if (!Number.isInteger(stages) || stages < 0 || stages > 4) {
      throw new RangeError(`ResNet.forwardFeatures: stages must be 0..4, got ${stages}`);
    }
    if (x.ndim !== 4 || x.shape[1] !== this.conv1.weight.shape[1]) {
      throw new RangeError(
        `ResNet: expected input [N, ${this.conv1.weight.shape[1]}, H, W], got [${
          x.shape.join(", ")
        }]`,
      );
    }
    // BN + ReLU fused (this.relu is kept for torchvision's module tree).
    let y = this.bn1.forwardRelu(this.conv1.forward(x));
    if (this.maxpool) y = this.maxpool.forward(y);
    for (let i = 0; i < stages; i++) y = this.stages[i].forward(y);
    return y;
  }

  /** `[N, C, H, W]` images → `[N, numClasses]` logits. */
  forward(x: Tensor): Tensor {
    const f = this.forwardFeatures(x);
    return this.fc.forward(this.#flatten.forward(this.avgpool.forward(f)));
  }
}

/** ResNet-18 (BasicBlock, [2, 2, 2, 2]): 11,181,642 parameters at 10 classes. */
export function resnet18(opts: ResNetOptions = {}): ResNet {
  return new ResNet({ ...opts, block: "basic", layers: [2, 2, 2, 2] });
}

/** ResNet-34 (BasicBlock, [3, 4, 6, 3]). */
export function resnet34(opts: ResNetOptions = {}): ResNet {
  return new ResNet({ ...opts, block: "basic", layers: [3, 4, 6, 3] });
}

/** ResNet-50 (Bottleneck, [3, 4, 6, 3]): 23,528,522 parameters at 10 classes. */
export function resnet50(opts: ResNetOptions = {}): ResNet {
  return new ResNet({ ...opts, block: "bottleneck", layers: [3, 4, 6, 3] });
}
