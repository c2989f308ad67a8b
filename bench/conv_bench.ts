/**
 * Conv2d throughput on ResNet-18 layer shapes at batch 32 (layer inputs of 32×32 and 56×56,
 * and the planes of ResNet-18 on 32×32 images): forward, input gradient (dgrad)
 * and weight gradient (wgrad), GFLOP/s = 2·N·O·OH·OW·C·kh·kw per pass (staging and weight
 * packing included in the time). A table from timed loops with one sync per pass type is
 * printed when the module loads; `deno bench` timings follow. `CONV_BENCH=bar` limits both to
 * the acceptance shape (3×3, 64→64, 32×32, batch 32); `CONV_BENCH=step32` runs every conv of
 * the ResNet-18 step at 32×32 (ImageNet stem) and adds each one's CPU ms per training step;
 * `CONV_ALGO=direct|im2col|igemm` forces a kernel family. Run it with `LP_NUM_THREADS=1` on
 * lavapipe. Each cell is "wall / cpu": GFLOP/s over wall time and over the process's CPU
 * time (all threads). On a shared machine wall time drifts with load; with one lavapipe
 * thread the CPU-time figure is the load-independent one.
 */
import process from "node:process";
import { getDevice, gpu } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import {
  conv2d,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  type ConvAlgorithm,
} from "../src/kernels/conv.ts";

await getDevice();

interface Shape {
  name: string;
  c: number;
  o: number;
  hw: number;
  k: number;
  s: number;
  p: number;
}

const N = 32;
const ALL: Shape[] = [
  { name: "3x3 64→64 s1 @32", c: 64, o: 64, hw: 32, k: 3, s: 1, p: 1 },
  { name: "3x3 64→128 s2 @32", c: 64, o: 128, hw: 32, k: 3, s: 2, p: 1 },
  { name: "1x1 64→128 s2 @32", c: 64, o: 128, hw: 32, k: 1, s: 2, p: 0 },
  { name: "3x3 128→128 s1 @16", c: 128, o: 128, hw: 16, k: 3, s: 1, p: 1 },
  { name: "3x3 256→256 s1 @8", c: 256, o: 256, hw: 8, k: 3, s: 1, p: 1 },
  { name: "3x3 512→512 s1 @4", c: 512, o: 512, hw: 4, k: 3, s: 1, p: 1 },
  { name: "7x7 3→64 s2 @56 (stem)", c: 3, o: 64, hw: 56, k: 7, s: 2, p: 3 },
  { name: "3x3 64→64 s1 @56", c: 64, o: 64, hw: 56, k: 3, s: 1, p: 1 },
  { name: "3x3 128→128 s1 @28", c: 128, o: 128, hw: 28, k: 3, s: 1, p: 1 },
  { name: "1x1 128→256 s2 @28", c: 128, o: 256, hw: 28, k: 1, s: 2, p: 0 },
  { name: "3x3 256→256 s1 @14", c: 256, o: 256, hw: 14, k: 3, s: 1, p: 1 },
  { name: "3x3 512→512 s1 @7", c: 512, o: 512, hw: 7, k: 3, s: 1, p: 1 },
  // ResNet-18 on 32×32 images (configs/resnet18.yaml): the late stages are tiny planes.
  { name: "7x7 3→64 s2 @32 (stem)", c: 3, o: 64, hw: 32, k: 7, s: 2, p: 3 },
  { name: "3x3 64→64 s1 @8", c: 64, o: 64, hw: 8, k: 3, s: 1, p: 1 },
  { name: "3x3 128→128 s1 @4", c: 128, o: 128, hw: 4, k: 3, s: 1, p: 1 },
  { name: "3x3 256→256 s1 @2", c: 256, o: 256, hw: 2, k: 3, s: 1, p: 1 },
  { name: "3x3 512→512 s1 @1", c: 512, o: 512, hw: 1, k: 3, s: 1, p: 1 },
  { name: "1x1 256→512 s2 @2", c: 256, o: 512, hw: 2, k: 1, s: 2, p: 0 },
];
/**
 * Every conv of one ResNet-18 step on 32×32 images with the ImageNet stem (the issue-12 step
 * bench), with how often it runs per step (`count`): `CONV_BENCH=step32` adds the CPU
 * milliseconds each geometry costs per training step.
 */
const STEP32: (Shape & { count: number })[] = [
  { name: "7x7 3→64 s2 @32 (stem)", c: 3, o: 64, hw: 32, k: 7, s: 2, p: 3, count: 1 },
  { name: "3x3 64→64 s1 @8", c: 64, o: 64, hw: 8, k: 3, s: 1, p: 1, count: 4 },
  { name: "3x3 64→128 s2 @8", c: 64, o: 128, hw: 8, k: 3, s: 2, p: 1, count: 1 },
  { name: "1x1 64→128 s2 @8", c: 64, o: 128, hw: 8, k: 1, s: 2, p: 0, count: 1 },
  { name: "3x3 128→128 s1 @4", c: 128, o: 128, hw: 4, k: 3, s: 1, p: 1, count: 3 },
  { name: "3x3 128→256 s2 @4", c: 128, o: 256, hw: 4, k: 3, s: 2, p: 1, count: 1 },
  { name: "1x1 128→256 s2 @4", c: 128, o: 256, hw: 4, k: 1, s: 2, p: 0, count: 1 },
  { name: "3x3 256→256 s1 @2", c: 256, o: 256, hw: 2, k: 3, s: 1, p: 1, count: 3 },
  { name: "3x3 256→512 s2 @2", c: 256, o: 512, hw: 2, k: 3, s: 2, p: 1, count: 1 },
  { name: "1x1 256→512 s2 @2", c: 256, o: 512, hw: 2, k: 1, s: 2, p: 0, count: 1 },
  { name: "3x3 512→512 s1 @1", c: 512, o: 512, hw: 1, k: 3, s: 1, p: 1, count: 3 },
];
const which = Deno.env.get("CONV_BENCH");
const SHAPES: (Shape & { count?: number })[] = which === "bar"
  ? ALL.slice(0, 1)
  : which === "step32"
  ? STEP32
  : ALL;
