/**
 * The trainer, with Lightning's semantics: per epoch the training steps, then validation,
 * then the LR scheduler step; the best checkpoint is tested at the end. Losses and metrics
 * stay on the GPU (accumulated there) and are read back at most once per logging interval
 * and once per epoch. It writes the run folder: `config.yaml`, `metrics.csv`,
 * `metrics.jsonl`, TensorBoard event files, `checkpoints/`, `report.html`.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { scope } from "../gpu/tensor.ts";
import { flush } from "../gpu/dispatch.ts";
import { backward, noGrad } from "../autograd/tape.ts";
import { mulScalar } from "../autograd/ops.ts";
import { binary, full, unary } from "../kernels/elementwise.ts";
import { sumAll } from "../kernels/reduce.ts";
import type { Batch, LogOptions, LogSink } from "../models/types.ts";
import { configToYaml, type TrainConfig } from "./config.ts";
import { MetricFiles, type MetricRecord, parseJsonl } from "./loggers.ts";
import { TensorBoardWriter } from "./tensorboard.ts";
import {
  formatDuration,
  formatValue,
  Progress,
  type ProgressState,
  type TextSink,
} from "./progress.ts";
import { renderReport } from "./report.ts";
import { Module } from "../nn/module.ts";
import { formatPretrainedReport, type PretrainedReport } from "../models/pretrained.ts";
import { freezeForEpoch, type ParamGroupRule } from "../models/freeze.ts";
import {
  loadCheckpoint,
  readBackAll,
  writeCheckpoint,
  type WriteCheckpointOptions,
} from "./checkpoint.ts";

/** The optimizer as the trainer drives it (AdamW satisfies it). */
export interface TrainerOptimizer {
  /** Learning rate of the next step. */
  lr: number;
  /** Applies one update from the parameters' gradients. */
  step(): void;
  /** Clears the gradients. */
  zeroGrad(): void;
  /** Serialisable state (tensors are saved to safetensors). */
  stateDict(): unknown;
  /** Restores a state (copies tensors). */
  // deno-lint-ignore no-explicit-any
  loadStateDict(state: any): void;
  /** Frees optimizer state. */
  dispose?(): void;
}

/** The LR scheduler as the trainer drives it (SequentialLR satisfies it). */
export interface TrainerScheduler {
  /** Advances one epoch. */
  step(): void;
  /** The current learning rates. */
  getLastLr(): number[];
  /** Plain-JSON state. */
  stateDict(): unknown;
  /** Restores a state. */
  // deno-lint-ignore no-explicit-any
  loadStateDict(state: any): void;
}

/** A confusion matrix kept by the model. */
export interface ConfusionSource {
  /** `m[target][prediction]` counts since the last reset. */
  compute(): Promise<number[][]>;
}

/** What the trainer needs of a model (`BaseClassificationModel` satisfies it). */
export interface TrainableModel {
  /** Constructor options, saved in checkpoints. */
  readonly hparams: object;
  /** Training mode. */
  train(mode?: boolean): unknown;
  /** Evaluation mode. */
  eval(): unknown;
  /** Parameters and buffers (shared tensors). */
  stateDict(): Map<string, Tensor>;
  /** Copies tensors into parameters and buffers. */
  loadStateDict(dict: Map<string, Tensor>): void;
  /** Trainable parameters. */
  parameters(): Tensor[];
  /** Replaces the loss's class weights. */
  setClassWeights?(weights: Float32Array): void;
  /** Where `log()` calls go. */
  setLogger(sink: LogSink): void;
  /** Loss of a training batch, on the tape. */
  trainingStep(batch: Batch, batchIdx: number): Tensor;
  /** Validation batch (logs and updates metrics). */
  validationStep(batch: Batch, batchIdx: number): unknown;
  /** Test batch (logs and updates metrics). */
  testStep(batch: Batch, batchIdx: number): unknown;
  /** End of the training epoch (logs epoch metrics, resets them). */
  onTrainEpochEnd?(): Promise<void> | void;
  /** End of validation. */
  onValidationEpochEnd?(): Promise<void> | void;
  /** End of testing. */
  onTestEpochEnd?(): Promise<void> | void;
  /** Loads pretrained weights (`model.pretrained`); see models/pretrained.ts. */
  loadPretrained?(source: string, opts: { strict?: boolean }): Promise<PretrainedReport>;
  /** AdamW (with `optimizer.paramGroups`) and its per-epoch schedule. */
  configureOptimizers(maxEpochs: number, opts?: { paramGroups?: readonly ParamGroupRule[] }): {
    optimizer: TrainerOptimizer;
    scheduler: TrainerScheduler;
  };
  /** Validation confusion matrix, when the model keeps one. */
  readonly valConfusion?: ConfusionSource;
  /** Test confusion matrix, when the model keeps one. */
  readonly testConfusion?: ConfusionSource;
  /** The validation confusion matrix read by the last validation epoch-end hook. */
  readonly lastValConfusion?: number[][] | null;
  /** The test confusion matrix read by the last test epoch-end hook. */
  readonly lastTestConfusion?: number[][] | null;
  /** Frees GPU memory. */
  dispose(): void;
}

