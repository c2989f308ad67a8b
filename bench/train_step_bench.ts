/**
 * Full training step (forward, class-weighted cross-entropy, backward, AdamW) in images/s:
 * the issue-12 target. Prints one line per configuration; a plain script rather than
 * `Deno.bench` so the first-step time and peak memory are reported too.
 *
 * `LP_NUM_THREADS=1 deno run --allow-read --allow-env bench/train_step_bench.ts [steps]`
 *
 * NOTE: figures on this 2-core machine (lavapipe `llvmpipe`, LP_NUM_THREADS=1, shared with
 * other jobs, so ±15 %), ResNet-18, batch 32, 10 classes:
 *
 * | date       | commit  | 32×32 ImageNet stem | 32×32 smallInput | first step (ImageNet) |
 * | ---------- | ------- | ------------------- | ---------------- | --------------------- |
 * | 2026-11-30 | 249b73f | BASELINE_IN img/s   | BASELINE_SM img/s | BASELINE_FIRST s     |
 *
 * PyTorch 1.13 CPU on one thread runs the ImageNet-stem step at about 256 img/s (issue 12).
 */
import { getDevice } from "../src/gpu/device.ts";
import { measureStep, type StepSpec } from "./train_step.ts";

const steps = Number(Deno.args[0] ?? 3);
const only = Deno.args[1]; // "imagenet" or "small" to run one configuration
const ctx = await getDevice();
const specs: StepSpec[] = [
  { arch: "resnet18", batch: 32, size: 32, smallInput: false },
  { arch: "resnet18", batch: 32, size: 32, smallInput: true },
];
console.log(`adapter: ${ctx.adapter.description}`);
for (const spec of specs) {
  if (only && (only === "small") !== spec.smallInput) continue;
  const r = await measureStep(spec, { steps, warm: spec.smallInput ? 0 : 1 });
  const cpu = r.cpuMs === null ? "" : `, CPU ${(r.batch / r.cpuMs * 1000).toFixed(1)} img/CPU-s`;
  console.log(
    `${r.arch} ${
      r.smallInput ? "smallInput" : "ImageNet stem"
    } ${r.size}x${r.size} batch ${r.batch}: ` +
      `${r.imagesPerSec.toFixed(1)} img/s (median step ${r.stepMs.toFixed(0)} ms${cpu}), ` +
      `first step ${(r.firstStepMs / 1000).toFixed(2)} s, peak ${
        (r.peakBytes / 2 ** 20).toFixed(1)
      } MiB, ` +
      `resident ${(r.residentBytes / 2 ** 20).toFixed(1)} MiB`,
  );
}
