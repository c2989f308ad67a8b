/**
 * Layers with PyTorch's names, parameter names and default initialisation: `Conv2d`,
 * `BatchNorm2d`, `Linear`, `ReLU`, `MaxPool2d`, `AdaptiveAvgPool2d`, `Flatten`,
 * `Identity`, `Sequential`.
 *
 * Parameters and buffers are long-lived GPU tensors owned by the layer (freed by
 * `dispose()`); `forward` creates new tensors, which the caller frees (usually with
 * `scope()`).
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { full } from "../kernels/elementwise.ts";
import * as ops from "../autograd/ops.ts";
import {
  adaptiveAvgPool2d,
  batchNorm2d,
  batchNormRelu,
  conv2d,
  flatten,
  linear,
  maxPool2d,
} from "../autograd/nn_ops.ts";
import { defaultUniform, fans, type InitOptions, kaimingNormalFanOut, rngFrom } from "./init.ts";
import { Module } from "./module.ts";

/** Options of `Conv2d`. */
export interface Conv2dOptions extends InitOptions {
  /** Square kernel size k (required). */
  kernelSize: number;
  /** Step of the window (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Spacing of the kernel taps (default 1). */
  dilation?: number;
  /** Adds a learnable bias (default true, like PyTorch; ResNets use false). */
  bias?: boolean;
  /**
   * Weight init: `"default"` is PyTorch's Conv2d default U(±1/√fan_in);
   * `"kaiming_normal"` is torchvision's ResNet init N(0, 2/fan_out) (fan_out = C_out·kH·kW).
   */
  init?: "default" | "kaiming_normal";
}

/** 2-D convolution (cross-correlation), NCHW, weight `[C_out, C_in, k, k]`. */
export class Conv2d extends Module {
  /** Weight `[outChannels, inChannels, k, k]`. */
  readonly weight: Tensor;
  /** Bias `[outChannels]`, or null. */
  readonly bias: Tensor | null;
  /** Step of the window. */
  readonly stride: number;
  /** Zero padding on each side. */
  readonly padding: number;
  /** Spacing of the kernel taps. */
  readonly dilation: number;

  /** Creates the layer with seeded initial weights. */
  constructor(inChannels: number, outChannels: number, opts: Conv2dOptions) {
    super();
    const kernelSize = opts.kernelSize;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    const rng = rngFrom(opts);
    const { fanIn } = fans(shape);
    const w = opts.init === "kaiming_normal"
      ? kaimingNormalFanOut(shape, rng)
      : defaultUniform(shape, fanIn, rng);
    this.weight = this.registerParameter("weight", Tensor.fromArray(w, shape));
    this.bias = (opts.bias ?? true)
      ? this.registerParameter(
        "bias",
        Tensor.fromArray(defaultUniform([outChannels], fanIn, rng), [outChannels]),
      )
      : null;
  }

  /** `[N, C_in, H, W]` → `[N, C_out, H', W']`. */
  forward(x: Tensor): Tensor {
    const y = conv2d(x, this.weight, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
    });
    if (!this.bias) return y;
    const b = ops.reshape(this.bias, [1, this.bias.size, 1, 1]);
    return ops.add(y, b);
  }
}

/** Options of `BatchNorm2d`. */
export interface BatchNorm2dOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Running-statistics momentum (default 0.1). */
  momentum?: number;
}

/**
 * Batch normalisation over N, H, W per channel. Training mode normalises with the batch
 * statistics and updates `running_mean`, `running_var` (unbiased) and
 * `num_batches_tracked` in place; eval mode uses the running statistics.
 */
export class BatchNorm2d extends Module {
  /** Scale γ `[C]` (initialised to 1). */
  readonly weight: Tensor;
  /** Shift β `[C]` (initialised to 0). */
  readonly bias: Tensor;
  /** Running mean `[C]` (buffer `running_mean`). */
  readonly runningMean: Tensor;
  /** Running variance `[C]` (buffer `running_var`). */
  readonly runningVar: Tensor;
  /** i32 scalar (buffer `num_batches_tracked`; int64 in PyTorch and in safetensors files). */
  readonly numBatchesTracked: Tensor;
  /** Added to the variance. */
  readonly eps: number;
  /** Running-statistics momentum. */
  readonly momentum: number;

  /** Creates the layer: γ = 1, β = 0, running mean 0, running variance 1. */
  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.registerParameter("weight", full([numFeatures], 1));
    this.bias = this.registerParameter("bias", full([numFeatures], 0));
    this.runningMean = this.registerBuffer("running_mean", full([numFeatures], 0));
    this.runningVar = this.registerBuffer("running_var", full([numFeatures], 1));
    this.numBatchesTracked = this.registerBuffer("num_batches_tracked", full([], 0, "i32"));
  }

  /** `[N, C, H, W]` → same shape. */
  forward(x: Tensor): Tensor {
    return batchNorm2d(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      numBatchesTracked: this.numBatchesTracked,
    }, { training: this.training, momentum: this.momentum, eps: this.eps });
  }

  /**
   * `relu(forward(x) + residual)`, or `relu(forward(x))` without `residual`, in one fused
   * kernel (`F.batchNormRelu`): same values and gradients, one pass, less memory.
   */
  forwardRelu(x: Tensor, residual?: Tensor): Tensor {
    return batchNormRelu(
      x,
      {
        weight: this.weight,
        bias: this.bias,
        runningMean: this.runningMean,
        runningVar: this.runningVar,
        numBatchesTracked: this.numBatchesTracked,
      },
      { training: this.training, momentum: this.momentum, eps: this.eps },
      residual,
    );
  }
}

