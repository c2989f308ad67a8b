/**
 * Learning-rate schedulers reproducing PyTorch 1.13's `LinearLR`, `CosineAnnealingLR` and
 * `SequentialLR` value for value: the recursive (chainable) form that reads the optimizer's
 * current lr, the closed form when a milestone restarts a scheduler, and the same
 * construction-time side effects (`initialLr`, the initial step).
 *
 * @module
 */

import type { LrOptimizer } from "./adamw.ts";

/** Serialisable scheduler state (plain JSON). */
export interface LrSchedulerState {
  /** Epoch index of the current lr (PyTorch's `last_epoch`). */
  lastEpoch: number;
  /** Steps taken, the initial one included (PyTorch's `_step_count`). */
  stepCount: number;
  /** The lr the schedule starts from (`base_lrs[0]`). */
  baseLr: number;
  /** The lr set by the last step. */
  lastLr: number;
  /** Every group's base lr; only with several parameter groups. */
  baseLrs?: number[];
  /** Every group's last lr; only with several parameter groups. */
  lastLrs?: number[];
}

/** Serialisable `SequentialLR` state. */
export interface SequentialLrState {
  /** Epoch index of the current lr. */
  lastEpoch: number;
  /** Epochs at which the next scheduler takes over. */
  milestones: number[];
  /** The lr set by the last step. */
  lastLr: number;
  /** Every group's last lr; only with several parameter groups. */
  lastLrs?: number[];
  /** States of the wrapped schedulers, in order. */
  schedulers: LrSchedulerState[];
}

/** Python's `a % b` (the sign of b). */
function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** The groups a scheduler drives: the optimizer's parameter groups, or the optimizer itself. */
export function lrGroups(o: LrOptimizer): readonly { lr: number; initialLr?: number }[] {
  return o.paramGroups && o.paramGroups.length > 0 ? o.paramGroups : [o];
}

/**
 * Base of the epoch schedulers (PyTorch's `_LRScheduler`): each parameter group is scheduled
 * on its own, from its own `initial_lr` and current lr, as PyTorch does for `param_groups`.
 */
export abstract class LrScheduler {
  /** The optimizer whose `lr` (or groups' `lr`) this scheduler sets. */
  readonly optimizer: LrOptimizer;
  /** Every group's base lr (PyTorch's `base_lrs`). */
  baseLrs: number[];
  /** Epoch index of the current lr. */
  lastEpoch: number = -1;
  /** Steps taken, the initial one included. */
  stepCount: number = 0;
  #lastLrs: number[];

  /**
   * Records `initialLr` on each group (first scheduler only). Subclasses end their
   * constructor with `initialStep()`, once their own fields are set (PyTorch's order).
   */
  constructor(optimizer: LrOptimizer) {
    this.optimizer = optimizer;
    const groups = lrGroups(optimizer);
    for (const g of groups) g.initialLr ??= g.lr;
    this.baseLrs = groups.map((g) => g.initialLr!);
    this.#lastLrs = groups.map((g) => g.lr);
  }

  /** The first group's base lr. */
  get baseLr(): number {
    return this.baseLrs[0];
  }

  /** The recursive lr for `lastEpoch`, from a group's current lr and base lr. */
  protected abstract getLr(lr: number, baseLr: number): number;

  /** The closed-form lr for `lastEpoch` of a group with base lr `baseLr`. */
  protected abstract closedFormLr(baseLr: number): number;

