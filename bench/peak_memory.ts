/**
 * Peak GPU bytes of one training step (forward, weighted CE, backward, AdamW) from
 * `memoryStats().peakBytes`: `deno run --allow-read --allow-env bench/peak_memory.ts
 * [resnet18|resnet50] [size] [batch] [release|keep] [32|16-mixed]`. One step only (the first),
 * so it fits a CPU adapter.
 *
 * NOTE: measured on lavapipe (`llvmpipe`), ImageNet stem, 10 classes, one step at batch 8
 * (a batch-32 step at 224 px takes many minutes on this shared CPU). The figure counts pool
 * buckets in use, so it is the same on any adapter. Activations scale with the batch, so at
 * batch 32 the peak is about resident + 4 × (batch-8 peak − resident):
 *
 * | model 224 px | baseline 249b73f | fused BN+ReLU (ef703e8) | + `releaseGraph` | resident |
 * | ------------ | ---------------- | ----------------------- | ---------------- | -------- |
 * | ResNet-18 b8 | 537.3 MiB        | 458.5 MiB               | 371.8 MiB        | 147.0    |
 * | ResNet-50 b8 | 1784.0 MiB       | 1256.4 MiB              | 1131.6 MiB       | 288.9    |
 * | ResNet-18 b32 (extrapolated) | ≈ 1708 MiB | ≈ 1393 MiB   | ≈ 1046 MiB       | 147.0    |
 * | ResNet-50 b32 (extrapolated) | ≈ 6269 MiB | ≈ 4159 MiB   | ≈ 3660 MiB       | 288.9    |
 *
 * Measured at batch 32 (2026-11-30, main after the 16-mixed / tap-crop merges, f32): ResNet-18
 * 1171.7 MiB, 867.9 MiB with `releaseGraph` (resident 162.0, step 46–49 s); ResNet-50 3702.2
 * MiB, 3314.1 MiB with `releaseGraph` (resident 303.9, step 134–151 s).
 *
 * `16-mixed` (f16 activations and saved conv inputs), ResNet-18 224 px batch 8, keep (no
 * releaseGraph), 2026-11-30: 374.6 MiB in f32, 304.3 MiB in 16-mixed (resident 147.0).
 */
import { getDevice } from "../src/gpu/device.ts";
import { measureStep } from "./train_step.ts";

const [arch = "resnet18", size = "224", batch = "8", release = "", precision = "32"] = Deno.args;
// 16-mixed: at the default scale GradScaler skips the first steps (their scaled gradients
// overflow) and with them AdamW's state; scale 1 makes the first step a full one (memory does
// not depend on the scale).
const mixed = precision === "16-mixed";
await getDevice();
const r = await measureStep({
  arch: arch as "resnet18" | "resnet50",
  size: Number(size),
  batch: Number(batch),
  smallInput: false,
  releaseGraph: release === "release",
  precision: mixed ? "16-mixed" : "32",
  initScale: 1,
}, { steps: 0, warm: 0 });
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(
  `${arch} ${size}px batch ${batch}${
    release === "release" ? " releaseGraph" : ""
  } ${precision}: peak ${mib(r.peakBytes)} MiB, resident ${mib(r.residentBytes)} MiB, step ${
    (r.stepMs / 1000).toFixed(1)
  } s`,
);