/** `CONV_ALGO=direct|im2col|igemm` forces one kernel family (default: the automatic choice). */
const algorithm = (Deno.env.get("CONV_ALGO") ?? "auto") as ConvAlgorithm;
type Pass = "forward" | "dgrad" | "wgrad";
const PASSES: Pass[] = ["forward", "dgrad", "wgrad"];

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (((i * 7919 + seed) % 1000) / 1000 - 0.5) * 0.1;
  return a;
}

interface Operands {
  x: Tensor;
  w: Tensor;
  dy: Tensor;
  flop: number;
}

function operands(s: Shape): Operands {
  const x = Tensor.fromArray(fill(N * s.c * s.hw * s.hw, 1), [N, s.c, s.hw, s.hw]);
  const w = Tensor.fromArray(fill(s.o * s.c * s.k * s.k, 2), [s.o, s.c, s.k, s.k]);
  const g = conv2dGeometry(x.shape, w.shape, { stride: s.s, padding: s.p });
  const dy = Tensor.fromArray(fill(N * s.o * g.oh * g.ow, 3), [N, s.o, g.oh, g.ow]);
  return { x, w, dy, flop: 2 * N * s.o * g.oh * g.ow * s.c * s.k * s.k };
}

function run(s: Shape, op: Operands, pass: Pass): void {
  const opts = { stride: s.s, padding: s.p, algorithm };
  scope(() => {
    if (pass === "forward") conv2d(op.x, op.w, opts);
    else if (pass === "dgrad") conv2dInputGrad(op.dy, op.w, { ...opts, inputShape: op.x.shape });
    else conv2dWeightGrad(op.x, op.dy, { ...opts, weightShape: op.w.shape });
  });
}

/**
 * GFLOP/s of back-to-back passes (≥ ~2 GFLOP of work), first dispatch to final sync, over
 * wall time and over process CPU time.
 */
async function gflops(
  s: Shape & { count?: number },
  op: Operands,
  pass: Pass,
): Promise<string> {
  run(s, op, pass); // compile the pipelines
  await sync();
  const reps = Math.max(1, Math.min(20, Math.round(2e9 / op.flop)));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) run(s, op, pass);
  await sync();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const rate = (t: number) => ((op.flop * reps) / t / 1e9).toFixed(2);
  // Per-step CPU milliseconds (the stem's dgrad never runs in a step: its input needs none).
  const skip = pass === "dgrad" && s.name.includes("stem");
  if (s.count !== undefined && !skip) {
    stepCpuMs.set(pass, (stepCpuMs.get(pass) ?? 0) + s.count * cpu / reps * 1000);
  }
  const perStep = s.count === undefined
    ? ""
    : ` (${(s.count * cpu / reps * 1000).toFixed(0)} ms/step)`;
  return `${rate(wall)} / ${rate(cpu)}${perStep}`;
}

const stepCpuMs = new Map<Pass, number>();
const rows: string[] = [];
for (const s of SHAPES) {
  const op = operands(s);
  const r: string[] = [];
  for (const pass of PASSES) r.push(await gflops(s, op, pass));
  rows.push(`| ${s.name} | ${(op.flop / 1e9).toFixed(2)} | ${r.join(" | ")} |`);
  for (const t of [op.x, op.w, op.dy]) t.dispose();
}
console.log(
  [
    `conv2d, batch ${N}, on ${gpu().adapter.description} (LP_NUM_THREADS=${
      Deno.env.get("LP_NUM_THREADS") ?? "default"
    })`,
    "| shape | GFLOP/pass | forward GFLOP/s wall / cpu | dgrad | wgrad |",
    "|---|---|---|---|---|",
    ...rows,
    ...(stepCpuMs.size
      ? [`per step, CPU ms: ${[...stepCpuMs].map(([p, ms]) => `${p} ${ms.toFixed(0)}`).join(", ")}`]
      : []),
  ].join("\n"),
);

/** Operands per shape, created on first use and kept until the process ends. */
const cache = new Map<string, Operands>();
for (const s of SHAPES) {
  for (const pass of PASSES) {
    Deno.bench(`conv2d ${pass} ${s.name} batch ${N}`, async (b) => {
      let op = cache.get(s.name);
      if (!op) {
        op = operands(s);
        cache.set(s.name, op);
      }
      b.start();
      run(s, op, pass);
      await sync();
      b.end();
    });
  }
}
