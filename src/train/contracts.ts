/**
 * What the trainer needs of a model, its optimizer and scheduler, and a data module: the
 * hooks of Lightning's `LightningModule` and `LightningDataModule`, nothing more.
 * `BaseClassificationModel` and `ClassificationDataModule` satisfy them.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import type { Batch, LogSink } from "../models/types.ts";
import type { PretrainedReport } from "../models/pretrained.ts";
import type { ParamGroupRule } from "../models/freeze.ts";

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

/** An epoch-end hook's result: the confusion matrix (`m[target][prediction]`), if kept. */
export type EpochEndResult = number[][] | null | void;

/** What the trainer needs of a model (Lightning's hooks; `BaseClassificationModel` has them). */
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
  /** Replaces the loss's class weights (the data module's inverse frequencies). */
  setClassWeights?(weights: Float32Array): void;
  /** Where `log()` calls of the next hook go (the trainer hands one per hook). */
  setLogger(sink: LogSink): void;
  /** Loss of a training batch, on the tape. */
  trainingStep(batch: Batch, batchIdx: number): Tensor;
  /** Validation batch (logs and updates metrics). */
  validationStep(batch: Batch, batchIdx: number): unknown;
  /** Test batch (logs and updates metrics). */
  testStep(batch: Batch, batchIdx: number): unknown;
  /** The training epoch's metric state so far, kept by a mid-epoch checkpoint. */
  trainEpochState?(): Promise<Record<string, number[]>>;
  /** Restores `trainEpochState()` when resuming inside an epoch. */
  loadTrainEpochState?(state: Record<string, number[]>): void;
  /** End of the training epoch (logs epoch metrics, resets them). */
  onTrainEpochEnd?(): Promise<void> | void;
  /** End of validation: logs epoch metrics; returns the confusion matrix if it keeps one. */
  onValidationEpochEnd?(): Promise<EpochEndResult> | EpochEndResult;
  /** End of testing: logs epoch metrics; returns the confusion matrix if it keeps one. */
  onTestEpochEnd?(): Promise<EpochEndResult> | EpochEndResult;
  /** Loads pretrained weights (`model.pretrained`); see models/pretrained.ts. */
  loadPretrained?(source: string, opts: { strict?: boolean }): Promise<PretrainedReport>;
  /** The optimizer (with `optimizer.paramGroups`) and its per-epoch schedule. */
  configureOptimizers(maxEpochs: number, opts?: { paramGroups?: readonly ParamGroupRule[] }): {
    optimizer: TrainerOptimizer;
    scheduler: TrainerScheduler;
  };
  /** Frees GPU memory. */
  dispose(): void;
}

/** A batch iterable (the data module's loaders satisfy it). */
export interface BatchLoader extends AsyncIterable<Batch> {
  /** Batches per epoch. */
  readonly length: number;
  /** Seeds the epoch's shuffle and augmentation; `startBatch` skips into it (resume). */
  setEpoch?(epoch: number, startBatch?: number): void;
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
