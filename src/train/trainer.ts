/**
 * The trainer, with Lightning's semantics: per epoch the training steps, then validation,
 * then the LR scheduler step and the callbacks (checkpoints, early stopping); the best
 * checkpoint is tested at the end. Losses and metrics stay on the GPU (`MetricSink`) and are
 * read back at most once per logging interval and once per epoch. It writes the run folder:
 * `config.yaml`, `metrics.csv`, `metrics.jsonl`, TensorBoard event files, `checkpoints/`,
 * `report.html`. Its parts: `resume.ts`, `metric_sink.ts`, `callbacks.ts`, `evaluate.ts`,
 * `run_dir.ts`; file access goes through the `PlatformFs` seam.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import type { Batch } from "../models/types.ts";
import { scope } from "../gpu/tensor.ts";
import { flush } from "../gpu/dispatch.ts";
import { backward } from "../autograd/tape.ts";
import { mulScalar } from "../autograd/ops.ts";
import { clipGradients } from "../optim/clip.ts";
import { GradScaler } from "../optim/grad_scaler.ts";
import { autocast } from "../autograd/autocast.ts";
import { gpu } from "../gpu/device.ts";
import { hasShaderF16 } from "../kernels/cast.ts";
import { denoFs, type PlatformFs } from "../platform/fs.ts";
import { onStopSignal } from "../platform/signals.ts";
import { configToYaml, type TrainConfig } from "./config.ts";
import { MetricFiles } from "./loggers.ts";
import { TensorBoardWriter } from "./tensorboard.ts";
import { formatDuration, formatValue, Progress, type TextSink } from "./progress.ts";
import { renderReport } from "./report.ts";
import { Module } from "../nn/module.ts";
import { formatPretrainedReport } from "../models/pretrained.ts";
import { freezeForEpoch } from "../models/freeze.ts";
import {
  type CheckpointContents,
  loadCheckpoint,
  type WriteCheckpointOptions,
} from "./checkpoint.ts";
import { MetricSink } from "./metric_sink.ts";
import { EarlyStopping, ModelCheckpoint } from "./callbacks.ts";
import { carryBest, earlierRecords, loadResume, type ResumePoint } from "./resume.ts";
import { claimVersionDir, nextVersionDir } from "./run_dir.ts";
import { type RunTuning, startRunTuning } from "./run_tuning.ts";
import { disposeBatch, type EvalResult, evaluate, limitBatches, runEvalEpoch } from "./evaluate.ts";
import type {
  BatchLoader,
  TrainableModel,
  TrainerDataModule,
  TrainerOptimizer,
  TrainerScheduler,
} from "./contracts.ts";

export type * from "./contracts.ts";
export { type EvalResult, evaluate, type EvaluateOptions, limitBatches } from "./evaluate.ts";
export { clipGradNorm, clipGradValue } from "../optim/clip.ts";
export { nextVersionDir } from "./run_dir.ts";

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
  /** Called once the run folder exists (after setup succeeded), with its path. */
  onRunDir?: (runDir: string) => void;
  /**
   * Stop cleanly on SIGINT/SIGTERM: finish the step, save `last`, return with
   * `stopReason: "interrupted"`; a second signal exits at once (code 130).
   */
  handleSignals?: boolean;
  /** File access (default: Deno's). */
  fs?: PlatformFs;
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
  stopReason: "maxEpochs" | "earlyStopping" | "interrupted";
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

/** Everything one `fit()` call tracks across epochs. */
interface FitRun {
  model: TrainableModel;
  optimizer: TrainerOptimizer;
  scheduler: TrainerScheduler;
  ckpt: ModelCheckpoint;
  es: EarlyStopping | null;
  maxEpochs: number;
  dev: boolean;
  /** When `fit` started (ms). */
  t0: number;
  /** The current epoch, and the batch it starts at (a resume inside it). */
  epoch: number;
  startBatch: number;
  globalStep: number;
  images: number;
  trainSeconds: number;
  /** Training seconds and batches of the current epoch. */
  epochSeconds: number;
  epochBatches: number;
  /** Learning rate of each epoch run. */
  lrs: number[];
  lastMetrics: Record<string, number>;
  stopReason: FitResult["stopReason"];
  /** The loss scaler of `trainer.precision: "16-mixed"`, else null. */
  scaler: GradScaler | null;
}