/** Options of `Linear`. */
export interface LinearOptions extends InitOptions {
  /** Adds a learnable bias (default true). */
  bias?: boolean;
}

/** y = x·Wᵀ + b, weight `[out, in]`, PyTorch's default init U(±1/√in) for W and b. */
export class Linear extends Module {
  /** Weight `[outFeatures, inFeatures]`. */
  readonly weight: Tensor;
  /** Bias `[outFeatures]`, or null. */
  readonly bias: Tensor | null;

  /** Creates the layer with seeded initial weights. */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    const rng = rngFrom(opts);
    const shape = [outFeatures, inFeatures];
    this.weight = this.registerParameter(
      "weight",
      Tensor.fromArray(defaultUniform(shape, inFeatures, rng), shape),
    );
    this.bias = (opts.bias ?? true)
      ? this.registerParameter(
        "bias",
        Tensor.fromArray(defaultUniform([outFeatures], inFeatures, rng), [outFeatures]),
      )
      : null;
  }

  /** `[N, in]` → `[N, out]`. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ? { bias: this.bias } : {});
  }
}

/** max(x, 0). */
export class ReLU extends Module {
  /** Applies the rectifier. */
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

/** Passes its input through (as a view). */
export class Identity extends Module {
  /** Returns `x` unchanged (a new view, so callers may dispose either). */
  forward(x: Tensor): Tensor {
    return ops.reshape(x, x.shape);
  }
}

/** Options of `MaxPool2d`. */
export interface MaxPool2dOptions {
  /** Step of the window (default: the kernel size, like PyTorch). */
  stride?: number;
  /** −inf padding on each side (default 0). */
  padding?: number;
}

/** 2-D max pooling (ties: first maximum in row-major window order). */
export class MaxPool2d extends Module {
  /** Window size. */
  readonly kernelSize: number;
  /** Step of the window. */
  readonly stride: number;
  /** Padding on each side. */
  readonly padding: number;

  /** Creates the layer (no parameters). */
  constructor(kernelSize: number, opts: MaxPool2dOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
  }

  /** `[N, C, H, W]` → `[N, C, H', W']`. */
  forward(x: Tensor): Tensor {
    return maxPool2d(x, {
      kernelSize: this.kernelSize,
      stride: this.stride,
      padding: this.padding,
    });
  }
}

/** Adaptive average pooling to 1×1 (the mean over H·W). */
export class AdaptiveAvgPool2d extends Module {
  /** Creates the layer; only output size 1 (ResNet's head) is supported. */
  constructor(outputSize: number | [number, number] = 1) {
    super();
    const ok = Array.isArray(outputSize)
      ? outputSize[0] === 1 && outputSize[1] === 1
      : outputSize === 1;
    if (!ok) {
      throw new RangeError(`AdaptiveAvgPool2d: output size must be 1, got ${outputSize}`);
    }
  }

  /** `[N, C, H, W]` → `[N, C, 1, 1]`. */
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x);
  }
}

/** Flattens dims from `startDim` on (default 1, like `nn.Flatten`). */
export class Flatten extends Module {
  /** First flattened dim. */
  readonly startDim: number;

  /** Creates the layer. */
  constructor(startDim = 1) {
    super();
    this.startDim = startDim;
  }

  /** `[N, C, H, W]` → `[N, C·H·W]` (for startDim 1). */
  forward(x: Tensor): Tensor {
    return flatten(x, { startDim: this.startDim });
  }
}

/** Runs its children in order; they are named "0", "1", … like `nn.Sequential`. */
export class Sequential extends Module {
  #layers: Module[];

  /** Chains `layers`. */
  constructor(...layers: Module[]) {
    super();
    this.#layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  /** Number of children. */
  get length(): number {
    return this.#layers.length;
  }

  /** The child at `index`. */
  at(index: number): Module {
    const m = this.#layers.at(index);
    if (!m) {
      throw new RangeError(`Sequential: index ${index} out of range for ${this.length} layers`);
    }
    return m;
  }

  /** Applies each child in turn (intermediates belong to the enclosing scope). */
  forward(x: Tensor): Tensor {
    if (this.#layers.length === 0) return ops.reshape(x, x.shape);
    let y = x;
    for (const m of this.#layers) y = m.forward(y);
    return y;
  }
}