/** A batch iterable (the data module's loaders satisfy it). */
export interface BatchLoader extends AsyncIterable<Batch> {
  /** Batches per epoch. */
  readonly length: number;
  /** Seeds the epoch's shuffle and augmentation. */
  setEpoch?(epoch: number): void;
}

/** What the trainer needs of a data module (`ClassificationDataModule` satisfies it). */
export interface TrainerDataModule {
  /** Loads or indexes the data. */
  setup(): Promise<void>;
  /** Training batches. */
  trainLoader(): BatchLoader;
  /** Validation batches. */
  valLoader(): BatchLoader;
  /** Test batches. */
  testLoader(): BatchLoader;
  /** Number of classes. */
  readonly numClasses: number;
  /** Class names, index order. */
  readonly classNames: readonly string[];
  /** Inverse-frequency class weights for the loss. */
  getClassWeights?(): Float32Array;
}

/** Raised when the loss becomes NaN or infinite. */
export class NonFiniteLossError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteLossError";
  }
}

/** Options of `Trainer`. */
export interface TrainerOptions {
  /** Use this run folder instead of `rootDir/name/version_N`. */
  runDir?: string;
  /** Where progress goes (default stdout). */
  out?: TextSink;
  /** Test hooks for checkpoint writes (simulated crashes). */
  checkpointWrite?: WriteCheckpointOptions;
  /** Test hook: called with the loss tensor of each training batch, may replace it. */
  lossHook?: (loss: Tensor, epoch: number, batchIdx: number) => Tensor;
}

/** The outcome of `fit()`. */
export interface FitResult {
  /** The run folder. */
  runDir: string;
  /** Epochs completed (in total, resumed ones included). */
  epochs: number;
  /** Optimizer steps taken. */
  globalStep: number;
  /** Why training ended. */
  stopReason: "maxEpochs" | "earlyStopping";
  /** JSON state of the best checkpoint, or null. */
  bestPath: string | null;
  /** Monitored value of the best checkpoint, or null. */
  bestScore: number | null;
  /** JSON state of the last checkpoint, or null. */
  lastPath: string | null;
  /** Learning rate used in each epoch of this run (resumed epochs excluded). */
  lrs: number[];
  /** Metrics of the last epoch. */
  lastMetrics: Record<string, number>;
  /** Seconds spent in fit. */
  seconds: number;
  /** Training images per second over the run. */
  imagesPerSec: number;
}

/** The outcome of an evaluation pass. */
export interface EvalResult {
  /** Epoch metrics logged by the model (`test/acc_top1`, …). */
  metrics: Record<string, number>;
  /** Confusion matrix, when the model keeps one. */
  confusion: number[][] | null;
  /** Images seen. */
  images: number;
}

interface Accum {
  sum: Tensor | null;
  host: number;
  weight: number;
}

/** The trainer's `LogSink`: GPU accumulation, readback only on request. */
class MetricSink implements LogSink {
  phase: "train" | "val" | "test" | "epochEnd" = "train";
  captureStep = false;
  /** GPU step values captured at a logging step (kept clones). */
  stepValues = new Map<string, Tensor | number>();
  epoch = new Map<string, Accum>();
  progBar = new Set<string>();

