/**
 * Full training step (forward, class-weighted cross-entropy, backward, AdamW) in images/s:
 * the issue-12 target. Prints one line per configuration; a plain script rather than
 * `Deno.bench` so the first-step time and peak memory are reported too.
 *
 * `LP_NUM_THREADS=1 deno run --allow-read --allow-env bench/train_step_bench.ts [steps]
 * [imagenet|small] [tuned]`
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
 * that load. First step with an EMPTY Mesa shader cache (`bench/compile_probe.ts`, 46
 * pipelines; most of it is LLVM at each pipeline's first dispatch): 29.6–41.9 s of CPU at
 * e4a84f8 with `GALLIVM_PERF=nopt` (36.9–50.6 s optimised), 11.8–19.7 s (16.0–24.3 s) after the
 * direct conv epilogues stopped unrolling 512 conditional stores; warm cache 10.7 → 7.4 s.
 * Steady state unchanged: 26.8 / 21.2 / 23.9 / 20.5 img/CPU-s before, 26.6 / 24.1 / 20.5 / 29.0
 * after (alternating pairs). Resident
 * (parameters + AdamW moments): 142.4 MiB.
 * PyTorch 1.13 CPU on one thread runs the ImageNet-stem step at about 256 img/s (issue 12).
 */
import { getDevice } from "../src/gpu/device.ts";
import { measureStep, type StepSpec } from "./train_step.ts";

const steps = Number(Deno.args[0] ?? 3);
const only = Deno.args[1]; // "imagenet" or "small" to run one configuration
const tune = Deno.args[2] === "tuned"; // measured kernel choice (tuned after the first step)
const ctx = await getDevice();
const specs: StepSpec[] = [
  { arch: "resnet18", batch: 32, size: 32, smallInput: false },
  { arch: "resnet18", batch: 32, size: 32, smallInput: true },
];
console.log(`adapter: ${ctx.adapter.description}`);
for (const spec of specs) {
  if (only && (only === "small") !== spec.smallInput) continue;
  const r = await measureStep(spec, { steps, warm: spec.smallInput ? 0 : 1, tune });
  const cpu = r.cpuMs === null ? "" : `, CPU ${(r.batch / r.cpuMs * 1000).toFixed(1)} img/CPU-s`;
  console.log(
    `${r.arch} ${
      r.smallInput ? "smallInput" : "ImageNet stem"
    } ${r.size}x${r.size} batch ${r.batch}${tune ? " (tuned)" : ""}: ` +
      `${r.imagesPerSec.toFixed(1)} img/s (median step ${r.stepMs.toFixed(0)} ms${cpu}), ` +
      `first step ${(r.firstStepMs / 1000).toFixed(2)} s, peak ${
        (r.peakBytes / 2 ** 20).toFixed(1)
      } MiB, ` +
      `resident ${(r.residentBytes / 2 ** 20).toFixed(1)} MiB`,
  );
}
