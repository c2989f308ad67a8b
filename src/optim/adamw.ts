/**
 * AdamW with one fused WGSL update per parameter; hyper-parameters travel in a uniform, so
 * `lr` can change between steps without recompiling anything.
 *
 * @module
 */

import adamwSrc from "../../shaders/adamw.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "../kernels/elementwise.ts";
import { stridedCopy } from "../kernels/copy.ts";
import { fmt, stridesOf } from "../kernels/shape.ts";

const ADAMW = defineKernel("adamw", adamwSrc, {
  n: "u32",
  decay: "f32",
  beta1: "f32",
  beta2: "f32",
  omb1: "f32",
  omb2: "f32",
  step_size: "f32",
  bc2_sqrt: "f32",
  eps: "f32",
});

/** Options of `AdamW` (PyTorch's names and defaults). */
export interface AdamWOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Moment decay rates (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator, outside the square root (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 1e-2). */
  weightDecay?: number;
}

/** Per-parameter state: its step count and both moments. */
export interface AdamWParamState {
  /** Updates applied to this parameter (it skips steps where its gradient is null). */
  step: number;
  /** First moment m. */
  expAvg: Tensor;
  /** Second moment v. */
  expAvgSq: Tensor;
}

/** `AdamW.stateDict()`: hyper-parameters, and moments in parameter order (tensors shared). */
export interface AdamWStateDict {
  /** Number of `step()` calls. */
  step: number;
  /** Current learning rate. */
  lr: number;
  /** Learning rate the schedulers started from (PyTorch's `initial_lr`), if any. */
  initialLr?: number;
  /** Moment decay rates. */
  betas: [number, number];
  /** Denominator epsilon. */
  eps: number;
  /** Weight decay. */
  weightDecay: number;
  /** One entry per parameter, in the order given to the constructor. */
  state: AdamWParamState[];
}

/** What learning-rate schedulers drive (PyTorch's single param group). */
export interface LrOptimizer {
  /** The learning rate used by the next `step()`. */
  lr: number;
  /** Set by the first scheduler (PyTorch's `initial_lr`). */
  initialLr?: number;
}

/**
 * AdamW in PyTorch's order: `p ← p·(1 − lr·wd)`, then the moments, then the bias-corrected
 * step `p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)`. Moments are long-lived GPU tensors
 * (allocated at construction, zero), freed by `dispose()`.
 */
export class AdamW implements LrOptimizer {
  /** Learning rate of the next step (schedulers set it; so may the caller). */
  lr: number;
  /** Learning rate the schedulers started from (PyTorch's `initial_lr`). */
  initialLr?: number;
  /** Moment decay rates. */
  betas: [number, number];
  /** Denominator epsilon. */
  eps: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Number of `step()` calls. */
  stepCount = 0;
  /** The parameters, in order. */
  readonly params: readonly Tensor[];
  #state: AdamWParamState[];

  /** Creates the optimizer and zeroed moments for `params`. */
  constructor(params: Tensor[], opts: AdamWOptions = {}) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 1e-2 } = opts;
    if (!(lr >= 0)) throw new RangeError(`AdamW: lr must be >= 0, got ${lr}`);
    if (!(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1)) {
      throw new RangeError(`AdamW: betas must be in [0, 1), got [${betas}]`);
    }
    if (!(eps >= 0)) throw new RangeError(`AdamW: eps must be >= 0, got ${eps}`);
    if (!(weightDecay >= 0)) {
      throw new RangeError(`AdamW: weightDecay must be >= 0, got ${weightDecay}`);
    }
    for (const p of params) {
      if (p.dtype !== "f32") throw new TypeError(`AdamW: parameters must be f32, got ${p}`);
    }
    this.lr = lr;
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.params = [...params];
    this.#state = this.params.map((p) => ({
      step: 0,
      expAvg: fillInPlace(Tensor.empty(p.shape), 0).keep(),
      expAvgSq: fillInPlace(Tensor.empty(p.shape), 0).keep(),
    }));
  }

  /** Disposes and clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** One update of every parameter that has a gradient (GPU only, no readback). */
  step(): void {
    const [b1, b2] = this.betas;
    this.stepCount++;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) {
        throw new RangeError(`AdamW.step: gradient ${fmt(g.shape)} for parameter ${fmt(p.shape)}`);
      }
      const s = this.#state[i];
      s.step++;
      const bc1 = 1 - b1 ** s.step;
      const bc2 = 1 - b2 ** s.step;
      dispatch({
        kernel: ADAMW.name,
        code: ADAMW.code,
        uniform: ADAMW.params.pack({
          n: p.size,
          decay: 1 - this.lr * this.weightDecay,
          beta1: b1,
          beta2: b2,
          omb1: 1 - b1,
          omb2: 1 - b2,
          step_size: this.lr / bc1,
          bc2_sqrt: Math.sqrt(bc2),
          eps: this.eps,
        }),
        buffers: [p.buffer, g.buffer, s.expAvg.buffer, s.expAvgSq.buffer],
        workgroups: gridFor(p.size, 256),
      });
    });
  }

  /** Hyper-parameters and moments; the tensors are shared with the optimizer, not copied. */
  stateDict(): AdamWStateDict {
    const d: AdamWStateDict = {
      step: this.stepCount,
      lr: this.lr,
      betas: [...this.betas],
      eps: this.eps,
      weightDecay: this.weightDecay,
      state: this.#state.map((s) => ({ ...s })),
    };
    if (this.initialLr !== undefined) d.initialLr = this.initialLr;
    return d;
  }

  /** Restores hyper-parameters, step counts and (copying on the GPU) the moments. */
  loadStateDict(d: AdamWStateDict): void {
    if (d.state.length !== this.params.length) {
      throw new RangeError(
        `AdamW.loadStateDict: state has ${d.state.length} entries, expected ${this.params.length}`,
      );
    }
    d.state.forEach((src, i) => {
      const dst = this.#state[i];
      for (const key of ["expAvg", "expAvgSq"] as const) {
        if (src[key].size !== dst[key].size) {
          throw new RangeError(
            `AdamW.loadStateDict: state[${i}].${key} has shape ${fmt(src[key].shape)}, expected ${
              fmt(dst[key].shape)
            }`,
          );
        }
      }
    });
    d.state.forEach((src, i) => {
      const dst = this.#state[i];
      for (const key of ["expAvg", "expAvgSq"] as const) {
        if (src[key] === dst[key]) continue;
        const s = stridesOf([dst[key].size]);
        stridedCopy(src[key], dst[key], { shape: [dst[key].size], srcStrides: s, dstStrides: s });
      }
      dst.step = src.step;
    });
    this.stepCount = d.step;
    this.lr = d.lr;
    this.initialLr = d.initialLr;
    this.betas = [d.betas[0], d.betas[1]];
    this.eps = d.eps;
    this.weightDecay = d.weightDecay;
  }

  /** Frees the moments (not the parameters, which their module owns). */
  dispose(): void {
    for (const s of this.#state) {
      s.expAvg.dispose();
      s.expAvgSq.dispose();
    }
    this.#state = [];
  }
}
