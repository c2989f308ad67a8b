/**
 * AdamW with one fused WGSL update per parameter; hyper-parameters travel in a uniform, so
 * `lr` can change between steps without recompiling anything.
 *
 * @module
 */

import adamwSrc from "../../shaders/adamw.wgsl" with { type: "text" };
import adamw4Src from "../../shaders/adamw4.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "../kernels/elementwise.ts";
import { stridedCopy } from "../kernels/copy.ts";
import { fmt, stridesOf } from "../kernels/shape.ts";

/** The update's hyper-parameters (after the element count, `n` or `n4`). */
const HYPER = {
  decay: "f32",
  beta1: "f32",
  beta2: "f32",
  omb1: "f32",
  omb2: "f32",
  step_size: "f32",
  bc2_sqrt: "f32",
  eps: "f32",
} as const;
const ADAMW = defineKernel("adamw", adamwSrc, { n: "u32", ...HYPER });
/** Parameters whose size is a multiple of 4 (nearly all): vec4s, V4 of them per invocation. */
const ADAMW4 = defineKernel("adamw4", adamw4Src, { n4: "u32", ...HYPER });
const ADAMW4_V4 = 4;
const ADAMW4_WG = 64;

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

/**
 * Per-parameter state: its step count and both moments. As in PyTorch, the moments are
 * created at the parameter's first update, so a frozen parameter (no gradient) has none.
 */
export interface AdamWParamState {
  /** Updates applied to this parameter (it skips steps where its gradient is null). */
  step: number;
  /** First moment m (null until the parameter's first update). */
  expAvg: Tensor | null;
  /** Second moment v (null until the parameter's first update). */
  expAvgSq: Tensor | null;
}

/** One parameter group as given to the constructor (an entry of PyTorch's `param_groups`). */
export interface AdamWParamGroupOptions {
  /** The group's parameters. */
  params: Tensor[];
  /** The group's learning rate (default: the optimizer's `lr`). */
  lr?: number;
  /** The group's weight decay (default: the optimizer's `weightDecay`). */
  weightDecay?: number;
}

/** A parameter group: its hyper-parameters (schedulers set `lr`) and parameter indices. */
export interface AdamWParamGroup {
  /** Learning rate of the group's next step. */
  lr: number;
  /** The lr the schedulers started from (PyTorch's `initial_lr`). */
  initialLr?: number;
  /** Decoupled weight decay of the group. */
  weightDecay: number;
  /** Indices into `AdamW.params`. */
  readonly params: readonly number[];
}

/** `AdamW.stateDict()`: hyper-parameters, and moments in parameter order (tensors shared). */
export interface AdamWStateDict {
  /** Number of `step()` calls. */
  step: number;
  /** Current learning rate (of the first group). */
  lr: number;
  /** Learning rate the schedulers started from (PyTorch's `initial_lr`), if any. */
  initialLr?: number;
  /** Moment decay rates. */
  betas: [number, number];
  /** Denominator epsilon. */
  eps: number;
  /** Weight decay (of the first group). */
  weightDecay: number;
  /** One entry per parameter, in the order given to the constructor. */
  state: AdamWParamState[];
  /** Every group (lr, initialLr, weightDecay, parameter indices); only with several groups. */
  paramGroups?: { lr: number; initialLr?: number; weightDecay: number; params: number[] }[];
}

/** What learning-rate schedulers drive: one lr, or one per parameter group. */
export interface LrOptimizer {
  /** The learning rate used by the next `step()` (the first group's when there are several). */
  lr: number;
  /** Set by the first scheduler (PyTorch's `initial_lr`). */
  initialLr?: number;
  /** Parameter groups, each scheduled on its own as PyTorch does (absent: one group). */
  readonly paramGroups?: readonly { lr: number; initialLr?: number }[];
}

/**
 * AdamW in PyTorch's order: `p ← p·(1 − lr·wd)`, then the moments, then the bias-corrected
 * step `p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps)`. Moments are long-lived GPU tensors
 * (allocated at construction, zero), freed by `dispose()`.
 */