  log(name: string, value: Tensor | number, options: LogOptions = {}): void {
    const inTrain = this.phase === "train";
    const onStep = options.onStep ?? inTrain;
    const onEpoch = options.onEpoch ?? !inTrain;
    const both = onStep && onEpoch;
    if (onStep && inTrain && this.captureStep) {
      const key = both ? `${name}_step` : name;
      this.#replaceStep(key, value);
      if (options.progBar) this.progBar.add(key);
    }
    if (onEpoch) {
      const key = both ? `${name}_epoch` : name;
      const w = options.batchSize ?? 1;
      let a = this.epoch.get(key);
      if (!a) {
        a = { sum: null, host: 0, weight: 0 };
        this.epoch.set(key, a);
      }
      if (typeof value === "number") a.host += value * w;
      else {
        const scaled = unary("affine", value.size === 1 ? value.view([1]) : value, w, 0);
        if (a.sum) {
          const next = binary("add", a.sum, scaled);
          a.sum.dispose();
          scaled.dispose();
          a.sum = next.keep();
        } else a.sum = scaled.keep();
      }
      a.weight += w;
      if (options.progBar) this.progBar.add(key);
    }
  }

  #replaceStep(key: string, value: Tensor | number): void {
    const old = this.stepValues.get(key);
    if (old instanceof Tensor) old.dispose();
    this.stepValues.set(
      key,
      typeof value === "number" ? value : unary("affine", value.view([1]), 1, 0).keep(),
    );
  }

  /** Reads back step values (one readback) and clears them. */
  async readStep(extra: Tensor[] = []): Promise<[Record<string, number>, number[]]> {
    const entries = [...this.stepValues];
    const tensors = entries.filter(([, v]) => v instanceof Tensor).map(([, v]) => v as Tensor);
    const host = await readBackAll([...tensors, ...extra]);
    const out: Record<string, number> = {};
    let ti = 0;
    for (const [k, v] of entries) out[k] = v instanceof Tensor ? host[ti++][0] : v;
    const extras = extra.map((_, i) => host[tensors.length + i][0]);
    for (const t of tensors) t.dispose();
    this.stepValues.clear();
    return [out, extras];
  }

  /** Reads back epoch means (one readback) and clears them. */
  async readEpoch(extra: Tensor[] = []): Promise<[Record<string, number>, number[]]> {
    const entries = [...this.epoch];
    const tensors = entries.filter(([, a]) => a.sum).map(([, a]) => a.sum as Tensor);
    const host = await readBackAll([...tensors, ...extra]);
    const out: Record<string, number> = {};
    let ti = 0;
    for (const [k, a] of entries) {
      const gpuSum = a.sum ? host[ti++][0] : 0;
      out[k] = (gpuSum + a.host) / (a.weight || 1);
    }
    const extras = extra.map((_, i) => host[tensors.length + i][0]);
    this.clearEpoch();
    return [out, extras];
  }

  clearEpoch(): void {
    for (const a of this.epoch.values()) a.sum?.dispose();
    this.epoch.clear();
  }

  dispose(): void {
    this.clearEpoch();
    for (const v of this.stepValues.values()) if (v instanceof Tensor) v.dispose();
    this.stepValues.clear();
  }
}

/** How many batches of `total` a limit allows (null: all; integer: count; fraction: share). */
export function limitBatches(total: number, limit: number | null): number {
  if (limit === null) return total;
  if (Number.isInteger(limit)) return Math.min(total, limit);
  return Math.min(total, Math.max(1, Math.floor(total * limit)));
}

/** The next free `rootDir/name/version_N` (Lightning's numbering). */
export function nextVersionDir(rootDir: string, name: string): string {
  const base = `${rootDir}/${name}`;
  let max = -1;
  try {
    for (const e of Deno.readDirSync(base)) {
      const m = /^version_(\d+)$/.exec(e.name);
      if (m && e.isDirectory) max = Math.max(max, Number(m[1]));
    }
  } catch { /* no runs yet */ }
  return `${base}/version_${max + 1}`;
}

