/**
 * The model hyperparameters, each declared once: its type and doc in an interface, its range
 * and default in the schema entry typed against that interface. The training config composes
 * these into its `model`, `optimizer` and `scheduler` sections; `BaseClassificationModel`
 * checks what API users pass with the same schemas, so both accept the same values and
 * default to the same numbers.
 *
 * Adding a hyperparameter: a field in one of the interfaces below and its schema entry (the
 * type checker insists on both), then the code that uses it. The config section, its
 * default, its validation, the model option, `hparams` and the CLI's model options follow.
 *
 * @module
 */

import type { z } from "zod";
import { checkWith, type Fields, nonNegInt, num, obj } from "../config/field.ts";

/** AdamW hyperparameters (the config's `optimizer` section). */
export interface OptimizerHparams {
  /** AdamW learning rate: the peak, reached after warm-up. */
  learningRate: number;
  /** AdamW decoupled weight decay. */
  weightDecay: number;
}

/** Learning-rate schedule hyperparameters (the config's `scheduler` section). */
export interface SchedulerHparams {
  /** Epochs of LinearLR warm-up (0: none — unlike PyTorch's SequentialLR, see REFERENCE.md). */
  warmupEpochs: number;
  /** LinearLR start factor of the warm-up. */
  warmupStartFactor: number;
  /** Cosine floor as a fraction of the learning rate (eta_min = lr · factor). */
  cosineEtaMinFactor: number;
}

/** Loss hyperparameters (in the config's `model` section). */
export interface LossHparams {
  /** CrossEntropyLoss label smoothing ε. */
  labelSmoothing: number;
}

/** Every hyperparameter a classification model takes besides `numClasses`. */
export interface ModelHparams extends OptimizerHparams, SchedulerHparams, LossHparams {}

/** Ranges and defaults of {@link OptimizerHparams}. */
export const OPTIMIZER_HPARAMS: Fields<OptimizerHparams> = {
  // torch.optim.AdamW accepts lr >= 0 (`if not 0.0 <= lr: raise ValueError`); so do we.
  learningRate: num("a number >= 0", (v) => v >= 0).default(1e-4),
  // torch.optim.AdamW: `0.0 <= weight_decay`.
  weightDecay: num("a number >= 0", (v) => v >= 0).default(1e-4),
};

/** Ranges and defaults of {@link SchedulerHparams}. */
export const SCHEDULER_HPARAMS: Fields<SchedulerHparams> = {
  warmupEpochs: nonNegInt().default(5),
  // torch.optim.lr_scheduler.LinearLR rejects start_factor > 1 or <= 0.
  warmupStartFactor: num("a number in (0, 1]", (v) => v > 0 && v <= 1).default(1e-3),
  // CosineAnnealingLR checks no eta_min; the factor is a fraction of lr by definition.
  cosineEtaMinFactor: num("a number in [0, 1]", (v) => v >= 0 && v <= 1).default(0.05),
};

/** Ranges and defaults of {@link LossHparams}. */
export const LOSS_HPARAMS: Fields<LossHparams> = {
  // torch.nn.CrossEntropyLoss accepts 0.0 <= label_smoothing <= 1.0 (the kernel does too).
  labelSmoothing: num("a number in [0, 1]", (v) => v >= 0 && v <= 1).default(0.1),
};

/** Ranges and defaults of {@link ModelHparams}. */
export const MODEL_HPARAMS: Fields<ModelHparams> = {
  ...OPTIMIZER_HPARAMS,
  ...SCHEDULER_HPARAMS,
  ...LOSS_HPARAMS,
};

const MODEL_HPARAMS_SCHEMA: z.ZodType<ModelHparams> = obj(MODEL_HPARAMS);

/**
 * Checks the hyperparameters an API user passes (absent ones take their defaults); unknown
 * keys are ignored here, as subclasses pass their own options alongside. Throws a
 * `RangeError` naming `owner` and the field.
 */
export function checkModelHparams(owner: string, opts: Partial<ModelHparams>): ModelHparams {
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(MODEL_HPARAMS)) {
    const v = (opts as Record<string, unknown>)[k];
    if (v !== undefined) picked[k] = v;
  }
  return checkWith(
    MODEL_HPARAMS_SCHEMA,
    picked,
    (path, message) => new RangeError(`${owner}: ${path}: ${message}`),
  );
}

/** The hyperparameters of a model built from the config sections that hold them. */
export function hparamsOf(sections: {
  optimizer: OptimizerHparams;
  scheduler: SchedulerHparams;
  model: LossHparams;
}): ModelHparams {
  const out: Record<string, unknown> = {};
  for (
    const [keys, from] of [
      [OPTIMIZER_HPARAMS, sections.optimizer],
      [SCHEDULER_HPARAMS, sections.scheduler],
      [LOSS_HPARAMS, sections.model],
    ] as const
  ) {
    for (const k of Object.keys(keys)) out[k] = (from as unknown as Record<string, unknown>)[k];
  }
  return out as unknown as ModelHparams;
}
