/**
 * `BaseClassificationModel`: the Lightning module of the seed project in TypeScript. It owns
 * the loss (weighted, label-smoothed cross-entropy), the accuracy metrics, the logging of the
 * seed's metric names, and `configureOptimizers` (AdamW + linear warm-up + cosine decay).
 * Subclasses provide the backbone with `setBackbone()`.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import { crossEntropy, type CrossEntropyOptions } from "../autograd/loss.ts";
import { Module } from "../nn/module.ts";
import { ConfusionMatrix } from "../metrics/confusion.ts";
import { MulticlassAccuracy } from "../metrics/accuracy.ts";
import { AdamW } from "../optim/adamw.ts";
import {
  CosineAnnealingLR,
  LinearLR,
  type LrScheduler,
  SequentialLR,
} from "../optim/lr_scheduler.ts";
import type { Batch, LogOptions, LogSink } from "./types.ts";
import { checkModelHparams, type ModelHparams } from "./hparams.ts";
import { loadPretrained, type LoadPretrainedOptions, type PretrainedReport } from "./pretrained.ts";
import { type ParamGroupRule, paramGroupsFor } from "./freeze.ts";

export type { LossHparams, ModelHparams, OptimizerHparams, SchedulerHparams } from "./hparams.ts";

/**
 * Constructor options shared by every classification model: `numClasses` and the
 * hyperparameters of {@link ModelHparams}; an absent one takes its default from
 * `models/hparams.ts` (the same declaration the training config uses).
 */
export interface BaseClassificationModelOptions extends Partial<ModelHparams> {
  /** Number of classes C (43 in production, 3 in test fixtures). */
  numClasses: number;
}

/** A JSON value (what `hparams` may hold). */
export type JsonValue = string | number | boolean | null | JsonValue[] | {
  [k: string]: JsonValue;
};

/** The hyper-parameters saved with checkpoints: the model name and every option, defaults filled. */
export interface ClassificationHparams extends ModelHparams {
  /** Registry name of the model ("resnet18", …). */
  name: string;
  /** Number of classes. */
  numClasses: number;
  /** Subclass options (`smallInput`, `inChannels`, `seed`, …). */
  [key: string]: JsonValue;
}

/** What `configureOptimizers` returns; step the scheduler once after every epoch. */
export interface OptimizerConfig {
  /** AdamW over `parameters()`. */
  optimizer: AdamW;
  /** The per-epoch learning-rate schedule driving `optimizer.lr`. */
  scheduler: SequentialLR;
}

function checkNumber(name: string, v: number, ok: (v: number) => boolean, want: string): number {
  if (typeof v !== "number" || !ok(v)) {
    throw new RangeError(`BaseClassificationModel: ${name} must be ${want}, got ${v}`);
  }
  return v;
}

/**
 * The base of every classification model (Lightning semantics; the trainer drives it):
 *
 * - `forward(x)` runs the backbone, registered as the child `model` so state-dict keys match
 *   the seed's Lightning checkpoints (`model.conv1.weight`, …); `class_weights` is a buffer.
 * - `trainingStep` returns the scalar loss on the tape and logs `train/loss`;
 *   `validationStep` / `testStep` run under `noGrad` and log `val/loss` / `test/loss`.
 *   The trainer switches `train()` / `eval()` and wraps each step in a `scope()`.
 * - Metrics accumulate on the GPU; the `on*EpochEnd` hooks read them back once, log
 *   `train/acc_top1`, `val/acc_top1`, `val/acc_top5`, `val/acc_class_{i}` (test likewise) as
 *   numbers, and reset them. Top-5 uses k = min(5, numClasses).
 */