/**
 * Scales gradients so that their global L2 norm is at most `maxNorm` (PyTorch's
 * `clip_grad_norm_`: coef = maxNorm / (norm + 1e-6), clamped to 1), entirely on the GPU.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): void {
  const withGrad = params.filter((p) => p.grad);
  if (!withGrad.length) return;
  scope(() => {
    let total: Tensor | null = null;
    for (const p of withGrad) {
      const g = p.grad as Tensor;
      const sq = sumAll(unary("square", g)).view([1]);
      total = total ? binary("add", total, sq) : sq;
    }
    const norm = unary("sqrt", total as Tensor);
    const coef = unary("reciprocal", unary("affine", norm, 1 / maxNorm, 1e-6 / maxNorm));
    const clamped = binary("minimum", coef, full([1], 1));
    for (const p of withGrad) {
      const g = p.grad as Tensor;
      p.grad = binary("mul", g, clamped).keep();
      g.dispose();
    }
  });
}

/** Clamps every gradient element to [-v, v] (`clip_grad_value_`). */
export function clipGradValue(params: readonly Tensor[], v: number): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    p.grad = unary("clamp", g, -v, v).keep();
    g.dispose();
  }
}

function isBetter(v: number, best: number | null, mode: "max" | "min", minDelta = 0): boolean {
  if (!Number.isFinite(v)) return false;
  if (best === null) return true;
  return mode === "max" ? v > best + minDelta : v < best - minDelta;
}

/** The logged value of `key`; an error naming `option` when that metric was not logged. */
function monitored(metrics: Record<string, number>, key: string, option: string): number {
  const v = metrics[key];
  if (v === undefined) {
    throw new Error(
      `${option}: expected one of the logged metrics (${
        Object.keys(metrics).join(", ")
      }), got "${key}"`,
    );
  }
  return v;
}

function disposeBatch(b: Batch): void {
  b.images.dispose();
  b.labels.dispose();
}

/** Lightning-style trainer for one config. */
export class Trainer {
  /** The resolved config. */
  readonly config: TrainConfig;
  /** The run folder (created by `fit`/`prepareRunDir`). */
  runDir: string;
  /** Progress output. */
  readonly progress: Progress;
  /** Every metric record of the run. */
  files: MetricFiles | null = null;
  #tb: TensorBoardWriter | null = null;
  #sink = new MetricSink();
  #opts: TrainerOptions;
  #classNames: readonly string[] = [];
  #bestPath: string | null = null;

  /** Creates the trainer; the run folder is chosen now and created by `fit`. */
  constructor(config: TrainConfig, options: TrainerOptions = {}) {
    this.config = config;
    this.#opts = options;
    const l = config.logging;
    this.runDir = options.runDir ??
      (l.version ? `${l.rootDir}/${l.name}/${l.version}` : nextVersionDir(l.rootDir, l.name));
    this.progress = new Progress(config.trainer.progress, options.out);
  }

  /** Creates the run folder, writes `config.yaml` and opens the metric files. */
  prepareRunDir(): void {
    if (this.files) return;
    Deno.mkdirSync(this.runDir, { recursive: true });
    Deno.writeTextFileSync(`${this.runDir}/config.yaml`, configToYaml(this.config));
    const l = this.config.logging;
    this.files = new MetricFiles(this.runDir, { csv: l.csv, jsonl: l.jsonl });
    if (l.tensorboard) this.#tb = new TensorBoardWriter(this.runDir);
  }

