/**
 * Test models for the export tests: registered classification models whose BatchNorm
 * parameters and running statistics are random (so folding BN is a real test) but keep the
 * activations O(1), and a seeded input batch.
 */
import { Tensor } from "../../src/gpu/tensor.ts";
import { scope } from "../../src/gpu/tensor.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { createModel } from "../../src/models/registry.ts";
import "../../src/models/resnet_models.ts";
import type { BaseClassificationModel } from "../../src/models/base_classification_model.ts";
import { rand } from "../helpers.ts";

/** One export case. */
export interface ModelCase {
  /** Registry name. */
  name: "resnet18" | "resnet34" | "resnet50";
  /** CIFAR-style stem. */
  smallInput: boolean;
  /** Input channels. */
  inChannels: 1 | 3;
  /** Input side. */
  size: number;
  /** Number of classes. */
  numClasses: number;
}

/**
 * Builds the model of `c` in eval mode with random BN statistics: γ ∈ [0.5, 1), β, μ ∈
 * [-0.1, 0.1), σ² ∈ [0.5, 1.5); the last BN of each block gets γ ∈ [0.1, 0.3) so the
 * residual sums stay O(1) through 16 blocks, as in a trained network; `fc` is scaled so the
 * logits are O(1).
 */
export function buildCase(c: ModelCase, seed = 1): BaseClassificationModel {
  const model = createModel(c.name, {
    numClasses: c.numClasses,
    smallInput: c.smallInput,
    inChannels: c.inChannels,
    seed,
  });
  const dict = new Map<string, Tensor>();
  let s = seed * 1000;
  const u = (n: number, lo: number, hi: number) =>
    Array.from(rand(n, ++s), (v) => lo + (hi - lo) * (v + 1) / 2);
  for (const [k, t] of model.stateDict()) {
    if (k === "model.fc.weight") {
      const a = 8 / Math.sqrt(t.shape[1]); // logits O(1), so 1e-4 is a tight tolerance
      dict.set(k, Tensor.fromArray(u(t.size, -a, a), t.shape).keep());
    }
    if (k === "model.fc.bias") dict.set(k, Tensor.fromArray(u(t.size, -0.5, 0.5), t.shape).keep());
    if (!/bn\d|downsample\.1/.test(k)) continue;
    const n = t.size;
    const last = /bn[23]\.weight$/.test(k) &&
      (c.name === "resnet50" ? k.endsWith("bn3.weight") : k.endsWith("bn2.weight"));
    let v: number[] | null = null;
    if (k.endsWith(".weight")) v = last ? u(n, 0.1, 0.3) : u(n, 0.5, 1);
    else if (k.endsWith(".bias") || k.endsWith("running_mean")) v = u(n, -0.1, 0.1);
    else if (k.endsWith("running_var")) v = u(n, 0.5, 1.5);
    if (v) dict.set(k, Tensor.fromArray(v, t.shape).keep());
  }
  model.loadStateDict(dict, { strict: false });
  for (const t of dict.values()) t.dispose();
  return model.eval();
}

/** A seeded input batch `[n, C, H, W]` in [-1, 1). */
export function inputBatch(c: ModelCase, n: number, seed = 7): Float32Array {
  return rand(n * c.inChannels * c.size * c.size, seed);
}

/** Our own eval forward of `x` (`[n, C, H, W]`): the logits. */
export async function ownLogits(
  model: BaseClassificationModel,
  c: ModelCase,
  x: Float32Array,
): Promise<Float32Array> {
  const n = x.length / (c.inChannels * c.size * c.size);
  const y = scope(() =>
    noGrad(() => model.forward(Tensor.fromArray(x, [n, c.inChannels, c.size, c.size])))
  );
  try {
    return (await y.toArray()) as Float32Array;
  } finally {
    y.dispose();
  }
}
