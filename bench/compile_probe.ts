/**
 * Where the first training step's time goes: pipeline creation (count, wall and CPU ms) vs
 * the rest. Wraps `GPUDevice.createComputePipeline` / `createShaderModule` to time them.
 *
 * `deno run --allow-read --allow-write --allow-env bench/compile_probe.ts [resnet18|resnet50] [size] [batch]`
 * (with `-A` on Linux it also splits the first step's CPU by thread, from /proc/self/task;
 * PROBE_VERBOSE=1 lists every pipeline; PROBE_PROFILE=1 times each kernel's first run, where
 * lavapipe JIT-compiles it; PROBE_JSON=file writes the variants for `shader_cost.ts --log`)
 *
 * NOTE: ResNet-18 32×32 ImageNet stem batch 32, lavapipe `llvmpipe` (Mesa 22.3),
 * LP_NUM_THREADS=1, a fresh MESA_SHADER_CACHE_DIR per run, machine shared (load 8–14), process
 * CPU seconds of the first step:
 *
 * | tree                                 | pipelines | GALLIVM_PERF=nopt | optimised | warm cache (nopt) |
 * | ------------------------------------ | --------- | ----------------- | --------- | ----------------- |
 * | e4a84f8                              | 46        | 29.6–41.9         | 36.9–50.6 | 10.7              |
 * | direct conv epilogues (shift window) | 46        | 11.8–19.7         | 16.0–24.3 | 7.4               |
 *
 * `createComputePipeline` is ≈ 1 s of that for all 46; LLVM runs at each pipeline's first
 * dispatch. Per variant (`shader_cost.ts`, nopt, before → after): conv2d_forward 3×3 9.8 → 1.4 s,
 * 7×7 9.6 → 1.45 s, conv2d_wgrad_nhwc 8.1 → 1.45 s; matmul_register ≈ 1.3 s each (3 variants),
 * the 37 small kernels ≈ 2 s together. `deno test tests/kernels tests/autograd` with an empty
 * cache and nopt: 113.5 → 99.5 s of CPU (102 tests). Back to back at load 11–14: 38.7 → 16.5 s
 * (nopt). Steady state, img/CPU-s over four alternating pairs: 26.8, 21.2, 23.9, 20.5 before;
 * 26.6, 24.1, 20.5, 29.0 after (no change beyond noise).
 *
 * NOTE (2026-11-30, firststep): same step, first step = first batch → forward, loss, backward,
 * AdamW, synced; process CPU s, three fresh-process runs each, base (4b19f62) and this tree
 * alternated, load 3–8. "opt" = GALLIVM_PERF unset (what users get), "nopt" = .ci/run's setting:
 *
 * | tree                              | pipelines | opt cold         | opt warm         | nopt cold       | nopt warm       |
 * | --------------------------------- | --------- | ---------------- | ---------------- | --------------- | --------------- |
 * | 4b19f62                           | 49        | 18.5, 17.8, 13.5 | 3.97, 3.12, 3.15 | 12.9, 9.7, 9.5  | 5.09, 4.51, 5.11 |
 * | no TRANS_A variant, fast expander | 48        | 14.2, 13.4, 10.7 | 3.97, 2.97, 2.75 | 8.5, 8.6, 9.2   | 4.32, 4.20, 4.28 |
 *
 * Steady step (median CPU ms, same runs): opt 720–1010 both trees, nopt 2000–2300 both trees —
 * GALLIVM_PERF=nopt makes the step itself ≈ 2.8× slower, so never bench speed under it. The
 * warm first step (opt, unloaded: wall 2.75 s) splits by thread as main ≈ 1.2 s (pipeline
 * creation: naga parse + validate ≈ half, SPIR-V + lavapipe NIR the rest, expansion 0.17 s),
 * lavapipe queue ≈ 0.8 s (each pipeline's LLVM IR is rebuilt at its first dispatch even when
 * the shader cache holds the code), compute ≈ 0.75 s (the step itself). Five register-blocked
 * variants (matmul NN/NT, conv2d_forward 3×3 and 7×7, conv2d_wgrad_nhwc) are ≈ 80 % of both
 * creation parts. What does not help here: `createComputePipelineAsync` (Deno 2.9.6 creates
 * the pipeline before returning: 4 matmul variants took the same 600 ms either way), and
 * submitting a new pipeline's first dispatch early so lavapipe compiles while the main thread
 * records (pipeline creation then waits on lavapipe's queue: recording went 4.6 → 28.8 s wall
 * at the same CPU). Measured and not taken: trans flags as uniforms (one matmul pipeline, but
 * its LLVM compile took 9.4 s instead of 1.3 s: llvmpipe treats the branches as divergent);
 * Bᵀ copied into place (+13–15 % on the NT products: weights are the larger operand); the stem
 * through im2col + matmul (3× slower); conv2d_forward 3×3 with its rows as a loop (LLVM 2.0 →
 * 0.93 s, creation 0.37 → 0.14 s, but ≈ +5 % steady step).
 *
 * NOTE (2026-11-30, fifth session): what does overlap is submitting the dispatches recorded so
 * far before making a new pipeline, once there are 16 or more (`src/gpu/dispatch.ts`): lavapipe
 * compiles and runs them on its queue thread while the main thread makes the next pipelines.
 * First step wall ms, warm cache, LP_NUM_THREADS=1, idle machine, fresh processes alternated:
 * one submit 2713, 2633; threshold 1 (a submit per new pipeline) 2479, 2443; 8: 2086, 2057;
 * 16: 2163, 2059, 2149; 32: 1995, 2099. Empty cache: one submit 8381, 8632; 16: 7835, 8011;
 * 64: 7589, 7759 (LLVM on the queue thread is then the whole critical path). The recording
 * phase now includes waiting for the queue, so "recording" grows while the step shrinks.
 */