export class AdamW implements LrOptimizer {
  /** Moment decay rates. */
  betas: [number, number];
  /** Denominator epsilon. */
  eps: number;
  /** Number of `step()` calls. */
  stepCount = 0;
  /** The parameters, in order (all groups). */
  readonly params: readonly Tensor[];
  /** The parameter groups (one unless groups were given); schedulers set each `lr`. */
  readonly paramGroups: AdamWParamGroup[];
  #state: AdamWParamState[];

  /**
   * Creates the optimizer over `params`, or over parameter groups each with its own `lr` and
   * `weightDecay` (defaults from `opts`). Moments are created at each parameter's first update.
   */
  constructor(params: Tensor[] | AdamWParamGroupOptions[], opts: AdamWOptions = {}) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 1e-2 } = opts;
    const groups: AdamWParamGroupOptions[] = params.length > 0 && params[0] instanceof Tensor
      ? [{ params: params as Tensor[] }]
      : params.length === 0
      ? [{ params: [] }]
      : params as AdamWParamGroupOptions[];
    if (!(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1)) {
      throw new RangeError(`AdamW: betas must be in [0, 1), got [${betas}]`);
    }
    if (!(eps >= 0)) throw new RangeError(`AdamW: eps must be >= 0, got ${eps}`);
    const all: Tensor[] = [];
    this.paramGroups = groups.map((g, gi) => {
      const glr = g.lr ?? lr;
      const gwd = g.weightDecay ?? weightDecay;
      const where = groups.length > 1 ? ` (group ${gi})` : "";
      if (!(glr >= 0)) throw new RangeError(`AdamW: lr must be >= 0, got ${glr}${where}`);
      if (!(gwd >= 0)) {
        throw new RangeError(`AdamW: weightDecay must be >= 0, got ${gwd}${where}`);
      }
      const indices: number[] = [];
      for (const p of g.params) {
        if (!(p instanceof Tensor)) {
          throw new TypeError(`AdamW: expected tensors or {params, lr?, weightDecay?} groups`);
        }
        if (p.dtype !== "f32") throw new TypeError(`AdamW: parameters must be f32, got ${p}`);
        if (all.includes(p)) {
          throw new RangeError(`AdamW: a parameter ${fmt(p.shape)} appears in two groups`);
        }
        indices.push(all.length);
        all.push(p);
      }
      return { lr: glr, weightDecay: gwd, params: indices };
    });
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.params = all;
    this.#state = all.map(() => ({ step: 0, expAvg: null, expAvgSq: null }));
  }

  /** The first group's learning rate (setting it sets the first group's only). */
  get lr(): number {
    return this.paramGroups[0].lr;
  }
  set lr(v: number) {
    this.paramGroups[0].lr = v;
  }

  /** The first group's `initial_lr`. */
  get initialLr(): number | undefined {
    return this.paramGroups[0].initialLr;
  }
  set initialLr(v: number | undefined) {
    this.paramGroups[0].initialLr = v;
  }

  /** The first group's weight decay. */
  get weightDecay(): number {
    return this.paramGroups[0].weightDecay;
  }
  set weightDecay(v: number) {
    this.paramGroups[0].weightDecay = v;
  }

  /** Disposes and clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * One update of every parameter that has a gradient (GPU only, no readback), with its
   * group's lr and weight decay; a parameter's moments are created (zero) at its first update.
   */
  step(): void {
    const [b1, b2] = this.betas;
    this.stepCount++;
    for (const group of this.paramGroups) {
      for (const i of group.params) {
        const p = this.params[i];
        const g = p.grad;
        if (!g) continue;
        if (g.size !== p.size) {
          throw new RangeError(
            `AdamW.step: gradient ${fmt(g.shape)} for parameter ${fmt(p.shape)}`,
          );
        }
        const s = this.#state[i];
        s.expAvg ??= fillInPlace(Tensor.empty(p.shape), 0).keep();
        s.expAvgSq ??= fillInPlace(Tensor.empty(p.shape), 0).keep();
        s.step++;
        const bc1 = 1 - b1 ** s.step;
        const bc2 = 1 - b2 ** s.step;
        const hyper = {
          decay: 1 - group.lr * group.weightDecay,
          beta1: b1,
          beta2: b2,
          omb1: 1 - b1,
          omb2: 1 - b2,
          step_size: group.lr / bc1,
          bc2_sqrt: Math.sqrt(bc2),
          eps: this.eps,
        };
        const buffers = [p.buffer, g.buffer, s.expAvg.buffer, s.expAvgSq.buffer];
        if (p.size % 4 === 0) {
          const n4 = p.size / 4;
          dispatch({
            kernel: ADAMW4.name,
            code: ADAMW4.code,
            overrides: { V4: ADAMW4_V4, WG: ADAMW4_WG },
            uniform: ADAMW4.params.pack({ n4, ...hyper }),
            buffers,
            workgroups: gridFor(Math.ceil(n4 / ADAMW4_V4), ADAMW4_WG),
          });
        } else {
          dispatch({
            kernel: ADAMW.name,
            code: ADAMW.code,
            uniform: ADAMW.params.pack({ n: p.size, ...hyper }),
            buffers,
            workgroups: gridFor(p.size, 256),
          });
        }
      }
    }
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
    if (this.paramGroups.length > 1) {
      d.paramGroups = this.paramGroups.map((g) => ({
        lr: g.lr,
        ...(g.initialLr !== undefined ? { initialLr: g.initialLr } : {}),
        weightDecay: g.weightDecay,
        params: [...g.params],
      }));
    }
    return d;
  }

  /**
   * Restores hyper-parameters, step counts and (copying on the GPU) the moments; the groups
   * must hold the same parameters. Everything is checked before anything changes.
   */
  loadStateDict(d: AdamWStateDict): void {
    if (d.state.length !== this.params.length) {
      throw new RangeError(
        `AdamW.loadStateDict: state has ${d.state.length} entries, expected ${this.params.length}`,
      );
    }
    const groups = d.paramGroups ??
      [{ lr: d.lr, initialLr: d.initialLr, weightDecay: d.weightDecay, params: null }];
    if (groups.length !== this.paramGroups.length) {
      throw new RangeError(
        `AdamW.loadStateDict: state has ${groups.length} parameter groups, expected ${this.paramGroups.length}`,
      );
    }
    groups.forEach((g, gi) => {
      const want = this.paramGroups[gi].params;
      if (g.params && (g.params.length !== want.length || g.params.some((v, j) => v !== want[j]))) {
        throw new RangeError(
          `AdamW.loadStateDict: group ${gi} holds parameters [${g.params}], expected [${want}]`,
        );
      }
    });
    d.state.forEach((src, i) => {
      for (const key of ["expAvg", "expAvgSq"] as const) {
        const t = src[key];
        if (t && t.size !== this.params[i].size) {
          throw new RangeError(
            `AdamW.loadStateDict: state[${i}].${key} has shape ${fmt(t.shape)}, expected ${
              fmt(this.params[i].shape)
            }`,
          );
        }
      }
    });
    d.state.forEach((src, i) => {
      const dst = this.#state[i];
      for (const key of ["expAvg", "expAvgSq"] as const) {
        const from = src[key];
        if (from === dst[key]) continue;
        if (!from) {
          dst[key]?.dispose();
          dst[key] = null;
          continue;
        }
        dst[key] ??= Tensor.empty(this.params[i].shape).keep();
        const s = stridesOf([from.size]);
        stridedCopy(from, dst[key]!, { shape: [from.size], srcStrides: s, dstStrides: s });
      }
      dst.step = src.step;
    });
    this.stepCount = d.step;
    groups.forEach((g, gi) => {
      const dst = this.paramGroups[gi];
      dst.lr = g.lr;
      dst.initialLr = g.initialLr;
      dst.weightDecay = g.weightDecay;
    });
    this.betas = [d.betas[0], d.betas[1]];
    this.eps = d.eps;
  }

  /** Frees the moments (not the parameters, which their module owns). */
  dispose(): void {
    for (const s of this.#state) {
      s.expAvg?.dispose();
      s.expAvgSq?.dispose();
    }
    this.#state = [];
  }
}
