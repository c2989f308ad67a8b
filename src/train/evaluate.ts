/**
 * The evaluation loop (Lightning's validation and test loops): the model's `validationStep`
 * or `testStep` over a loader without gradients, then its epoch-end hook.
 *
 * @module
 */

import { scope } from "../gpu/tensor.ts";
import { flush } from "../gpu/dispatch.ts";
import { noGrad } from "../autograd/tape.ts";
import type { Batch } from "../models/types.ts";
import type { BatchLoader, EpochEndResult, TrainableModel } from "./contracts.ts";
import { MetricSink } from "./metric_sink.ts";
import type { Progress } from "./progress.ts";

/** How many batches of `total` a limit allows (null: all; integer: count; fraction: share). */
export function limitBatches(total: number, limit: number | null): number {
  if (limit === null) return total;
  if (Number.isInteger(limit)) return Math.min(total, limit);
  return Math.min(total, Math.max(1, Math.floor(total * limit)));
}

/** Frees a batch's tensors. */
export function disposeBatch(b: Batch): void {
  b.images.dispose();
  b.labels.dispose();
}

/** Options of `runEvalEpoch`. */
export interface EvalEpochOptions {
  /** Which hooks run. */
  stage: "val" | "test";
  /** Batches to run. */
  n: number;
  /** Where the model logs. */
  sink: MetricSink;
  /** Progress output. */
  progress?: Progress;
  /** Epoch shown in the progress. */
  epoch: number;
  /** Epochs shown in the progress. */
  maxEpochs: number;
}

/**
 * Runs `n` batches of `stage` steps and then the stage's epoch-end hook; returns the images
 * seen and the hook's confusion matrix. The model is back in training mode afterwards.
 */
export async function runEvalEpoch(
  model: TrainableModel,
  loader: BatchLoader,
  o: EvalEpochOptions,
): Promise<{ images: number; confusion: number[][] | null }> {
  model.eval();
  model.setLogger(o.sink.logger(o.stage));
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
            if (o.stage === "val") model.validationStep(batch, i);
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
          phase: o.stage,
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
  model.setLogger(o.sink.logger("epochEnd"));
  const r: EpochEndResult = o.stage === "val"
    ? await model.onValidationEpochEnd?.()
    : await model.onTestEpochEnd?.();
  return { images, confusion: r ?? null };
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

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Batch limit (same forms as `trainer.limitTestBatches`). */
  limit?: number | null;
  /** Progress output. */
  progress?: Progress;
  /** "test" (default) calls `testStep`, "val" calls `validationStep`. */
  phase?: "val" | "test";
}

/**
 * Runs the model over a loader without gradients and returns the epoch metrics it logs
 * (`test/loss`, `test/acc_top1`, `test/acc_top5`, `test/acc_class_i`) and the confusion
 * matrix its epoch-end hook returns.
 */
export async function evaluate(
  model: TrainableModel,
  loader: BatchLoader,
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  const sink = new MetricSink();
  try {
    const { images, confusion } = await runEvalEpoch(model, loader, {
      stage: options.phase ?? "test",
      n: limitBatches(loader.length, options.limit ?? null),
      sink,
      progress: options.progress,
      epoch: 0,
      maxEpochs: 1,
    });
    const { metrics } = await sink.readEpoch();
    return { metrics, confusion, images };
  } finally {
    sink.dispose();
  }
}