import process from "node:process";
import { getDevice } from "../src/gpu/device.ts";
import { startProfile, stopProfile, sync } from "../src/gpu/dispatch.ts";
import { pipelineLog } from "../src/gpu/pipeline_cache.ts";
import { makeStep } from "./train_step.ts";

const [arch = "resnet18", size = "32", batch = "32"] = Deno.args;

/** CPU ms of each thread of this process by id (Linux /proc, needs -A), or null otherwise. */
function threadCpuMs(): Map<string, number> | null {
  try {
    const out = new Map<string, number>();
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime, in clock ticks (100 per second on Linux).
      out.set(e.name, (Number(f[11]) + Number(f[12])) * 10);
    }
    return out;
  } catch {
    return null;
  }
}

/** The threads that used 20 ms or more between two `threadCpuMs()` readings. */
function fmtThreads(a: Map<string, number>, b: Map<string, number>): string {
  const main = String(Deno.pid);
  const rows = [...b].map(([id, ms]) => [id, ms - (a.get(id) ?? 0)] as const)
    .filter(([, ms]) => ms >= 20).sort((x, y) => y[1] - x[1]);
  return rows.map(([id, ms]) => `${id === main ? "main" : id} ${ms}`).join(", ");
}
const ctx = await getDevice();
const dev = ctx.device as unknown as Record<string, (...a: unknown[]) => unknown>;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const acc: Record<string, { n: number; wall: number; cpu: number }> = {};
for (const name of ["createComputePipeline", "createShaderModule"]) {
  const orig = dev[name].bind(dev);
  acc[name] = { n: 0, wall: 0, cpu: 0 };
  dev[name] = (...a: unknown[]) => {
    const t0 = performance.now();
    const c0 = cpuMs();
    const r = orig(...a);
    acc[name].n++;
    acc[name].wall += performance.now() - t0;
    acc[name].cpu += cpuMs() - c0;
    return r;
  };
}
const { step, dispose } = makeStep({
  arch: arch as "resnet18",
  size: Number(size),
  batch: Number(batch),
  smallInput: false,
});
// PROBE_PROFILE=1: time every dispatch of the first and second steps with timestamp queries.
// Lavapipe JIT-compiles a pipeline's LLVM code when it first runs (not in
// createComputePipeline), so first minus second per kernel is that kernel's compile time.
const profiled = Deno.env.get("PROBE_PROFILE") === "1";
if (profiled) startProfile();
const t0 = performance.now();
const c0 = cpuMs();
const th0 = threadCpuMs();
step();
const recorded = performance.now() - t0;
const cRecorded = cpuMs() - c0;
const th1 = threadCpuMs();
const first = profiled ? await stopProfile() : null;
await sync();
console.log(
  `first step: wall ${(performance.now() - t0).toFixed(0)} ms (recording ${
    recorded.toFixed(0)
  } ms), CPU ${(cpuMs() - c0).toFixed(0)} ms (recording ${cRecorded.toFixed(0)} ms)`,
);
if (th0 && th1) {
  // Lavapipe works on its own threads after the submit: the queue thread creates each
  // pipeline's LLVM code at its first dispatch (or loads it from the shader cache), the
  // compute threads run the kernels.
  console.log(
    `  CPU ms by thread: recording ${fmtThreads(th0, th1)}; after ${
      fmtThreads(th1, threadCpuMs() ?? th1)
    }`,
  );
}
if (!profiled) {
  const c1 = cpuMs();
  step();
  await sync();
  console.log(`second step: CPU ${(cpuMs() - c1).toFixed(0)} ms`);
}
for (const [k, v] of Object.entries(acc)) {
  console.log(`${k}: ${v.n} calls, wall ${v.wall.toFixed(0)} ms, CPU ${v.cpu.toFixed(0)} ms`);
}
if (first) {
  startProfile();
  step();
  const second = await stopProfile();
  const rows = [...first].map(([k, v]) => [k, v.ms - (second.get(k)?.ms ?? 0), v.count] as const);
  rows.sort((a, b) => b[1] - a[1]);
  console.log("first-step GPU ms minus second-step (≈ LLVM compile at first run):");
  for (const [k, ms, n] of rows) {
    if (ms >= 5) console.log(`  ${k.padEnd(32)} ${ms.toFixed(0).padStart(7)} ms (${n} dispatches)`);
  }
}
const log = pipelineLog();
const byKernel = new Map<string, { n: number; chars: number; ms: number }>();
for (const r of log) {
  const e = byKernel.get(r.kernel) ?? { n: 0, chars: 0, ms: 0 };
  e.n++;
  e.chars += r.wgslChars;
  e.ms += r.expandMs + r.moduleMs + r.pipelineMs;
  byKernel.set(r.kernel, e);
}
const sum = (f: (r: (typeof log)[number]) => number): string =>
  log.reduce((a, r) => a + f(r), 0).toFixed(0);
