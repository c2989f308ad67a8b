/**
 * Dynamic loss scaling for mixed precision: PyTorch's `torch.cuda.amp.GradScaler` with its
 * defaults (init_scale 2¹⁶, growth_factor 2, backoff_factor 0.5, growth_interval 2000), as
 * Lightning's `precision="16-mixed"` drives it: the loss is multiplied by the scale before
 * backward, the gradients are unscaled (and checked for inf/NaN) before clipping, an optimizer
 * step with non-finite gradients is skipped, and `update()` backs the scale off after such a
 * step or grows it after `growthInterval` clean steps in a row.
 *
 * NOTE: unlike PyTorch, which keeps the scale on the GPU, the scale lives on the host (an f32
 * value, updated with PyTorch's f32 arithmetic): `step` reads the found-inf flag back once per
 * optimizer step, the same synchronisation PyTorch's `scaler.step` makes with `.item()`.
 *
 * @module
 */

import unscaleSrc from "../../shaders/amp_unscale.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import { mulScalar } from "../autograd/ops.ts";

const UNSCALE = defineKernel("amp_unscale", unscaleSrc, { n: "u32", inv_scale: "f32" });

/** Constructor options of `GradScaler` (PyTorch's names, camelCase, and defaults). */
export interface GradScalerOptions {
  /** Initial scale (default 65536). */
  initScale?: number;
  /** Factor applied after `growthInterval` steps without inf/NaN (default 2). */
  growthFactor?: number;
  /** Factor applied after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Clean steps in a row before the scale grows (default 2000). */
  growthInterval?: number;
}

/** What a checkpoint keeps of a `GradScaler` (PyTorch's state_dict, plus the skip count). */
export interface GradScalerState {
  /** Current scale. */
  scale: number;
  /** Clean steps since the last growth or backoff (PyTorch's `_growth_tracker`). */
  growthTracker: number;
  /** Optimizer steps skipped so far for inf/NaN gradients. */
  skippedSteps: number;
}

/** The part of the scaler state that `update` moves. */
export interface ScaleState {
  /** Current scale (an f32 value). */
  scale: number;
  /** Clean steps since the last growth or backoff. */
  growthTracker: number;
}

/**
 * One update of the scale (PyTorch's `_amp_update_scale_`, in its f32 arithmetic): after
 * inf/NaN the scale × backoffFactor and the tracker reset; else the tracker counts, and at
 * `growthInterval` the scale × growthFactor (kept only if finite in f32) and the tracker resets.
 */
export function nextScaleState(
  s: ScaleState,
  foundInf: boolean,
  opts: Required<GradScalerOptions>,
): ScaleState {
  if (foundInf) return { scale: Math.fround(s.scale * opts.backoffFactor), growthTracker: 0 };
  const successful = s.growthTracker + 1;
  if (successful !== opts.growthInterval) return { scale: s.scale, growthTracker: successful };
  const grown = Math.fround(s.scale * opts.growthFactor);
  return { scale: Number.isFinite(grown) ? grown : s.scale, growthTracker: 0 };
}

/** The optimizer as the scaler steps it. */
export interface SteppableOptimizer {
  /** Applies one update from the parameters' gradients. */
  step(): void;
}

/** Dynamic loss scaler (see the module doc). */
export class GradScaler {
  /** Current scale (an f32 value). */
  scale: number;
  /** Clean steps since the last growth or backoff. */
  growthTracker = 0;
  /** Optimizer steps skipped for inf/NaN gradients. */
  skippedSteps = 0;
  readonly #opts: Required<GradScalerOptions>;
  /** The found-inf flag of the unscale since the last `update`, or null. */
  #found: Tensor | null = null;
  /** Whether the last `step` found inf/NaN, until `update` consumes it. */
  #lastFoundInf: boolean | null = null;