export abstract class BaseClassificationModel extends Module {
  /** Hyper-parameters for checkpoints (plain JSON). */
  readonly hparams: ClassificationHparams;
  /** Number of classes. */
  readonly numClasses: number;
  /** k of the "top-5" metrics: min(5, numClasses). */
  readonly topK: number;
  /** Training top-1 accuracy (micro). */
  readonly trainTop1: MulticlassAccuracy;
  /** Validation top-1 accuracy (micro). */
  readonly valTop1: MulticlassAccuracy;
  /** Validation top-k accuracy (micro, k = `topK`). */
  readonly valTop5: MulticlassAccuracy;
  /** Validation per-class top-1 recall. */
  readonly valPerCls: MulticlassAccuracy;
  /** Test top-1 accuracy (micro). */
  readonly testTop1: MulticlassAccuracy;
  /** Test top-k accuracy (micro). */
  readonly testTop5: MulticlassAccuracy;
  /** Test per-class top-1 recall. */
  readonly testPerCls: MulticlassAccuracy;
  /** Validation confusion matrix of the current epoch (reset by `onValidationEpochEnd`). */
  readonly valConfusion: ConfusionMatrix;
  /** Test confusion matrix of the current epoch (reset by `onTestEpochEnd`). */
  readonly testConfusion: ConfusionMatrix;
  #sink: LogSink | null = null;
  #lossOpts: CrossEntropyOptions;
  #backbone: Module | null = null;
  #classWeights: Tensor;