/** Lightning-style trainer for one config. */
export class Trainer {
  /** The resolved config. */
  readonly config: TrainConfig;
  /** The run folder (final once `fit`/`prepareRunDir` created it). */
  runDir: string;
  /** Progress output. */
  readonly progress: Progress;
  /** Every metric record of the run. */
  files: MetricFiles | null = null;
  #tb: TensorBoardWriter | null = null;
  #sink = new MetricSink();
  #opts: TrainerOptions;
  #fs: PlatformFs;
  #claim: boolean;
  #classNames: readonly string[] = [];
  #bestPath: string | null = null;
  #stopRequested = false;
  /** Measured kernel choice of the current run (`run_tuning.ts`). */
  #tuning: RunTuning | null = null;

  /** Creates the trainer; the run folder is created (claimed) by `fit` once setup succeeded. */
  constructor(config: TrainConfig, options: TrainerOptions = {}) {
    this.config = config;
    this.#opts = options;
    this.#fs = options.fs ?? denoFs;
    const l = config.logging;
    this.#claim = !options.runDir && !l.version;
    this.runDir = options.runDir ??
      (l.version
        ? `${l.rootDir}/${l.name}/${l.version}`
        : nextVersionDir(l.rootDir, l.name, this.#fs));
    this.progress = new Progress(config.trainer.progress, options.out);
  }

  /**
   * Creates the run folder (claiming the next free `version_N` atomically), writes
   * `config.yaml` and opens the metric files.
   */
  prepareRunDir(): void {
    if (this.files) return;
    const l = this.config.logging;
    if (this.#claim) this.runDir = claimVersionDir(l.rootDir, l.name, this.#fs);
    else this.#fs.mkdirp(this.runDir);
    this.#fs.writeAtomic(`${this.runDir}/config.yaml`, configToYaml(this.config));
    this.files = new MetricFiles(this.runDir, { csv: l.csv, jsonl: l.jsonl }, this.#fs);
    if (l.tensorboard) this.#tb = new TensorBoardWriter(this.runDir);
    this.#opts.onRunDir?.(this.runDir);
  }

  #checkpointWrite(): WriteCheckpointOptions {
    return { ...this.#opts.checkpointWrite, fs: this.#fs };
  }

  /** Asks a running `fit` to stop after the current optimizer step and save `last`. */
  requestStop(): void {
    this.#stopRequested = true;
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
    const run = await this.#setup(model, data);
    const trainLoader = data.trainLoader();
    const valLoader = data.valLoader();
    const stopListening = this.#listenForStop();
    try {
      for (; run.epoch < run.maxEpochs; run.epoch++) {
        const epoch = run.epoch;
        run.lrs.push(run.optimizer.lr);
        const stoppedAt = await this.#trainEpoch(run, trainLoader, epoch, run.startBatch);
        run.startBatch = 0;
        if (stoppedAt !== null) {
          await this.#saveInterrupted(run, epoch, stoppedAt);
          break;
        }
        model.setLogger(this.#sink.logger("epochEnd"));
        await model.onTrainEpochEnd?.();
        const callbacksDue = await this.#validate(run, valLoader, epoch);
        run.lastMetrics = await this.#endEpoch(run, epoch);
        run.scheduler.step();
        if (callbacksDue && await this.#callbacks(run, epoch)) {
          run.stopReason = "earlyStopping";
          this.progress.message(run.es!.message());
          run.epoch++;
          break;
        }
        if (this.#stopRequested && epoch + 1 < run.maxEpochs) {
          run.epoch++;
          await this.#saveInterrupted(run, run.epoch, 0);
          break;
        }
      }
    } finally {
      stopListening();
      this.#sink.dispose();
      this.#tb?.flush();
      run.optimizer.dispose?.();
      run.scaler?.dispose();
    }
    return {
      runDir: this.runDir,
      epochs: run.epoch,
      globalStep: run.globalStep,
      stopReason: run.stopReason,
      bestPath: this.#bestPath,
      bestScore: run.ckpt.best,
      lastPath: run.ckpt.lastPath,
      lrs: run.lrs,
      lastMetrics: run.lastMetrics,
      seconds: (performance.now() - run.t0) / 1000,
      imagesPerSec: run.trainSeconds ? run.images / run.trainSeconds : 0,
    };
  }

  /** Whether the steps run in mixed precision (`trainer.precision: "16-mixed"`). */
  #mixed(): boolean {
    return this.config.trainer.precision === "16-mixed";
  }

  /** "16-mixed" needs f16 shaders: a one-line error naming the field when they are missing. */
  #checkPrecision(): void {
    const a = gpu().adapter;
    if (this.#mixed() && !hasShaderF16()) {
      throw new Error(
        `trainer.precision: expected "32" on this adapter (${
          a.description || a.vendor
        } lacks the feature shader-f16 that "16-mixed" needs), got "16-mixed"`,
      );
    }
  }

  /** Whether any parameters are frozen in some epoch (`model.freeze`, `freezeBackboneEpochs`). */
  #freezing(): boolean {
    return this.config.model.freeze.length > 0 || this.config.trainer.freezeBackboneEpochs > 0;
  }

  /**
   * Lightning's setup: data, class weights, optimizers, the resume checkpoint; then (and only
   * then, so that a failed start leaves nothing behind) the run folder.
   */
  async #setup(model: TrainableModel, data: TrainerDataModule): Promise<FitRun> {
    const cfg = this.config;
    const t = cfg.trainer;
    const t0 = performance.now();
    await data.setup();
    this.#classNames = data.classNames;
    const weights = data.getClassWeights?.();
    if (weights && model.setClassWeights) model.setClassWeights(weights);
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
    if (this.#freezing() && !(model instanceof Module)) {
      throw new Error("model.freeze / trainer.freezeBackboneEpochs: the model is not a Module");
    }
    this.#checkPrecision();
    const { optimizer, scheduler } = model.configureOptimizers(t.maxEpochs, {
      paramGroups: cfg.optimizer.paramGroups,
    });
    let from: ResumePoint | null = null;
    try {
      if (cfg.resume) {
        from = await loadResume(cfg.resume, cfg, data.classNames, { model, optimizer, scheduler });
      }
      this.prepareRunDir();
    } catch (e) {
      optimizer.dispose?.();
      throw e;
    }
    const dev = t.fastDevRun > 0;
    const ckptDir = `${this.runDir}/checkpoints`;
    const run: FitRun = {
      model,
      optimizer,
      scheduler,
      ckpt: new ModelCheckpoint(cfg.checkpoint, ckptDir, this.#checkpointWrite()),
      es: cfg.earlyStopping ? new EarlyStopping(cfg.earlyStopping) : null,
      maxEpochs: dev ? 1 : t.maxEpochs,
      dev,
      t0,
      epoch: 0,
      startBatch: 0,
      globalStep: 0,
      images: 0,
      trainSeconds: 0,
      epochSeconds: 0,
      epochBatches: 0,
      lrs: [],
      lastMetrics: {},
      stopReason: "maxEpochs",
      scaler: this.#mixed() ? new GradScaler() : null,
    };
    this.#tuning = startRunTuning({
      enabled: t.tune,
      runDir: this.runDir,
      resumeDir: from?.runDir ?? null,
      fs: this.#fs,
      message: (m) => this.progress.message(m),
    });
    if (from) await this.#resume(run, from);
    return run;
  }