  #record(epoch: number, step: number, metrics: Record<string, number>): void {
    if (!Object.keys(metrics).length) return;
    this.files?.add({ epoch, step, metrics });
    this.#tb?.addScalars(step, { ...metrics, epoch });
  }

  /**
   * Fits `model` on `data`: epochs of training, validation, scheduler step, checkpoints,
   * early stopping. With `config.resume` set it continues from that checkpoint so that the
   * LR sequence and the final weights equal an uninterrupted run.
   */
  async fit(model: TrainableModel, data: TrainerDataModule): Promise<FitResult> {
    const cfg = this.config;
    const t = cfg.trainer;
    const dev = t.fastDevRun > 0;
    const maxEpochs = dev ? 1 : t.maxEpochs;
    this.prepareRunDir();
    const t0 = performance.now();
    await data.setup();
    this.#classNames = data.classNames;
    const weights = data.getClassWeights?.();
    if (weights && model.setClassWeights) model.setClassWeights(weights);
    model.setLogger(this.#sink);
    // Fine-tuning: pretrained weights (a resumed run takes its checkpoint's instead).
    if (cfg.model.pretrained && !cfg.resume) {
      if (!model.loadPretrained) {
        throw new Error("model.pretrained: this model cannot load weights");
      }
      const r = await model.loadPretrained(cfg.model.pretrained, {
        strict: cfg.model.pretrainedStrict,
      });
      this.progress.message(formatPretrainedReport(r));
    }
    const freezing = cfg.model.freeze.length > 0 || t.freezeBackboneEpochs > 0;
    if (freezing && !(model instanceof Module)) {
      throw new Error("model.freeze / trainer.freezeBackboneEpochs: the model is not a Module");
    }
    const { optimizer, scheduler } = model.configureOptimizers(t.maxEpochs, {
      paramGroups: cfg.optimizer.paramGroups,
    });
    const ckptDir = `${this.runDir}/checkpoints`;
    const monitor = cfg.checkpoint;
    let best: number | null = null;
    let bestEpoch = -1;
    const es = cfg.earlyStopping;
    let esBest: number | null = null;
    let esWait = 0;
    let startEpoch = 0;
    let globalStep = 0;
    let lastPath: string | null = null;

    if (cfg.resume) {
      const ck = await loadCheckpoint(cfg.resume);
      try {
        const s = ck.state;
        const cfgModel = (s.config as TrainConfig | undefined)?.model?.name;
        if (cfgModel && cfgModel !== cfg.model.name) {
          throw new Error(
            `resume: checkpoint "${ck.path}" is a ${cfgModel}, expected ${cfg.model.name} (model.name)`,
          );
        }
        model.loadStateDict(ck.weights);
        if (ck.optimizer) optimizer.loadStateDict(ck.optimizer);
        scheduler.loadStateDict(s.scheduler);
        startEpoch = s.rng.nextEpoch;
        globalStep = s.globalStep;
        const cb = s.callbacks as {
          best?: number | null;
          bestEpoch?: number;
          bestPath?: string | null;
          esBest?: number | null;
          esWait?: number;
        };
        best = cb.best ?? null;
        bestEpoch = cb.bestEpoch ?? -1;
        esBest = cb.esBest ?? null;
        esWait = cb.esWait ?? 0;
        // Carry the earlier epochs' metrics and best checkpoint into this run folder.
        const oldRun = ck.path.replace(/\/checkpoints\/[^/]+$/, "");
        try {
          const old = parseJsonl(Deno.readTextFileSync(`${oldRun}/metrics.jsonl`));
          for (const r of old) {
            if (r.epoch < startEpoch && !isTestRecord(r)) {
              this.#record(r.epoch, r.step, r.metrics);
            }
          }
        } catch { /* no earlier metrics */ }
        if (cb.bestPath && oldRun !== this.runDir) {
          try {
            const bk = await loadCheckpoint(`${oldRun}/checkpoints/best.json`);
            try {
              this.#bestPath = await writeCheckpoint(`${ckptDir}/best`, {
                stateDict: bk.weights,
                optimizer: bk.optimizer,
                state: { ...bk.state, config: cfg },
              }, this.#opts.checkpointWrite);
            } finally {
              bk.dispose();
            }
          } catch { /* best is re-created by the next improvement */ }
        } else if (cb.bestPath) this.#bestPath = cb.bestPath;
        this.progress.message(
          `resumed from ${ck.path}: epoch ${startEpoch}, global step ${globalStep}, lr ${
            formatValue(optimizer.lr)
          }`,
        );
      } finally {
        ck.dispose();
      }
    }

    const lrs: number[] = [];
    let stopReason: FitResult["stopReason"] = "maxEpochs";
    let lastMetrics: Record<string, number> = {};
    let images = 0;
    let trainSeconds = 0;
    const params = model.parameters();
    const guard = { sum: null as Tensor | null };
    const trainLoader = data.trainLoader();
    const valLoader = data.valLoader();
    let epoch = startEpoch;
    try {
      for (; epoch < maxEpochs; epoch++) {
        const lr = optimizer.lr;
        lrs.push(lr);
        trainLoader.setEpoch?.(epoch);
        if (freezing) {
          freezeForEpoch(model as unknown as Module, {
            freeze: cfg.model.freeze,
            freezeBackboneEpochs: t.freezeBackboneEpochs,
          }, epoch);
        }
        model.train();
        this.#sink.phase = "train";
        const nBatches = dev
          ? Math.min(t.fastDevRun, trainLoader.length)
          : limitBatches(trainLoader.length, t.limitTrainBatches);
        const k = t.accumulateGradBatches;
        const epochT0 = performance.now();
        let winT0 = epochT0;
        let winImages = 0;
        let shown: Record<string, number> = {};
        let i = 0;
        const trainState = (elapsed: number, imagesPerSec: number): ProgressState => ({
          phase: "train",
          epoch,
          maxEpochs,
          batch: i,
          batches: nBatches,
          values: shown,
          imagesPerSec,
          etaSec: (elapsed / i) * (nBatches - i),
        });
        for await (const batch of trainLoader) {
          if (i >= nBatches) {
            disposeBatch(batch);
            break;
          }
          const n = batch.images.shape[0];
          const stepsNow = (i + 1) % k === 0 || i + 1 === nBatches;
          const willLog = stepsNow && (globalStep + 1) % t.logEveryNSteps === 0;
          this.#sink.captureStep = willLog;
          try {
            scope(() => {
              let loss = model.trainingStep(batch, i);
              if (this.#opts.lossHook) loss = this.#opts.lossHook(loss, epoch, i);
              const l1 = loss.view([1]);
              const next = guard.sum ? binary("add", guard.sum, l1) : unary("affine", l1, 1, 0);
              guard.sum?.dispose();
              guard.sum = next.keep();
              backward(k > 1 ? mulScalar(loss, 1 / k) : loss);
              if (stepsNow) {
                if (t.gradientClipVal !== null) {
                  if (t.gradientClipAlgorithm === "norm") clipGradNorm(params, t.gradientClipVal);
                  else clipGradValue(params, t.gradientClipVal);
                }
                optimizer.step();
                optimizer.zeroGrad();
              }
            });
          } finally {
            disposeBatch(batch);
          }
          flush();
          if (stepsNow) globalStep++;
          images += n;
          winImages += n;
          i++;
          if (willLog) {
            const [vals, [g]] = await this.#sink.readStep(guard.sum ? [guard.sum] : []);
            if (!Number.isFinite(g)) this.#diverged(g, epoch, i, globalStep);
            this.#record(epoch, globalStep, vals);
            const now = performance.now();
            const ips = winImages / ((now - winT0) / 1000);
            winT0 = now;
            winImages = 0;
            shown = {};
            for (const [key, v] of Object.entries(vals)) {
              if (this.#sink.progBar.has(key)) {
                shown[key.replace(/^train\//, "").replace(/_step$/, "")] = v;
              }
            }
            this.progress.periodic(trainState((now - epochT0) / 1000, ips));
          } else {
            const elapsed = (performance.now() - epochT0) / 1000;
            const ips = images && elapsed ? (winImages / ((performance.now() - winT0) / 1000)) : 0;
            this.progress.tick(trainState(elapsed, ips));
          }
        }
        this.#sink.captureStep = false;
        this.#sink.phase = "epochEnd";
        await model.onTrainEpochEnd?.();
        const trainTime = (performance.now() - epochT0) / 1000;
        trainSeconds += trainTime;
        const validate = dev || (epoch + 1) % t.checkValEveryNEpoch === 0 ||
          epoch + 1 === maxEpochs;
        if (validate) {
          const nVal = dev
            ? Math.min(t.fastDevRun, valLoader.length)
            : limitBatches(valLoader.length, t.limitValBatches);
          await evalBatches(model, valLoader, {
            phase: "val",
            n: nVal,
            sink: this.#sink,
            progress: this.progress,
            epoch,
            maxEpochs,
          });
          this.#sink.phase = "epochEnd";
          await model.onValidationEpochEnd?.();
        }
        const [metrics, [g]] = await this.#sink.readEpoch(guard.sum ? [guard.sum] : []);
        guard.sum?.dispose();
        guard.sum = null;
        if (g !== undefined && !Number.isFinite(g)) this.#diverged(g, epoch, i, globalStep);
        metrics["lr-AdamW"] = lr;
        lastMetrics = metrics;
        this.#record(epoch, globalStep, metrics);
        scheduler.step();
        this.progress.message(
          `epoch ${epoch + 1}/${maxEpochs} ` +
            Object.entries(metrics).filter(([key]) => !/acc_class_/.test(key))
              .map(([key, v]) => `${key} ${formatValue(v)}`).join(" ") +
            ` (${formatDuration(trainTime)}, ${(i ? images / trainSeconds : 0).toFixed(1)} img/s)`,
        );
        if (!validate || dev) continue;
        const mon = monitored(metrics, monitor.monitor, "checkpoint.monitor");
        const improved = isBetter(mon, best, monitor.mode);
        if (improved) {
          best = mon;
          bestEpoch = epoch;
        }
        let stop = false;
        if (es) {
          const v = monitored(metrics, es.monitor, "earlyStopping.monitor");
          if (isBetter(v, esBest, es.mode, es.minDelta)) {
            esBest = v;
            esWait = 0;
          } else if (++esWait >= es.patience) stop = true;
        }
        const contents = {
          stateDict: model.stateDict(),
          optimizer: optimizer.stateDict(),
          state: {
            epoch,
            globalStep,
            scheduler: scheduler.stateDict(),
            rng: { seed: cfg.seed, nextEpoch: epoch + 1 },
            hparams: { ...model.hparams } as Record<string, unknown>,
            classNames: [...this.#classNames],
            config: cfg,
            callbacks: {
              best,
              bestEpoch,
              bestPath: improved && monitor.saveBest ? `${ckptDir}/best.json` : this.#bestPath,
              esBest,
              esWait,
            },
            metrics,
          },
        };
        if (improved && monitor.saveBest) {
          this.#bestPath = await writeCheckpoint(
            `${ckptDir}/best`,
            contents,
            this.#opts.checkpointWrite,
          );
        }
        if (monitor.saveLast) {
          lastPath = await writeCheckpoint(`${ckptDir}/last`, contents, this.#opts.checkpointWrite);
        }
        if (stop) {
          stopReason = "earlyStopping";
          this.progress.message(
            `early stopping: ${es!.monitor} did not improve by more than ${es!.minDelta} for ${
              es!.patience
            } validations (best ${formatValue(esBest ?? NaN)})`,
          );
          epoch++;
          break;
        }
      }
    } finally {
      guard.sum?.dispose();
      this.#sink.dispose();
      this.#tb?.flush();
      optimizer.dispose?.();
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      runDir: this.runDir,
      epochs: epoch,
      globalStep,
      stopReason,
      bestPath: this.#bestPath,
      bestScore: best,
      lastPath,
      lrs,
      lastMetrics,
      seconds,
      imagesPerSec: trainSeconds ? images / trainSeconds : 0,
    };
  }

  #diverged(v: number, epoch: number, batch: number, step: number): never {
    const bestNote = this.#bestPath
      ? `the best checkpoint ${this.#bestPath} is intact`
      : "no checkpoint was written yet";
    throw new NonFiniteLossError(
      `training loss became ${v} in epoch ${epoch} by batch ${batch} (global step ${step}); stopping: ${bestNote}. Try a lower optimizer.learningRate or trainer.gradientClipVal`,
    );
  }

  /**
   * Tests `model` (with the best checkpoint's weights when `ckptPath` is "best" and one
   * exists) and logs `test/*` metrics. Returns the metrics and the confusion matrix.
   */
  async test(
    model: TrainableModel,
    data: TrainerDataModule,
    options: { ckptPath?: "best" | "current" | string } = {},
  ): Promise<EvalResult & { checkpoint: string | null }> {
    this.prepareRunDir();
    model.setLogger(this.#sink);
    if (!this.#classNames.length) {
      await data.setup();
      this.#classNames = data.classNames;
    }
    let used: string | null = null;
    const want = options.ckptPath ?? "best";
    const path = want === "best" ? this.#bestPath : want === "current" ? null : want;
    if (path) {
      const ck = await loadCheckpoint(path, { optimizer: false });
      try {
        model.loadStateDict(ck.weights);
        used = ck.path;
      } finally {
        ck.dispose();
      }
    }
    const r = await evaluate(model, data.testLoader(), {
      sink: this.#sink,
      limit: this.config.trainer.fastDevRun > 0
        ? this.config.trainer.fastDevRun
        : this.config.trainer.limitTestBatches,
      progress: this.progress,
    });
    const step = this.files?.records.at(-1)?.step ?? 0;
    const epoch = this.files?.records.at(-1)?.epoch ?? 0;
    this.#record(epoch, step, r.metrics);
    this.progress.message(
      `test${used ? ` (${used})` : ""}: ` +
        Object.entries(r.metrics).filter(([key]) => !/acc_class_/.test(key))
          .map(([key, v]) => `${key} ${formatValue(v)}`).join(" "),
    );
    return { ...r, checkpoint: used };
  }

  /** Writes `report.html` from the records, class names and an evaluation result. */
  writeReport(
    evalResult: EvalResult | null,
    options: { label: string; facts: Record<string, string | number> },
  ): string {
    const { label: evalLabel, facts } = options;
    const records = this.files?.records ?? [];
    const prefix = evalLabel.startsWith("val") ? "val" : "test";
    const m = evalResult?.metrics ?? {};
    const perClass = this.#classNames.map((_, c) => m[`${prefix}/acc_class_${c}`]);
    const html = renderReport({
      title: `${this.config.model.name} — ${this.runDir}`,
      records,
      classNames: this.#classNames,
      confusion: evalResult?.confusion ?? null,
      evalLabel,
      perClass: perClass.every((v) => v !== undefined) && perClass.length ? perClass : null,
      facts,
    });
    const path = `${this.runDir}/report.html`;
    Deno.writeTextFileSync(path, html);
    return path;
  }

  /** Closes the event file. */
  close(): void {
    this.#tb?.close();
    this.#tb = null;
  }
}

function isTestRecord(r: MetricRecord): boolean {
  return Object.keys(r.metrics).some((k) => k.startsWith("test/"));
}

async function evalBatches(
  model: TrainableModel,
  loader: BatchLoader,
  o: {
    phase: "val" | "test";
    n: number;
    sink: MetricSink;
    progress?: Progress;
    epoch: number;
    maxEpochs: number;
  },
): Promise<number> {
  model.eval();
  o.sink.phase = o.phase;
  let images = 0;
  let i = 0;
  const t0 = performance.now();
  try {
    await noGrad(async () => {
      for await (const batch of loader) {
        if (i >= o.n) {
          disposeBatch(batch);
          break;
        }
        try {
          scope(() => {
            if (o.phase === "val") model.validationStep(batch, i);
            else model.testStep(batch, i);
          });
        } finally {
          images += batch.images.shape[0];
          disposeBatch(batch);
        }
        flush();
        i++;
        const el = (performance.now() - t0) / 1000;
        o.progress?.tick({
          phase: o.phase,
          epoch: o.epoch,
          maxEpochs: o.maxEpochs,
          batch: i,
          batches: o.n,
          values: {},
          imagesPerSec: images / el,
          etaSec: (el / i) * (o.n - i),
        });
      }
    });
  } finally {
    model.train();
  }
  return images;
}

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** The sink the model logs to (a fresh one when absent). */
  sink?: LogSink;
  /** Batch limit (same forms as `trainer.limitTestBatches`). */
  limit?: number | null;
  /** Progress output. */
  progress?: Progress;
  /** "test" (default) calls `testStep`, "val" calls `validationStep`. */
  phase?: "val" | "test";
}

/**
 * Runs the model over a loader without gradients and returns the epoch metrics it logs
 * (`test/loss`, `test/acc_top1`, `test/acc_top5`, `test/acc_class_i`) and its confusion
 * matrix (read before the epoch-end hook resets it).
 */
export async function evaluate(
  model: TrainableModel,
  loader: BatchLoader,
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  const own = !(options.sink instanceof MetricSink);
  const sink = options.sink instanceof MetricSink ? options.sink : new MetricSink();
  if (own) model.setLogger(sink);
  const phase = options.phase ?? "test";
  const n = limitBatches(loader.length, options.limit ?? null);
  try {
    const images = await evalBatches(model, loader, {
      phase,
      n,
      sink,
      progress: options.progress,
      epoch: 0,
      maxEpochs: 1,
    });
    // A model that reads its matrix in the epoch-end hook saves a readback here.
    const kept = phase === "val" ? "lastValConfusion" : "lastTestConfusion";
    const cm = phase === "val" ? model.valConfusion : model.testConfusion;
    let confusion = cm && !(kept in model) ? await cm.compute() : null;
    sink.phase = "epochEnd";
    if (phase === "val") await model.onValidationEpochEnd?.();
    else await model.onTestEpochEnd?.();
    confusion ??= model[kept] ?? null;
    const [metrics] = await sink.readEpoch();
    return { metrics, confusion, images };
  } finally {
    if (own) sink.dispose();
  }
}
