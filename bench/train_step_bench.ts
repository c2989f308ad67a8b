/**
 * Full training step (forward, class-weighted cross-entropy, backward, AdamW) in images/s:
 * the issue-12 target. Prints one line per configuration; a plain script rather than
 * `Deno.bench` so the first-step time and peak memory are reported too.
 *
 * `LP_NUM_THREADS=1 deno run --allow-read --allow-env bench/train_step_bench.ts [steps]
 * [imagenet|small] [tuned] [16-mixed]`
 *
 * NOTE: figures on this 2-core machine (lavapipe `llvmpipe`, LP_NUM_THREADS=1), ResNet-18,
 * batch 32, 10 classes. The machine was shared with up to 7 other jobs (load average 10–27),
 * so wall-clock images/s swing 2× between runs; images per CPU-second of this process (all
 * threads, lavapipe's included; `process.cpuUsage()`) are the comparable figure.
 *
 * | commit  | change                         | ImageNet stem 32×32 | smallInput 32×32 | peak MiB (ImageNet) |
 * | ------- | ------------------------------ | ------------------- | ---------------- | ------------------- |
 * | 249b73f | baseline (issue 12: 25 img/s)  | 22.8 img/CPU-s      | 2.5 img/CPU-s    | 214.4               |
 * | ef703e8 | fused BN + ReLU, BN + add + ReLU | 23.3 img/CPU-s    |                  | 208.6               |
 * | e1d66fc | BN reductions sized per channel | 28.1 img/CPU-s     | 2.6 img/CPU-s    | 208.6               |
 * | b2d8651 | + measured kernel choice (`tuned`) | 27.9 img/CPU-s  |                  | 208.6               |
 *
 * Back to back at load ≈ 7 (09:12 and 09:16): now 13.6 img/s wall, 30.0 img/CPU-s, first step
 * 24.6 s; the baseline tree 11.5 img/s wall, 18.8 img/CPU-s, first step 19.3 s. So the gain
 * is 1.2–1.6× depending on the clock, short of the 2× (conv and matmul, owned by the
 * kernel rewrite, are now ≈ 90 % of the step's GPU time).
 *
 * Tuned is no faster than the heuristics on lavapipe (the measured choices there match the
 * CPU-adapter heuristics where it matters). Wall clock at the baseline: 4.2–5.8 img/s
 * (ImageNet stem), 0.3–0.7 img/s (smallInput), first step 35–41 s (ImageNet stem) under
 * that load; `bench/compile_probe.ts` puts the first step at 9.0 s of CPU, 5.1 s of it in 35
 * `createComputePipeline` calls and 1.1 s in 27 `createShaderModule` calls. Resident
 * (parameters + AdamW moments): 142.4 MiB.
 * PyTorch 1.13 CPU on one thread runs the ImageNet-stem step at about 256 img/s (issue 12).
 *
 * `16-mixed` (trainer.precision: autocast + GradScaler), ImageNet stem, fresh processes
 * alternated with f32, 2 runs each (2026-11-30, load ≈ 7): f32 20.9–28.7 img/CPU-s, 16-mixed
 * 14.3–21.7 img/CPU-s (f16 casts around the f32 kernels cost passes on a CPU), peak 208.6 →
 * 204.3 MiB. At 224 px batch 8 (`peak_memory.ts`) the peak drops 374.6 → 304.3 MiB.
 */
import { getDevice } from "../src/gpu/device.ts";
import { measureStep, type StepSpec } from "./train_step.ts";

const steps = Number(Deno.args[0] ?? 3);
const only = Deno.args[1]; // "imagenet" or "small" to run one configuration
const tune = Deno.args.slice(2).includes("tuned"); // measured kernel choice (tuned after step 1)
// "16-mixed": trainer.precision's mixed precision (autocast + GradScaler).
const precision = Deno.args.slice(2).includes("16-mixed") ? "16-mixed" : "32";
const ctx = await getDevice();
const specs: StepSpec[] = [
  { arch: "resnet18", batch: 32, size: 32, smallInput: false },
  { arch: "resnet18", batch: 32, size: 32, smallInput: true },
];
console.log(`adapter: ${ctx.adapter.description}`);
for (const spec of specs) {
  if (only && (only === "small") !== spec.smallInput) continue;
  const r = await measureStep({ ...spec, precision }, {
    steps,
    // 16-mixed: the first steps are skipped while the loss scale settles (3 here).
    warm: spec.smallInput ? 0 : precision === "16-mixed" ? 3 : 1,
    tune,
  });
  const cpu = r.cpuMs === null ? "" : `, CPU ${(r.batch / r.cpuMs * 1000).toFixed(1)} img/CPU-s`;
  console.log(
    `${r.arch} ${
      r.smallInput ? "smallInput" : "ImageNet stem"
    } ${r.size}x${r.size} batch ${r.batch} precision ${precision}${tune ? " (tuned)" : ""}: ` +
      `${r.imagesPerSec.toFixed(1)} img/s (median step ${r.stepMs.toFixed(0)} ms${cpu}), ` +
      `first step ${(r.firstStepMs / 1000).toFixed(2)} s, peak ${
        (r.peakBytes / 2 ** 20).toFixed(1)
      } MiB, ` +
      `resident ${(r.residentBytes / 2 ** 20).toFixed(1)} MiB`,
  );
}