  /**
   * Validates when due. Returns whether the callbacks run after this epoch: after a
   * validation, or after every epoch when validation is off.
   */
  async #validate(run: FitRun, loader: BatchLoader, epoch: number): Promise<boolean> {
    const t = this.config.trainer;
    if (run.dev) {
      const n = Math.min(t.fastDevRun, loader.length);
      await this.#runVal(run, loader, epoch, n);
      return false;
    }
    // NOTE: as in Lightning, limitValBatches 0 turns validation off; the callbacks then
    // run after every training epoch (the config validator rejects val/ monitors).
    if (t.limitValBatches === 0) return true;
    if ((epoch + 1) % t.checkValEveryNEpoch !== 0 && epoch + 1 !== run.maxEpochs) return false;
    await this.#runVal(run, loader, epoch, limitBatches(loader.length, t.limitValBatches));
    return true;
  }

  async #runVal(run: FitRun, loader: BatchLoader, epoch: number, n: number): Promise<void> {
    // As Lightning's precision plugin, validation runs under autocast too.
    await autocast(() =>
      runEvalEpoch(run.model, loader, {
        stage: "val",
        n,
        sink: this.#sink,
        progress: this.progress,
        epoch,
        maxEpochs: run.maxEpochs,
      }), this.#mixed());
  }

  /** Applies a resume point to this run. */
  async #resume(run: FitRun, from: ResumePoint): Promise<void> {
    run.epoch = from.epoch;
    run.startBatch = from.batch;
    run.globalStep = from.globalStep;
    run.ckpt.restore(from.callbacks);
    run.es?.restore(from.callbacks);
    if (from.epochProgress) {
      this.#sink.loadEpochState(from.epochProgress.sink);
      run.model.loadTrainEpochState?.(from.epochProgress.model);
    }
    if (run.scaler && from.ampScaler) run.scaler.loadStateDict(from.ampScaler);
    // Carry the earlier epochs' metrics and best checkpoint into this run folder.
    for (const r of earlierRecords(from, this.#fs)) this.#record(r.epoch, r.step, r.metrics);
    this.#bestPath = await carryBest(from, this.runDir, this.config, this.#checkpointWrite());
    run.ckpt.bestPath = this.#bestPath;
    this.progress.message(
      `resumed from ${from.path}: epoch ${from.epoch}${
        from.batch ? ` batch ${from.batch}` : ""
      }, global step ${from.globalStep}, lr ${formatValue(run.optimizer.lr)}`,
    );
  }

  /** Installs the stop-signal handler when asked to; returns its remover. */
  #listenForStop(): () => void {
    this.#stopRequested = false;
    if (!this.#opts.handleSignals) return () => {};
    return onStopSignal((signal) => {
      this.requestStop();
      this.progress.message(
        `${signal}: stopping after this step and saving last (again to exit at once)`,
      );
    });
  }

  /**
   * One training epoch from batch `start`: steps, gradient accumulation and clipping, the
   * step logs and the NaN guard. Returns the batch to resume at when a stop was requested,
   * else null.
   */
  async #trainEpoch(
    run: FitRun,
    loader: BatchLoader,
    epoch: number,
    start: number,
  ): Promise<number | null> {
    const { model } = run;
    const t = this.config.trainer;
    const nBatches = run.dev
      ? Math.min(t.fastDevRun, loader.length)
      : limitBatches(loader.length, t.limitTrainBatches);
    const params = model.parameters();
    const logger = this.#sink.logger("train");
    const capturing = this.#sink.logger("train", { captureStep: true });
    loader.setEpoch?.(epoch, start);
    if (this.#freezing()) {
      freezeForEpoch(model as unknown as Module, {
        freeze: this.config.model.freeze,
        freezeBackboneEpochs: t.freezeBackboneEpochs,
      }, epoch);
    }
    model.train();
    const t0 = performance.now();
    let win = { t0, images: 0 };
    let lastTurn = t0;
    let shown: Record<string, number> = {};
    let i = start;
    const state = (elapsed: number, imagesPerSec: number) => ({
      phase: "train" as const,
      epoch,
      maxEpochs: run.maxEpochs,
      batch: i,
      batches: nBatches,
      values: shown,
      imagesPerSec,
      etaSec: (elapsed / (i - start)) * (nBatches - i),
    });
    try {
      for await (const batch of loader) {
        if (i >= nBatches) {
          disposeBatch(batch);
          break;
        }
        const n = batch.images.shape[0];
        const stepsNow = (i + 1) % t.accumulateGradBatches === 0 || i + 1 === nBatches;
        const willLog = stepsNow && (run.globalStep + 1) % t.logEveryNSteps === 0;
        model.setLogger(willLog ? capturing : logger);
        try {
          await this.#step(run, batch, { epoch, i, stepsNow, params });
        } finally {
          disposeBatch(batch);
        }
        flush();
        // Warm-up tuning once the first optimizer step showed every shape (run_tuning.ts).
        if (stepsNow && this.#tuning?.due) await this.#tuning.afterFirstStep();
        if (stepsNow) run.globalStep++;
        run.images += n;
        win.images += n;
        i++;
        const now = performance.now();
        if (willLog) {
          const { values, lossSum } = await this.#sink.readStep();
          this.#guard(lossSum, epoch, i, run.globalStep);
          Object.assign(values, this.#ampMetrics(run));
          this.#record(epoch, run.globalStep, values);
          const ips = win.images / ((now - win.t0) / 1000);
          win = { t0: now, images: 0 };
          shown = {};
          for (const [key, v] of Object.entries(values)) {
            if (this.#sink.progBar.has(key)) {
              shown[key.replace(/^train\//, "").replace(/_step$/, "")] = v;
            }
          }
          this.progress.periodic(state((now - t0) / 1000, ips));
        } else {
          this.progress.tick(state((now - t0) / 1000, win.images / ((now - win.t0) / 1000)));
        }
        // A step may run on microtasks only: let a pending signal's listener run (a timer
        // turn of the event loop, at most every 50 ms so fast steps do not wait on timers).
        if (this.#opts.handleSignals && now - lastTurn > 50) {
          await new Promise((r) => setTimeout(r, 0));
          lastTurn = performance.now();
        }
        if (stepsNow && this.#stopRequested && i < nBatches) return i;
      }
    } finally {
      run.epochSeconds = (performance.now() - t0) / 1000;
      run.trainSeconds += run.epochSeconds;
      run.epochBatches = i;
    }
    return null;
  }

  /**
   * One training batch: forward (under autocast in "16-mixed") and backward of the loss (÷ k
   * with gradient accumulation, × the loss scale in "16-mixed"); on the batches that step,
   * unscaling, clipping, the optimizer step (skipped by the scaler on inf/NaN gradients) and
   * zeroing. As in Lightning, whose optimizer-step count (`global_step`) does not look at the
   * scaler's decision, a skipped step still counts as a global step, and the epoch's LR
   * scheduler step still runs (PyTorch would warn if a scheduler stepped before any optimizer
   * step; we do not).
   */
  async #step(
    run: FitRun,
    batch: Batch,
    at: { epoch: number; i: number; stepsNow: boolean; params: Tensor[] },
  ): Promise<void> {
    const { model, optimizer, scaler } = run;
    const t = this.config.trainer;
    await scope(async () => {
      let loss = autocast(() => model.trainingStep(batch, at.i), scaler !== null);
      if (this.#opts.lossHook) loss = this.#opts.lossHook(loss, at.epoch, at.i);
      this.#sink.trackLoss(loss);
      const factor = (scaler?.scale ?? 1) / t.accumulateGradBatches;
      backward(factor !== 1 ? mulScalar(loss, factor) : loss);
      if (!at.stepsNow) return;
      // As Lightning: unscale before clipping, so the threshold applies to true gradients.
      scaler?.unscale(at.params);
      clipGradients(at.params, t.gradientClipVal, t.gradientClipAlgorithm);
      if (scaler) {
        await scaler.step(optimizer, at.params);
        scaler.update();
      } else {
        optimizer.step();
      }
      optimizer.zeroGrad();
    });
  }

  /** The loss scale and the skipped-step count, logged in "16-mixed". */
  #ampMetrics(run: FitRun): Record<string, number> {
    if (!run.scaler) return {};
    return {
      "train/amp_scale": run.scaler.scale,
      "train/amp_skipped_steps": run.scaler.skippedSteps,
    };
  }

  /** Reads the epoch's metrics (NaN guard included), records and prints them. */
  async #endEpoch(run: FitRun, epoch: number): Promise<Record<string, number>> {
    const { metrics, lossSum } = await this.#sink.readEpoch();
    this.#guard(lossSum, epoch, run.epochBatches, run.globalStep);
    metrics["lr-AdamW"] = run.lrs.at(-1)!;
    Object.assign(metrics, this.#ampMetrics(run));
    this.#record(epoch, run.globalStep, metrics);
    this.progress.message(
      `epoch ${epoch + 1}/${run.maxEpochs} ` +
        Object.entries(metrics).filter(([key]) => !/acc_class_/.test(key))
          .map(([key, v]) => `${key} ${formatValue(v)}`).join(" ") +
        ` (${formatDuration(run.epochSeconds)}, ${
          (run.trainSeconds ? run.images / run.trainSeconds : 0).toFixed(1)
        } img/s)`,
    );
    return metrics;
  }

  /** Checkpoint and early stopping after an epoch; returns whether to stop. */
  async #callbacks(run: FitRun, epoch: number): Promise<boolean> {
    const metrics = run.lastMetrics;
    // Without validation a val/ monitor cannot be met (the config validator says so when
    // it is used); `last` is still saved.
    const valOff = this.config.trainer.limitValBatches === 0;
    const improved = run.ckpt.update(metrics, epoch, { required: !valOff });
    const stop = run.es?.update(metrics) ?? false;
    const contents = this.#contents(run, epoch, { nextEpoch: epoch + 1 }, metrics, improved);
    await run.ckpt.save(contents, improved);
    this.#bestPath = run.ckpt.bestPath;
    return stop;
  }

  /** Saves `last` for a stop at batch `batch` of `epoch` (0: at the epoch's start). */
  async #saveInterrupted(run: FitRun, epoch: number, batch: number): Promise<void> {
    run.stopReason = "interrupted";
    if (run.dev) return;
    const at = batch ? { nextEpoch: epoch, nextBatch: batch } : { nextEpoch: epoch };
    const savedEpoch = batch ? epoch : epoch - 1;
    const contents = this.#contents(run, savedEpoch, at, {}, false);
    if (batch) {
      contents.state.epochProgress = {
        sink: await this.#sink.epochState(),
        model: (await run.model.trainEpochState?.()) ?? {},
      };
    }
    await run.ckpt.saveLast(contents);
    this.progress.message(
      `interrupted in epoch ${epoch}${
        batch ? ` at batch ${batch}` : ""
      } (global step ${run.globalStep}): saved ${run.ckpt.lastPath}`,
    );
  }

  #contents(
    run: FitRun,
    epoch: number,
    at: { nextEpoch: number; nextBatch?: number },
    metrics: Record<string, number>,
    improved: boolean,
  ): CheckpointContents {
    const { ckpt, es } = run;
    return {
      stateDict: run.model.stateDict(),
      optimizer: run.optimizer.stateDict(),
      state: {
        epoch,
        globalStep: run.globalStep,
        scheduler: run.scheduler.stateDict(),
        rng: { seed: this.config.seed, ...at },
        hparams: { ...run.model.hparams } as Record<string, unknown>,
        classNames: [...this.#classNames],
        config: this.config,
        callbacks: {
          best: ckpt.best,
          bestEpoch: ckpt.bestEpoch,
          bestPath: ckpt.nextBestPath(improved),
          esBest: es?.best ?? null,
          esWait: es?.wait ?? 0,
        },
        metrics,
        ampScaler: run.scaler?.stateDict() ?? null,
      },
    };
  }

  /** The NaN guard: throws when the epoch's loss sum so far is not finite. */
  #guard(lossSum: number | undefined, epoch: number, batch: number, step: number): void {
    if (lossSum === undefined || Number.isFinite(lossSum)) return;
    const bestNote = this.#bestPath
      ? `the best checkpoint ${this.#bestPath} is intact`
      : "no checkpoint was written yet";
    throw new NonFiniteLossError(
      `training loss became ${lossSum} in epoch ${epoch} by batch ${batch} (global step ${step}); stopping: ${bestNote}. Try a lower optimizer.learningRate or trainer.gradientClipVal`,
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
    if (!this.#classNames.length) {
      await data.setup();
      this.#classNames = data.classNames;
    }
    this.prepareRunDir();
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
    const t = this.config.trainer;
    const r = await autocast(() =>
      evaluate(model, data.testLoader(), {
        limit: t.fastDevRun > 0 ? t.fastDevRun : t.limitTestBatches,
        progress: this.progress,
      }), this.#mixed());
    const last = this.files?.records.at(-1);
    this.#record(last?.epoch ?? 0, last?.step ?? 0, r.metrics);
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
    this.#fs.writeAtomic(path, html);
    return path;
  }

  /** Closes the event file and turns the run's kernel tuning off. */
  close(): void {
    this.#tb?.close();
    this.#tb = null;
    this.#tuning?.end();
    this.#tuning = null;
  }
}