  /**
   * Validates the options, registers `class_weights` (ones) and creates the metrics.
   * `extra` holds subclass options recorded in `hparams` (JSON values).
   */
  constructor(
    name: string,
    opts: BaseClassificationModelOptions,
    extra: Record<string, JsonValue> = {},
  ) {
    super();
    const c = checkNumber(
      "numClasses",
      opts.numClasses,
      (v) => Number.isInteger(v) && v >= 1,
      "an integer >= 1",
    );
    this.hparams = {
      ...extra,
      name,
      numClasses: c,
      ...checkModelHparams("BaseClassificationModel", opts),
    };
    this.numClasses = c;
    this.topK = Math.min(5, c);
    this.#classWeights = this.registerBuffer(
      "class_weights",
      Tensor.fromArray(new Float32Array(c).fill(1), [c]),
    );
    this.#lossOpts = this.#buildLoss();
    const acc = (topK: number, average: "micro" | "none") =>
      new MulticlassAccuracy({ numClasses: c, topK, average });
    this.trainTop1 = acc(1, "micro");
    this.valTop1 = acc(1, "micro");
    this.valTop5 = acc(this.topK, "micro");
    this.valPerCls = acc(1, "none");
    this.testTop1 = acc(1, "micro");
    this.testTop5 = acc(this.topK, "micro");
    this.testPerCls = acc(1, "none");
    this.valConfusion = new ConfusionMatrix({ numClasses: c });
    this.testConfusion = new ConfusionMatrix({ numClasses: c });
  }

  /** Registers the backbone as the child `model` (state-dict keys `model.…`); call once. */
  protected setBackbone(m: Module): void {
    if (this.#backbone) throw new Error(`${this.constructor.name}: the backbone is already set`);
    this.registerModule("model", m);
    this.#backbone = m;
  }

  /** The backbone module (the child named `model`). */
  get model(): Module {
    if (!this.#backbone) {
      throw new Error(`${this.constructor.name}: no backbone (a subclass must call setBackbone)`);
    }
    return this.#backbone;
  }

  /** Logits `[N, C]` for images `[N, C_in, H, W]`. */
  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }

  /** The `class_weights` buffer, f32 `[C]` (ones until `setClassWeights`). */
  get classWeights(): Tensor {
    return this.#classWeights;
  }

  #buildLoss(): CrossEntropyOptions {
    return {
      weight: this.classWeights,
      labelSmoothing: this.hparams.labelSmoothing,
      reduction: "mean",
    };
  }

  /**
   * Replaces the class weights (from the data module, after its setup) and rebuilds the
   * loss. Each weight must be finite and >= 0, with a positive sum.
   */
  setClassWeights(w: ArrayLike<number>): void {
    if (w.length !== this.numClasses) {
      throw new RangeError(
        `setClassWeights: expected ${this.numClasses} weights, got ${w.length}`,
      );
    }
    let sum = 0;
    for (let i = 0; i < w.length; i++) {
      if (!(Number.isFinite(w[i]) && w[i] >= 0)) {
        throw new RangeError(`setClassWeights: weight ${i} must be finite and >= 0, got ${w[i]}`);
      }
      sum += w[i];
    }
    if (!(sum > 0)) throw new RangeError("setClassWeights: expected a positive weight, got all 0");
    this.#classWeights = this.replaceBuffer(
      "class_weights",
      Tensor.fromArray(Float32Array.from(w), [this.numClasses]),
    );
    this.#lossOpts = this.#buildLoss();
  }

  /** The training loss: weighted, label-smoothed cross-entropy, mean over the batch. */
  computeLoss(logits: Tensor, labels: Tensor): Tensor {
    return crossEntropy(logits, labels, this.#lossOpts);
  }

  /** Sets (or clears) where `log()` sends values; the trainer installs its sink. */
  setLogger(sink: LogSink | null): void {
    this.#sink = sink;
  }

  /** Sends one value to the sink (ignored without one). */
  protected log(name: string, value: Tensor | number, options: LogOptions = {}): void {
    this.#sink?.log(name, value, options);
  }

  /** Forward + loss on a training batch; returns the scalar loss on the tape. */
  trainingStep(batch: Batch, _batchIdx: number): Tensor {
    const logits = this.forward(batch.images);
    const loss = this.computeLoss(logits, batch.labels);
    this.trainTop1.update(logits, batch.labels);
    this.log("train/loss", loss, {
      onStep: true,
      onEpoch: true,
      progBar: true,
      batchSize: batch.labels.shape[0],
    });
    return loss;
  }

  #evalStep(stage: "val" | "test", batch: Batch): void {
    noGrad(() => {
      const logits = this.forward(batch.images);
      const loss = this.computeLoss(logits, batch.labels);
      const [top1, top5, perCls, conf] = stage === "val"
        ? [this.valTop1, this.valTop5, this.valPerCls, this.valConfusion]
        : [this.testTop1, this.testTop5, this.testPerCls, this.testConfusion];
      for (const m of [top1, top5, perCls, conf]) m.update(logits, batch.labels);
      this.log(`${stage}/loss`, loss, {
        onStep: false,
        onEpoch: true,
        batchSize: batch.labels.shape[0],
      });
    });
  }

  /** Loss and metrics on a validation batch, without recording gradients. */
  validationStep(batch: Batch, _batchIdx: number): void {
    this.#evalStep("val", batch);
  }

  /** Loss and metrics on a test batch, without recording gradients. */
  testStep(batch: Batch, _batchIdx: number): void {
    this.#evalStep("test", batch);
  }

  /**
   * The training epoch's metric state so far (top-1 counters), for a mid-epoch checkpoint:
   * a run resumed inside the epoch restores it, so `train/acc_top1` covers the whole epoch.
   */
  async trainEpochState(): Promise<Record<string, number[]>> {
    return { trainTop1: await this.trainTop1.stateDict() };
  }

  /** Restores `trainEpochState()`. */
  loadTrainEpochState(state: Record<string, number[]>): void {
    if (state.trainTop1) this.trainTop1.loadStateDict(state.trainTop1);
  }

  /** Logs `train/acc_top1` for the epoch and resets it. */
  async onTrainEpochEnd(): Promise<void> {
    const v = (await this.trainTop1.compute()) as number;
    this.trainTop1.reset();
    this.log("train/acc_top1", v, { onStep: false, onEpoch: true });
  }

  async #evalEpochEnd(stage: "val" | "test"): Promise<number[][]> {
    const [top1, top5, perCls, conf] = stage === "val"
      ? [this.valTop1, this.valTop5, this.valPerCls, this.valConfusion]
      : [this.testTop1, this.testTop5, this.testPerCls, this.testConfusion];
    const a1 = (await top1.compute()) as number;
    const a5 = (await top5.compute()) as number;
    const per = (await perCls.compute()) as Float32Array;
    const matrix = await conf.compute();
    for (const m of [top1, top5, perCls, conf]) m.reset();
    const o = { onStep: false, onEpoch: true };
    this.log(`${stage}/acc_top1`, a1, { ...o, progBar: true });
    this.log(`${stage}/acc_top5`, a5, o);
    per.forEach((v, i) => this.log(`${stage}/acc_class_${i}`, v, o));
    return matrix;
  }

  /**
   * Logs `val/acc_top1` (progress bar), `val/acc_top5`, `val/acc_class_{i}`; resets the
   * metrics; returns the epoch's confusion matrix (`m[target][prediction]`).
   */
  onValidationEpochEnd(): Promise<number[][]> {
    return this.#evalEpochEnd("val");
  }

  /**
   * Logs `test/acc_top1`, `test/acc_top5`, `test/acc_class_{i}`; resets the metrics;
   * returns the epoch's confusion matrix (`m[target][prediction]`).
   */
  onTestEpochEnd(): Promise<number[][]> {
    return this.#evalEpochEnd("test");
  }

  /**
   * AdamW(lr, weightDecay) and, stepped once per epoch, SequentialLR of
   * LinearLR(warmupStartFactor → 1 over max(1, W) epochs) then
   * CosineAnnealingLR(tMax = max(1, maxEpochs − W), etaMin = lr·cosineEtaMinFactor), milestone W.
   *
   * With `paramGroups` (`[{match: "fc", learningRate: 1e-3}]`), AdamW gets one group per rule
   * after the group of unmatched parameters, and the schedule scales each group from its own
   * lr as PyTorch does for `param_groups` (the cosine floor `etaMin` is shared, as in PyTorch).
   *
   * NOTE: unlike PyTorch, `warmupEpochs: 0` means no warm-up: the schedule is the cosine
   * alone over max(1, maxEpochs) epochs (PyTorch's SequentialLR with milestone 0 never
   * switches and keeps the lr near lr·startFactor).
   */
  configureOptimizers(
    maxEpochs = 100,
    opts: { paramGroups?: readonly ParamGroupRule[] } = {},
  ): OptimizerConfig {
    if (!(Number.isInteger(maxEpochs) && maxEpochs >= 1)) {
      throw new RangeError(
        `configureOptimizers: maxEpochs must be an integer >= 1, got ${maxEpochs}`,
      );
    }
    const h = this.hparams;
    const lr = h.learningRate;
    const w = h.warmupEpochs;
    const params = opts.paramGroups?.length
      ? paramGroupsFor(this, opts.paramGroups, lr, h.weightDecay)
      : this.parameters();
    const optimizer = new AdamW(params, { lr, weightDecay: h.weightDecay });
    const etaMin = lr * h.cosineEtaMinFactor;
    let scheds: LrScheduler[];
    let milestones: number[];
    if (w === 0) {
      scheds = [new CosineAnnealingLR(optimizer, { tMax: Math.max(1, maxEpochs), etaMin })];
      milestones = [];
    } else {
      const warm = new LinearLR(optimizer, {
        startFactor: h.warmupStartFactor,
        endFactor: 1,
        totalIters: Math.max(1, w),
      });
      const cos = new CosineAnnealingLR(optimizer, { tMax: Math.max(1, maxEpochs - w), etaMin });
      scheds = [warm, cos];
      milestones = [w];
    }
    return { optimizer, scheduler: new SequentialLR(optimizer, scheds, milestones) };
  }

  /**
   * Loads pretrained weights (path, URL, `imagenet`/`IMAGENET1K_V1`/`IMAGENET1K_V2`, or bytes)
   * into the backbone and returns what was loaded; see `pretrained.ts` for the rules.
   */
  loadPretrained(
    source: string | Uint8Array,
    opts: LoadPretrainedOptions = {},
  ): Promise<PretrainedReport> {
    return loadPretrained(this, source, opts);
  }

  /** Frees parameters, buffers and every metric's counters. */
  override dispose(): void {
    super.dispose();
    for (
      const m of [
        this.trainTop1,
        this.valTop1,
        this.valTop5,
        this.valPerCls,
        this.testTop1,
        this.testTop5,
        this.testPerCls,
        this.valConfusion,
        this.testConfusion,
      ]
    ) m.dispose();
    this.#backbone = null;
  }
}
