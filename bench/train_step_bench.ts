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
 * | 5e796c1 | crop padding-only taps, dense-layer convs | 28.4–32.1 | (base 26.5–27.7) | 208.6            |
 * | 3d0acd8 | + im2col per (row, channel), vec4 AdamW | 39.2–39.4 | (base 21.0–29.4)  | 208.6               |
 * | 092fdcc | + cropped weight kept for the backward | 25.4–37.4 | 2.6 (base 2.1) | 208.6               |
 * | (steps) | glue without u32 divisions, 2×2 convs unfolded | 42.3–51.3 (base 39.8–43.2) | 3.7 (base 3.2) | 210.2 |
 * | (step2x) | subgroup-broadcast CPU kernels (`_sg`) | 37.5–61.6 (249b73f beside it 19.2–26.8: 1.95–2.40×, median 2.30×) | 3.9–4.5 (249b73f 2.8) | 210.2 |
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
 * NOTE (2026-11-30, fifth session): not on this machine's Debian build (no MKL):
 * `OMP_NUM_THREADS=1 python3 bench/torch_reference.py --quick` (the same step: weighted CE,
 * AdamW, batch 32) alternated with this bench at `LP_NUM_THREADS=1`, idle machine: PyTorch
 * 75.9 / 63.2 / 87.9 img/s, ours 57.1 / 61.0 / 63.8 img/s (60.2–66.8 img/CPU-s); earlier single
 * runs of the script gave 64.5–158 img/s. So ≈ 0.7–1× of PyTorch there, not the 0.25× the
 * issue's figure implies.
 *
 * `16-mixed` (trainer.precision: autocast + GradScaler), ImageNet stem, fresh processes
 * alternated with f32, 2 runs each (2026-11-30, load ≈ 7): f32 20.9–28.7 img/CPU-s, 16-mixed
 * 14.3–21.7 img/CPU-s (f16 casts around the f32 kernels cost passes on a CPU), peak 208.6 →
 * 204.3 MiB. At 224 px batch 8 (`peak_memory.ts`) the peak drops 374.6 → 304.3 MiB.
 *
 * Session of 2026-11-30 (second): each "base" figure is the tree at e4a84f8 run back to back
 * with the new one (alternated, fresh processes) at load 12–23, where images per CPU-second
 * swing widely (the same base tree read 20.1–29.4). Same-clock ratios: 1.03–1.21× (crop
 * alone), 1.34–1.87× (+ im2col, AdamW), 1.30–1.42× at 11:54 and 1.03–1.38× at 12:06–12:11
 * (+ kept crop; new 25.4–27.8 against base 20.1–25.4). GPU time summed over a step's
 * dispatches (timestamp queries): 2868 ms base, 2045–2332 ms now. So about 1.3× over the
 * session's base and 1.2–1.9× over the baseline (18.8–22.8); the 2× target (≈ 42
 * img/CPU-s) is not reached. The stem's input gradient is never computed (its input needs
 * none: 9 `conv2d_forward` dispatches = stem + 4 forward + 4 input gradients of layer1). Where the time went (`CONV_BENCH=step32
 * bench/conv_bench.ts`, per-step CPU ms of each conv geometry; `bench/profile_step.ts`):
 * - 3×3 convs on 1×1 planes multiplied 8 of 9 taps by padding: cropped to the centre tap they
 *   are dense layers (x [N, C] · Wᵀ, no im2col, no transposes): 71 → 31 CPU ms per layer
 *   (forward + dgrad + wgrad, 512 channels); the stride-2 3×3 onto 1×1 crops to 2×2, 39 → 32.
 * - The im2col kernel split its index with ~10 u32 divisions per entry (lavapipe runs them lane
 *   by lane): one invocation per (row, channel) now writes its taps (3×3 128→128 at 4×4 forward
 *   24.8 → 16.3 ms). The matmuls themselves run at 10–13 GFLOP/CPU-s on these shapes.
 * - AdamW ran one scalar invocation per element over 11.2M parameters: `adamw4.wgsl` (4 vec4s
 *   per invocation, same bits) made `bench/adamw_bench.ts` 7.1 → 2.7 s per 10 steps (wall).
 * - Tried and dropped: unfolding the weight into a dense [C·H·W, O·OH·OW] matrix for 2×2 planes
 *   (its build costs more than the matmul it saves: each weight element is used by only N·P
 *   products), the direct kernels on 4×4 and smaller planes (slower than im2col: 91 vs 69 ms),
 *   col2im with channels fastest and max-pool backward without divisions (no measurable change).
 * - Left: 3×3 convs on 2×2 and 4×4 planes still multiply padding (56 % and 31 % of their
 *   products); the stem's wgrad; AdamW and weight-sized copies are memory-bound (≈ 1.5 GB/s on
 *   this shared machine).
 *
 * Session of 2026-11-30 (third, branch `steps`): `bench/train_step_min.ts` (the same step on
 * APIs every tree has) copied into the baseline tree 249b73f and the session's start 4b19f62
 * (`git archive`), fresh processes alternated, 8 timed steps each, load 3.7–6.4:
 * start 41.6 / 43.2 / 41.3 / 42.8, now 51.1 / 42.3 / 51.3 / 50.8, baseline 26.8 / 25.9
 * img/CPU-s; again at load 5.6–6.3: start 40.5 / 39.8 / 42.6, now 44.7 / 46.0 / 46.0, baseline
 * 22.5 / 26.2 / 27.1. So 1.1–1.2× over the session's start and 1.6–2.0× over the baseline tree
 * on the same clock (45–51 img/CPU-s against the 18.8–22.8: the 2× figure of 42–50 in
 * absolute terms, not quite 2× against the baseline tree run beside it). This bench back to back: 47.7 now vs 39.0 at the start (43.1 vs 31.4 img/s
 * wall), first step 4.0 vs 5.7 s (warm cache), peak 210.2 vs 208.6 MiB (the unfolded 2×2
 * weights kept for the backward). smallInput: 3.7 vs 3.2 img/CPU-s (one pair, 2 steps); this
 * bench 3.2 img/CPU-s. Per process thread (/proc): the JS thread is 10–14 ms of a step, the
 * lavapipe thread the rest, so only shader time matters. What changed:
 * - u32 divisions, which lavapipe runs lane by lane (≈ 25 cycles each, 8 per vector op), were
 *   the bulk of most glue kernels: max pool (one invocation per row), conv staging (grid
 *   (plane, row, phase), vec4 source reads on stride-1 rows), BN reductions (incremental
 *   (image, offset) walk, same bits), BN apply / apply+ReLU / input gradient (channels as lanes,
 *   runs of 16 vec4s, CPU adapters only), strided copies (runs of 8 vec4s), weight packing.
 *   Step profile shares: max-pool backward 19 → 7 ms, staging 31–43 → 14 ms.
 * - The crop window compiled in and unrolled (`conv2d_tap_window.wgsl`): 46–72 → 18 ms.
 * - 3×3 convs on 2×2 planes run unfolded (`conv_unfold.ts`): every input/output pixel pair is
 *   a tap, so x [N, C·4] · wu [C·4, O·4] has 2.25× fewer products than im2col and needs no
 *   im2col, col2im or permutes; the unfolding and its fold are unrolled per geometry (vec4 in and
 *   out). 256→256 at 2×2, batch 32: 44 → 26 CPU ms per layer (forward + both gradients). The
 *   previous session's attempt lost because its build ran scalar stores with index math.
 * - Tried and dropped: AdamW with an unrolled body (65–73 vs 67–72 ms, memory-bound), uniform
 *   buffers for shared operands (only 1.4× cheaper loads on llvmpipe 22.3, 64 KiB limit), other
 *   register tiles of matmul_register (32×16 stays best), BN reduction workgroup sizes (noise).
 * - Now (GPU sum 643 ms at low load): matmul_register 36 %, direct conv forward 15 %, AdamW
 *   10 %, wgrad 11 %, im2col/col2im 9 %, the rest ≤ 3 % each.
 *
 * Session of 2026-11-30 (fourth, branch `step2x`): lavapipe (Mesa 22.3) runs every storage load
 * as a loop over the 8 lanes, so a value all lanes of a workgroup read (the A rows of the
 * register matmul, a kernel row's packed weights in the direct conv, the dy tile of the 3×3
 * weight gradient) cost 8 loads. With subgroups (8 lanes, one workgroup) each lane now loads one
 * eighth of it and `subgroupBroadcast` hands it out (`matmul_register_sg`, `conv2d_forward_sg`,
 * `conv2d_wgrad_nhwc_sg`; `src/kernels/broadcast.ts`): the same products in the same order, so
 * the same bits (the WGSL golden hashes hold with and without them). Deno 2.9 does not list
 * `subgroups` among lavapipe's adapter features but grants them (`AdapterFacts.subgroupLanes`).
 * - Per kernel, alternated in one process (CPU ms, staging included): matmul 1.35–2× on the
 *   step's shapes (13–15 → 20–29 GFLOP/CPU-s; with A loads shared, 32×8 tiles beat 32×16,
 *   64×4, 32×4 and 16×8); direct conv forward / input gradient 1.04–1.25×; 3×3 weight gradient
 *   1.09–1.22×. The whole step alternated in one process (`setSubgroupBroadcasts`), 8–10 steps
 *   each: 1.08, 1.11, 1.13× (matmul alone 1.00–1.11×).
 * - `bench/train_step_min.ts imagenet 8`, fresh processes alternated with the baseline tree
 *   249b73f (load 3.1–5.2): 25.0 / 52.7, 23.2 / 60.5, 24.3 / 51.8, 19.8 / 40.8, 18.5 / 56.8,
 *   20.7 / 64.6, 25.1 / 55.6 img/CPU-s (base / now): 1.9–3.1×. Rotations of
 *   baseline / session start e0fa70b / now: base 24.2 / 22.2 / 25.9 / 25.4 / 28.5 / 27.0,
 *   start 48.4 / 44.5 / 50.3 / 50.0 / 51.7 / 50.4, now 46.0 / 45.3 / 58.2 / 61.3 / 65.2 / 60.8
 *   (load 3.9–6.0): now / start
 *   0.95–1.26× (1.21–1.26 in the last three), now / baseline 1.90–2.41×. Over all 13 pairs with
 *   the baseline: 1.90–3.12×, median 2.25×, 12 of 13 at 2.0× or more. smallInput (2 steps):
 *   2.8 → 4.5; after the tile change, at load 9.9: 2.8 → 3.9.
 * - Tried and dropped: sharing one tap row's input vec4s between its taps in the direct
 *   kernels (LLVM already merges those loads: no change), im2col for 8×8 planes and direct for
 *   4×4 ones (still slower than the current split), other forward tiles (TM4 8–16: noise).
 * - This bench (imagenet, 3 steps, warm Mesa cache): 60.0 img/CPU-s, first step 6.4 s (load
 *   ≈ 5), peak 210.2 MiB (unchanged: the `_sg` forms replace the plain kernels, no new buffers).
 * - Then the forward tile of `conv2d_forward_sg`: 32 output channels × half the images
 *   (weights now cost a broadcast, not a load per lane): 1.13–1.23× on layer1 and the stem
 *   (forward + input gradient, alternated in one process); the whole step with vs without the
 *   `_sg` forms, alternated in one process: 1.18, 1.13×. Final rotations (baseline 249b73f /
 *   session start e0fa70b / now, `train_step_min.ts imagenet 8`, load 5.6–9.8): 26.8 / 47.2 /
 *   61.6, 26.4 / 48.8 / 57.8, 24.4 / 41.6 / 58.5, 19.9 / 41.8 / 47.8, 19.2 / 32.0 / 37.5
 *   img/CPU-s: now / baseline 1.95–2.40× (median 2.30×), now / start 1.14–1.41×.
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