  /** Creates a scaler with PyTorch's defaults unless `opts` says otherwise. */
  constructor(opts: GradScalerOptions = {}) {
    this.#opts = {
      initScale: Math.fround(opts.initScale ?? 65536),
      growthFactor: opts.growthFactor ?? 2,
      backoffFactor: opts.backoffFactor ?? 0.5,
      growthInterval: opts.growthInterval ?? 2000,
    };
    const o = this.#opts;
    if (!(o.initScale > 0) || !(o.growthFactor > 1) || !(o.backoffFactor < 1)) {
      throw new RangeError(
        `GradScaler: expected initScale > 0, growthFactor > 1 and backoffFactor < 1, got ${o.initScale}, ${o.growthFactor}, ${o.backoffFactor}`,
      );
    }
    this.scale = o.initScale;
  }

  /** `loss · scale`, on the tape (what backward runs on). */
  scaleLoss(loss: Tensor): Tensor {
    return mulScalar(loss, this.scale);
  }

  /**
   * Divides every gradient of `params` by the scale in place and records, on the GPU, whether
   * any was inf or NaN (before clipping, as PyTorch's `unscale_`). Once per step.
   */
  unscale(params: readonly Tensor[]): void {
    if (this.#found) throw new Error("GradScaler.unscale: already called since the last update");
    const found = Tensor.fromArray(new Int32Array([0]), [1]).keep();
    this.#found = found;
    // inv_scale as PyTorch computes it: the f64 reciprocal rounded to f32.
    const inv = Math.fround(1 / this.scale);
    for (const p of params) {
      const g = p.grad;
      if (!g || g.size === 0) continue;
      dispatch({
        kernel: UNSCALE.name,
        code: UNSCALE.code,
        uniform: UNSCALE.params.pack({ n: g.size, inv_scale: inv }),
        buffers: [g.buffer, found.buffer],
        workgroups: gridFor(g.size, 256),
      });
    }
  }

  /**
   * Steps `optimizer` unless the unscaled gradients held inf/NaN (then the step is skipped
   * and counted); returns whether it stepped. Unscales first if `unscale` was not called.
   */
  async step(optimizer: SteppableOptimizer, params: readonly Tensor[]): Promise<boolean> {
    if (!this.#found) this.unscale(params);
    const foundInf = (await this.#found!.item()) !== 0;
    this.#lastFoundInf = foundInf;
    if (foundInf) {
      this.skippedSteps++;
      return false;
    }
    optimizer.step();
    return true;
  }

  /** Updates the scale after `step` (see `nextScaleState`). */
  update(): void {
    if (this.#lastFoundInf === null) {
      throw new Error("GradScaler.update: call step() first");
    }
    const next = nextScaleState(this, this.#lastFoundInf, this.#opts);
    this.scale = next.scale;
    this.growthTracker = next.growthTracker;
    this.#lastFoundInf = null;
    this.#found?.dispose();
    this.#found = null;
  }

  /** The state a checkpoint keeps. */
  stateDict(): GradScalerState {
    return {
      scale: this.scale,
      growthTracker: this.growthTracker,
      skippedSteps: this.skippedSteps,
    };
  }

  /** Restores `stateDict()` output; errors name the bad field. */
  loadStateDict(state: GradScalerState): void {
    const ok = (v: unknown, pos: boolean) =>
      typeof v === "number" && Number.isFinite(v) && (pos ? v > 0 : Number.isInteger(v) && v >= 0);
    for (
      const [k, pos] of [["scale", true], ["growthTracker", false], [
        "skippedSteps",
        false,
      ]] as const
    ) {
      if (!ok((state as unknown as Record<string, unknown>)?.[k], pos)) {
        throw new RangeError(
          `GradScaler state: ${k} expected ${pos ? "a positive number" : "an integer >= 0"}, got ${
            JSON.stringify((state as unknown as Record<string, unknown>)?.[k])
          }`,
        );
      }
    }
    this.scale = Math.fround(state.scale);
    this.growthTracker = state.growthTracker;
    this.skippedSteps = state.skippedSteps;
  }

  /** Frees the pending found-inf flag, if any. */
  dispose(): void {
    this.#found?.dispose();
    this.#found = null;
    this.#lastFoundInf = null;
  }
}