console.log(
  `${log.length} pipelines: wall ms expanding ${sum((r) => r.expandMs)}, modules ${
    sum((r) => r.moduleMs)
  }, pipelines ${sum((r) => r.pipelineMs)} (LLVM runs later, at each pipeline's first dispatch)`,
);
console.log(`by kernel (count, WGSL chars, expand + module + pipeline wall ms):`);
for (const [k, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
  console.log(
    `  ${k.padEnd(32)} ${String(e.n).padStart(3)} ${String(e.chars).padStart(8)} ${
      e.ms.toFixed(0).padStart(6)
    }`,
  );
}
const json = Deno.env.get("PROBE_JSON");
if (json) {
  // For `bench/shader_cost.ts --log`: each variant's compile cost, measured alone.
  Deno.writeTextFileSync(
    json,
    JSON.stringify(log.map(({ kernel, overrides }) => ({ kernel, overrides }))),
  );
}
if (Deno.env.get("PROBE_VERBOSE")) {
  for (const r of log) {
    console.log(
      `  ${r.kernel} ${JSON.stringify(r.overrides)} ${r.wgslChars} chars, module ${
        r.moduleMs.toFixed(0)
      } ms, pipeline ${r.pipelineMs.toFixed(0)} ms`,
    );
  }
}
dispose();