  /** Resets the step count and takes one step (PyTorch's `_initial_step`). */
  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /**
   * Advances one epoch and sets the optimizer's lr. With `epoch`, jumps there and uses the
   * closed form (what `SequentialLR` does at a milestone).
   */
  step(epoch?: number): void {
    this.stepCount++;
    if (epoch === undefined) this.lastEpoch++;
    else this.lastEpoch = epoch;
    const groups = lrGroups(this.optimizer);
    this.#lastLrs = groups.map((g, i) => {
      g.lr = epoch === undefined
        ? this.getLr(g.lr, this.baseLrs[i])
        : this.closedFormLr(this.baseLrs[i]);
      return g.lr;
    });
  }

  /** The lr set by the last step, one per group (PyTorch's `get_last_lr()`). */
  getLastLr(): number[] {
    return [...this.#lastLrs];
  }

  /** Plain-JSON state (with one group, the same fields as before groups existed). */
  stateDict(): LrSchedulerState {
    const d: LrSchedulerState = {
      lastEpoch: this.lastEpoch,
      stepCount: this.stepCount,
      baseLr: this.baseLrs[0],
      lastLr: this.#lastLrs[0],
    };
    if (this.baseLrs.length > 1) {
      d.baseLrs = [...this.baseLrs];
      d.lastLrs = [...this.#lastLrs];
    }
    return d;
  }

  /** Restores a state from `stateDict()` (does not touch the optimizer's lr). */
  loadStateDict(d: LrSchedulerState): void {
    const n = this.baseLrs.length;
    const base = d.baseLrs ?? [d.baseLr];
    const last = d.lastLrs ?? [d.lastLr];
    if (base.length !== n || last.length !== n) {
      throw new RangeError(
        `${this.constructor.name}.loadStateDict: state has ${base.length} parameter groups, expected ${n}`,
      );
    }
    this.lastEpoch = d.lastEpoch;
    this.stepCount = d.stepCount;
    this.baseLrs = [...base];
    this.#lastLrs = [...last];
  }
}

/** Options of `LinearLR`. */
export interface LinearLrOptions {
  /** Factor at epoch 0 (default 1/3), in (0, 1]. */
  startFactor?: number;
  /** Factor from `totalIters` on (default 1), in [0, 1]. */
  endFactor?: number;
  /** Epochs of the ramp (default 5). */
  totalIters?: number;
}

/** Linear ramp of the lr factor from `startFactor` to `endFactor` over `totalIters` epochs. */
export class LinearLR extends LrScheduler {
  /** Factor at epoch 0. */
  readonly startFactor: number;
  /** Final factor. */
  readonly endFactor: number;
  /** Ramp length in epochs. */
  readonly totalIters: number;

  /** Sets the optimizer's lr to `lr·startFactor`. */
  constructor(optimizer: LrOptimizer, opts: LinearLrOptions = {}) {
    const { startFactor = 1 / 3, endFactor = 1, totalIters = 5 } = opts;
    if (!(startFactor > 0 && startFactor <= 1)) {
      throw new RangeError(`LinearLR: startFactor must be in (0, 1], got ${startFactor}`);
    }
    if (!(endFactor >= 0 && endFactor <= 1)) {
      throw new RangeError(`LinearLR: endFactor must be in [0, 1], got ${endFactor}`);
    }
    if (!(Number.isInteger(totalIters) && totalIters >= 1)) {
      throw new RangeError(`LinearLR: totalIters must be an integer >= 1, got ${totalIters}`);
    }
    super(optimizer);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = totalIters;
    this.initialStep();
  }

  /** The chainable lr for `lastEpoch` (PyTorch's `get_lr`). */
  protected getLr(lr: number, _baseLr: number): number {
    const { startFactor: s, endFactor: e, totalIters: n } = this;
    if (this.lastEpoch === 0) return lr * s;
    if (this.lastEpoch > n) return lr;
    return lr * (1 + (e - s) / (n * s + (this.lastEpoch - 1) * (e - s)));
  }

  /** The closed-form lr for `lastEpoch` (PyTorch's `_get_closed_form_lr`). */
  protected closedFormLr(baseLr: number): number {
    const { startFactor: s, endFactor: e, totalIters: n } = this;
    return baseLr * (s + (e - s) * Math.min(n, this.lastEpoch) / n);
  }
}

/** Options of `CosineAnnealingLR`. */
export interface CosineAnnealingLrOptions {
  /** Half period in epochs. */
  tMax: number;
  /** Minimum lr (default 0). */
  etaMin?: number;
}

/** Cosine annealing from the base lr to `etaMin` over `tMax` epochs (PyTorch's recursion). */
export class CosineAnnealingLR extends LrScheduler {
  /** Half period in epochs. */
  readonly tMax: number;
  /** Minimum lr. */
  readonly etaMin: number;

  /** Leaves the optimizer's lr as it is (the initial step at epoch 0 keeps it). */
  constructor(optimizer: LrOptimizer, opts: CosineAnnealingLrOptions) {
    const { tMax, etaMin = 0 } = opts;
    if (!(Number.isInteger(tMax) && tMax >= 1)) {
      throw new RangeError(`CosineAnnealingLR: tMax must be an integer >= 1, got ${tMax}`);
    }
    super(optimizer);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.initialStep();
  }

  /** The chainable lr for `lastEpoch` (PyTorch's `get_lr`). */
  protected getLr(lr: number, base: number): number {
    const e = this.lastEpoch;
    if (e === 0) return lr;
    const { tMax: t, etaMin: eta } = this;
    if (this.stepCount === 1 && e > 0) {
      return eta + (base - eta) * (1 + Math.cos(e * Math.PI / t)) / 2;
    }
    if (pyMod(e - 1 - t, 2 * t) === 0) {
      return lr + (base - eta) * (1 - Math.cos(Math.PI / t)) / 2;
    }
    return (1 + Math.cos(Math.PI * e / t)) / (1 + Math.cos(Math.PI * (e - 1) / t)) *
        (lr - eta) + eta;
  }

  /** The closed-form lr for `lastEpoch` (PyTorch's `_get_closed_form_lr`). */
  protected closedFormLr(base: number): number {
    const { tMax: t, etaMin: eta } = this;
    return eta + (base - eta) * (1 + Math.cos(Math.PI * this.lastEpoch / t)) / 2;
  }
}

/**
 * Runs `schedulers[i]` from `milestones[i − 1]` on; at a milestone the next scheduler restarts
 * at epoch 0 in closed form (so the cosine starts exactly at the base lr).
 */
export class SequentialLR {
  /** The optimizer whose `lr` the schedulers set. */
  readonly optimizer: LrOptimizer;
  /** The wrapped schedulers. */
  readonly schedulers: LrScheduler[];
  /** Epochs at which the next scheduler takes over (ascending). */
  readonly milestones: number[];
  /** Epoch index of the current lr. */
  lastEpoch: number;
  #lastLrs: number[];

  /** As PyTorch: resets the lr to `initialLr`, undoes the schedulers' initial steps, re-steps the first. */
  constructor(optimizer: LrOptimizer, schedulers: LrScheduler[], milestones: number[]) {
    if (schedulers.length === 0) {
      throw new RangeError("SequentialLR: expected at least 1 scheduler, got 0");
    }
    if (milestones.length !== schedulers.length - 1) {
      throw new RangeError(
        `SequentialLR: expected ${
          schedulers.length - 1
        } milestones for ${schedulers.length} schedulers, got ${milestones.length}`,
      );
    }
    for (const s of schedulers) {
      if (s.optimizer !== optimizer) {
        throw new Error("SequentialLR: every scheduler must drive the optimizer passed in");
      }
    }
    this.optimizer = optimizer;
    this.schedulers = schedulers;
    this.milestones = [...milestones];
    this.lastEpoch = 0;
    for (const g of lrGroups(optimizer)) g.lr = g.initialLr ?? g.lr;
    for (const s of schedulers) s.lastEpoch -= 1;
    schedulers[0].initialStep();
    this.#lastLrs = schedulers[0].getLastLr();
  }

  /** Advances one epoch (call once after each epoch, including the last). */
  step(): void {
    this.lastEpoch++;
    let idx = 0;
    while (idx < this.milestones.length && this.milestones[idx] <= this.lastEpoch) idx++;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.#lastLrs = s.getLastLr();
  }

  /** The lr set by the last step, one per group (PyTorch's `get_last_lr()`). */
  getLastLr(): number[] {
    return [...this.#lastLrs];
  }

  /** Plain-JSON state, the wrapped schedulers' included. */
  stateDict(): SequentialLrState {
    return {
      lastEpoch: this.lastEpoch,
      milestones: [...this.milestones],
      lastLr: this.#lastLrs[0],
      ...(this.#lastLrs.length > 1 ? { lastLrs: [...this.#lastLrs] } : {}),
      schedulers: this.schedulers.map((s) => s.stateDict()),
    };
  }

  /** Restores a state from `stateDict()` (does not touch the optimizer's lr). */
  loadStateDict(d: SequentialLrState): void {
    if (d.schedulers.length !== this.schedulers.length) {
      throw new RangeError(
        `SequentialLR.loadStateDict: ${d.schedulers.length} scheduler states, expected ${this.schedulers.length}`,
      );
    }
    d.schedulers.forEach((s, i) => this.schedulers[i].loadStateDict(s));
    this.lastEpoch = d.lastEpoch;
    this.#lastLrs = d.lastLrs ? [...d.lastLrs] : [d.lastLr];
  }
}
