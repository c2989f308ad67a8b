/**
 * Peak GPU bytes of one training step (forward, weighted CE, backward, AdamW) from
 * `memoryStats().peakBytes`: `deno run --allow-read --allow-env bench/peak_memory.ts
 * [resnet18|resnet50] [size] [batch] [release]`. One step only (the first), so it fits a CPU adapter.
 *
 * NOTE: measured on lavapipe (`llvmpipe`), ImageNet stem, 10 classes (the figure is the
 * same on any adapter: it counts pool buckets, not driver overhead). Activations scale with
 * the batch, so batch 32 ≈ resident + 4 × (batch-8 peak − resident):
 *
 * | model, input, batch           | peak MiB (before fusion) | peak MiB (fused BN+ReLU) | resident MiB |
 * | ----------------------------- | ------------------------ | ------------------------ | ------------ |
 * PEAK_ROWS
 */
import { getDevice } from "../src/gpu/device.ts";
import { measureStep } from "./train_step.ts";

const [arch = "resnet18", size = "224", batch = "8", release = ""] = Deno.args;
await getDevice();
const r = await measureStep({
  arch: arch as "resnet18" | "resnet50",
  size: Number(size),
  batch: Number(batch),
  smallInput: false,
  releaseGraph: release === "release",
}, { steps: 0, warm: 0 });
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(
  `${arch} ${size}px batch ${batch}${release ? " releaseGraph" : ""}: peak ${
    mib(r.peakBytes)
  } MiB, resident ${mib(r.residentBytes)} MiB, step ${(r.stepMs / 1000).toFixed(1)} s`,
);
