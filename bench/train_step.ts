/**
 * The full training step as the trainer runs it: forward, class-weighted cross-entropy,
 * backward, AdamW, all inside one `scope()`, one sync per step. Shared by
 * `train_step_bench.ts` and `report.ts`.
 *
 * @module
 */

import process from "node:process";
import { sync } from "../src/gpu/dispatch.ts";
import { memoryStats, resetPeak, scope, Tensor } from "../src/gpu/tensor.ts";
import { backward } from "../src/autograd/tape.ts";
import { crossEntropy } from "../src/autograd/loss.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { disableTuning, tunePending } from "../src/gpu/tune.ts";
import { enableKernelTuning } from "../src/kernels/tuning.ts";
import { resnet18, resnet50 } from "../src/nn/resnet.ts";
import { autocast } from "../src/autograd/autocast.ts";
import { GradScaler } from "../src/optim/grad_scaler.ts";

/** What one training-step measurement is about. */
export interface StepSpec {
  /** Architecture. */
  arch: "resnet18" | "resnet50";
  /** Images per step. */
  batch: number;
  /** Square input size in pixels. */
  size: number;
  /** CIFAR stem (3×3 conv, no max-pool) instead of the ImageNet stem. */
  smallInput: boolean;
  /** Classes of the classifier head. */
  numClasses?: number;
  /** `backward(…, { releaseGraph: true })`: activations freed as backward passes them. */
  releaseGraph?: boolean;
  /**
   * "16-mixed": the forward under autocast and the loss scaled by a `GradScaler` (unscale,
   * inf check with its one readback, step, update), as the trainer runs it. Default "32".
   */
  precision?: "32" | "16-mixed";
  /** Initial loss scale in "16-mixed" (default GradScaler's 65536). */
  initScale?: number;
}

/** A measured training step. */
export interface StepResult extends StepSpec {
  /** Wall milliseconds of the first step (pipeline compilation included). */
  firstStepMs: number;
  /** Median wall milliseconds of the timed steps. */
  stepMs: number;
  /** Images per second at the median step. */
  imagesPerSec: number;
  /**
   * Median process CPU milliseconds (all threads, lavapipe's included) per step, or null
   * where unknown. On a shared CPU this is steadier than wall time.
   */
  cpuMs: number | null;
  /**
   * Highest GPU bytes in use during one step, parameters and optimizer state included (the
   * timed steps', or the first step's when none is timed).
   */
  peakBytes: number;
  /** GPU bytes in use between steps (parameters, moments). */
  residentBytes: number;
}

/**
 * Builds the model, data and optimizer of `spec` and returns one step (async in "16-mixed",
 * which reads the found-inf flag back) and a disposer.
 */
export function makeStep(
  spec: StepSpec,
): { step: () => void | Promise<void>; dispose: () => void } {
  const classes = spec.numClasses ?? 10;
  const build = spec.arch === "resnet50" ? resnet50 : resnet18;
  const net = build({ numClasses: classes, smallInput: spec.smallInput, seed: 0 });
  const { batch: n, size } = spec;
  const x = Tensor.fromArray(
    Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
    [n, 3, size, size],
  );
  const y = Tensor.fromArray(Int32Array.from({ length: n }, (_, i) => (i * 7) % classes), [n], {
    dtype: "i32",
  });
  const w = Tensor.fromArray(
    Float32Array.from({ length: classes }, (_, c) => 0.5 + c / classes),
    [classes],
  );
  const opt = new AdamW(net.parameters(), { lr: 1e-3 });
  const params = net.parameters();
  const scaler = spec.precision === "16-mixed"
    ? new GradScaler({ initScale: spec.initScale })
    : null;
  const mixedStep = (s: GradScaler) =>
    scope(async () => {
      const loss = autocast(() => crossEntropy(net.forward(x), y, { weight: w }));
      backward(s.scaleLoss(loss), undefined, { releaseGraph: spec.releaseGraph ?? false });
      s.unscale(params);
      await s.step(opt, params);
      s.update();
      opt.zeroGrad();
    });
  const step = () =>
    scaler ? mixedStep(scaler) : scope(() => {
      backward(crossEntropy(net.forward(x), y, { weight: w }), undefined, {
        releaseGraph: spec.releaseGraph ?? false,
      });
      opt.step();
      opt.zeroGrad();
    });
  const dispose = () => {
    scaler?.dispose();
    opt.zeroGrad();
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
    w.dispose();
  };
  return { step, dispose };
}

/**
 * Runs `warm` untimed steps after the first, then `steps` timed ones; reports the median.
 * With `steps: 0` the first step stands for all (time and peak).
 */
export async function measureStep(
  spec: StepSpec,
  opts: { steps?: number; warm?: number; tune?: boolean } = {},
): Promise<StepResult> {
  if (opts.tune) enableKernelTuning();
  const { step, dispose } = makeStep(spec);
  try {
    resetPeak();
    let t0 = performance.now();
    await step();
    await sync();
    const firstStepMs = performance.now() - t0;
    const firstPeakBytes = memoryStats().peakBytes;
    // Measured kernel choice: time the candidates of every bucket the first step noted.
    if (opts.tune) await tunePending({ reps: 2 });
    for (let i = 0; i < (opts.warm ?? 1); i++) {
      await step();
      await sync();
    }
    const residentBytes = memoryStats().liveBytes;
    resetPeak();
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < (opts.steps ?? 3); i++) {
      const c0 = cpuTimeMs();
      t0 = performance.now();
      await step();
      await sync();
      times.push(performance.now() - t0);
      const c1 = cpuTimeMs();
      if (c0 !== null && c1 !== null) cpu.push(c1 - c0);
    }
    cpu.sort((a, b) => a - b);
    const peakBytes = times.length ? memoryStats().peakBytes : firstPeakBytes;
    times.sort((a, b) => a - b);
    const stepMs = times.length ? times[Math.floor(times.length / 2)] : firstStepMs;
    return {
      ...spec,
      firstStepMs,
      stepMs,
      imagesPerSec: spec.batch / stepMs * 1000,
      cpuMs: cpu.length ? cpu[Math.floor(cpu.length / 2)] : null,
      peakBytes,
      residentBytes,
    };
  } finally {
    dispose();
    if (opts.tune) disableTuning();
  }
}

/** User + system CPU milliseconds of this process (all threads), or null where unknown. */
export function cpuTimeMs(): number | null {
  try {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  } catch {
    return null;
  }
}
