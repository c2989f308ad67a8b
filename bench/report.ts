/**
 * `deno task bench:report [--budget seconds] [--gpu-sizes]`: everything that matters about
 * speed on this adapter, in one run of at most 8 minutes: adapter info and features, matmul
 * GFLOP/s per variant (and the tuned choice), conv forward / dgrad / wgrad on ResNet-18/50
 * layer shapes, ResNet-18/50 training images/s at 32 and 224 px with the first-step
 * (compile) time and the peak GPU bytes per step. Writes `runs/bench/report.json` and
 * `runs/bench/report.md` and prints the markdown.
 *
 * On a CPU adapter (lavapipe, SwiftShader) the sizes are scaled down so it finishes; each
 * section also stops when the time budget is spent and says what it skipped.
 */
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { pipelineCount } from "../src/gpu/pipeline_cache.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { adapterIdentity, choiceTable, tuneBucket } from "../src/gpu/tune.ts";
import { enableKernelTuning, MATMUL_CANDIDATES } from "../src/kernels/tuning.ts";
import { fillInPlace } from "../src/kernels/elementwise.ts";
import { matmul, matmulCandidateOptions } from "../src/kernels/matmul.ts";
import { conv2d, conv2dInputGrad, conv2dWeightGrad } from "../src/kernels/conv.ts";
import { measureStep, type StepResult, type StepSpec } from "./train_step.ts";

const args = Deno.args;
const budgetS = Number(args[args.indexOf("--budget") + 1] || 0) || 450;
const ctx = await getDevice();
const cpu = ctx.adapter.isCpu && !args.includes("--gpu-sizes");
const start = performance.now();
const elapsedS = () => (performance.now() - start) / 1000;
const skipped: string[] = [];
/** True while `share` of the budget (cumulative) is left for the current section. */
const inBudget = (share: number) => elapsedS() < budgetS * share;

async function timeMs(run: () => void, reps: number): Promise<number> {
  run();
  await sync();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    await sync();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const rand = (shape: number[], v: number) => fillInPlace(Tensor.empty(shape), v).keep();

// ---- matmul -------------------------------------------------------------------------
interface MatmulRow {
  n: number;
  gflops: Record<string, number>;
  tuned?: string;
}
const matmulRows: MatmulRow[] = [];
const matmulSizes = cpu ? [256, 512, 1024] : [1024, 2048, 4096, 8192];
// On a CPU adapter every tile of the tiled kernel is 10-30× slower: its heuristic tile shows it.
const matmulShown = cpu ? ["register", "tiled"] : MATMUL_CANDIDATES;
enableKernelTuning();
for (const n of matmulSizes) {
  if (!inBudget(0.2)) {
    skipped.push(`matmul ${n}`);
    continue;
  }
  const a = rand([n, n], 0.5);
  const b = rand([n, n], 0.25);
  const row: MatmulRow = { n, gflops: {} };
  try {
    for (const name of matmulShown) {
      // The tiled kernel is 10-30× slower on CPU adapters: one rep is enough to show it.
      const opts = matmulCandidateOptions(name);
      const ms = await timeMs(() => matmul(a, b, opts).dispose(), cpu ? 1 : 3);
      row.gflops[name] = 2 * n ** 3 / ms / 1e6;
    }
    row.tuned = (await tuneBucket("matmul", [n, n, n, 1], { reps: 1 })).choice;
  } finally {
    a.dispose();
    b.dispose();
  }
  matmulRows.push(row);
}

// ---- conv ---------------------------------------------------------------------------
interface ConvShape {
  name: string;
  c: number;
  o: number;
  k: number;
  stride: number;
  hw: number;
}
interface ConvRow extends ConvShape {
  n: number;
  gflops: { fwd: number; dgrad: number; wgrad: number };
}
// Input planes at 224 px; CPU adapters run them at 1/4 of the side (56 → 14 …).
const convShapes: ConvShape[] = [
  { name: "r18 stem 7×7/2", c: 3, o: 64, k: 7, stride: 2, hw: 224 },
  { name: "r18 layer1 3×3", c: 64, o: 64, k: 3, stride: 1, hw: 56 },
  { name: "r18 layer2 3×3/2", c: 64, o: 128, k: 3, stride: 2, hw: 56 },
  { name: "r18 layer3 3×3", c: 256, o: 256, k: 3, stride: 1, hw: 14 },
  { name: "r18 layer4 3×3", c: 512, o: 512, k: 3, stride: 1, hw: 7 },
  { name: "r50 layer1 1×1 expand", c: 64, o: 256, k: 1, stride: 1, hw: 56 },
  { name: "r50 layer3 1×1 reduce", c: 1024, o: 256, k: 1, stride: 1, hw: 14 },
  { name: "r50 layer4 3×3", c: 512, o: 512, k: 3, stride: 1, hw: 7 },
];
const convBatch = cpu ? 2 : 32;
const convRows: ConvRow[] = [];
for (const s of convShapes) {
  if (!inBudget(0.45)) {
    skipped.push(`conv ${s.name}`);
    continue;
  }
  const hw = cpu ? Math.max(4, s.hw / 4) : s.hw;
  const pad = (s.k - 1) / 2;
  const opts = { stride: s.stride, padding: pad };
  const x = rand([convBatch, s.c, hw, hw], 0.5);
  const w = rand([s.o, s.c, s.k, s.k], 0.01);
  const y = scope(() => conv2d(x, w, opts)).keep();
  const dy = rand([...y.shape], 0.1);
  const oh = y.shape[2];
  const flops = 2 * convBatch * s.o * oh * oh * s.c * s.k * s.k;
  try {
    const reps = cpu ? 1 : 5;
    const fwd = await timeMs(() => conv2d(x, w, opts).dispose(), reps);
    const dgrad = await timeMs(
      () => conv2dInputGrad(dy, w, { ...opts, inputShape: x.shape }).dispose(),
      reps,
    );
    const wgrad = await timeMs(
      () => conv2dWeightGrad(x, dy, { ...opts, weightShape: w.shape }).dispose(),
      reps,
    );
    const g = (ms: number) => flops / ms / 1e6;
    convRows.push({
      ...s,
      hw,
      n: convBatch,
      gflops: { fwd: g(fwd), dgrad: g(dgrad), wgrad: g(wgrad) },
    });
  } finally {
    for (const t of [x, w, y, dy]) t.dispose();
  }
}

// ---- training steps -----------------------------------------------------------------
const stepSpecs: StepSpec[] = cpu
  ? [
    { arch: "resnet18", batch: 32, size: 32, smallInput: false },
    { arch: "resnet50", batch: 8, size: 32, smallInput: false },
    { arch: "resnet18", batch: 2, size: 224, smallInput: false },
    { arch: "resnet50", batch: 1, size: 224, smallInput: false },
  ]
  : [
    { arch: "resnet18", batch: 32, size: 32, smallInput: false },
    { arch: "resnet50", batch: 32, size: 32, smallInput: false },
    { arch: "resnet18", batch: 32, size: 224, smallInput: false },
    { arch: "resnet50", batch: 32, size: 224, smallInput: false },
  ];
// 16-mixed (trainer.precision) where the adapter offers shader-f16: the first shape on a CPU
// adapter, all of them on a GPU.
const hasF16 = ctx.adapter.features.includes("shader-f16");
if (hasF16) {
  stepSpecs.push(
    ...stepSpecs.slice(0, cpu ? 1 : 4).map((s) => ({ ...s, precision: "16-mixed" as const })),
  );
}
const pipelinesBefore = pipelineCount();
const steps: (StepResult & { precision: string })[] = [];
/** Forward GFLOP per image at 224 px (torchvision's figures); a step is about 3×. */
const fwdGflop = { resnet18: 1.82, resnet50: 4.11 };
const stepGflop = (s: StepSpec) => 3 * fwdGflop[s.arch] * s.batch * (s.size / 224) ** 2;
let rate = 0; // GFLOP per ms of the last measured step
let compileMs = 0; // first step minus a warm step, last measured
for (const spec of stepSpecs) {
  // A step that would end past the budget is skipped; so is one after the budget ran out.
  const estimateS = rate ? (stepGflop(spec) / rate * (cpu ? 2 : 8) + compileMs) / 1000 : 0;
  if (!inBudget(1) || elapsedS() + estimateS > budgetS) {
    skipped.push(
      `train ${spec.arch} ${spec.size}px batch ${spec.batch} ${spec.precision ?? "32"} (about ${
        estimateS.toFixed(0)
      } s)`,
    );
    continue;
  }
  try {
    // 16-mixed skips its first steps while the loss scale settles: 3 more warm steps.
    const settle = spec.precision === "16-mixed" ? 3 : 0;
    const r = await measureStep(spec, { steps: cpu ? 1 : 5, warm: (cpu ? 0 : 2) + settle });
    rate = stepGflop(spec) / r.stepMs;
    compileMs = Math.max(0, r.firstStepMs - r.stepMs);
    steps.push({ ...r, precision: r.precision ?? "32" });
  } catch (e) {
    skipped.push(`train ${spec.arch} ${spec.size}px batch ${spec.batch}: ${(e as Error).message}`);
  }
}
if (!hasF16) skipped.push("16-mixed precision: the adapter lacks shader-f16");

// ---- output -------------------------------------------------------------------------
const report = {
  date: new Date().toISOString(),
  adapter: { ...ctx.adapter, identity: adapterIdentity(ctx.adapter) },
  limits: {
    maxBufferSize: ctx.limits.maxBufferSize,
    maxStorageBufferBindingSize: ctx.limits.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: ctx.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: ctx.limits.maxComputeInvocationsPerWorkgroup,
  },
  scaledForCpu: cpu,
  matmul: matmulRows,
  conv: convRows,
  train: steps,
  pipelinesCompiledByTraining: pipelineCount() - pipelinesBefore,
  tuneChoices: choiceTable(),
  skipped,
  elapsedS: elapsedS(),
};

const f1 = (v: number) => v.toFixed(1);
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
const md: string[] = [
  `## Speed report: ${ctx.adapter.description}`,
  "",
  `${report.date}; vendor ${ctx.adapter.vendor || "?"}, architecture ${
    ctx.adapter.architecture || "?"
  }; features: ${ctx.adapter.features.join(", ") || "none"}${
    cpu ? "; sizes scaled down for a CPU adapter" : ""
  }.`,
  "",
  "| matmul n×n×n | " + matmulShown.map((v) => `${v} GFLOP/s`).join(" | ") + " | tuned |",
  "| --- | " + matmulShown.map(() => "---").join(" | ") + " | --- |",
  ...matmulRows.map((r) =>
    `| ${r.n} | ${matmulShown.map((v) => f1(r.gflops[v])).join(" | ")} | ${r.tuned} |`
  ),
  "",
  `| conv (batch ${convBatch}) | C→O | plane | fwd GFLOP/s | dgrad GFLOP/s | wgrad GFLOP/s |`,
  "| --- | --- | --- | --- | --- | --- |",
  ...convRows.map((r) =>
    `| ${r.name} | ${r.c}→${r.o} | ${r.hw}² | ${f1(r.gflops.fwd)} | ${f1(r.gflops.dgrad)} | ${
      f1(r.gflops.wgrad)
    } |`
  ),
  "",
  "| training step (fwd, weighted CE, bwd, AdamW) | precision | img/s | step ms | first step s | peak MiB | resident MiB |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...steps.map((s) =>
    `| ${s.arch} ${s.size}px batch ${s.batch} | ${s.precision} | ${f1(s.imagesPerSec)} | ${
      s.stepMs.toFixed(0)
    } | ${(s.firstStepMs / 1000).toFixed(2)} | ${mib(s.peakBytes)} | ${mib(s.residentBytes)} |`
  ),
  "",
  `Pipelines compiled by the training steps: ${report.pipelinesCompiledByTraining}. ` +
  `Total ${report.elapsedS.toFixed(0)} s.`,
  ...(skipped.length ? ["", `Skipped: ${skipped.join("; ")}.`] : []),
  "",
];
Deno.mkdirSync("runs/bench", { recursive: true });
for (
  const [name, text] of [["report.json", JSON.stringify(report, null, 2) + "\n"], [
    "report.md",
    md.join("\n"),
  ]]
) {
  Deno.writeTextFileSync(`runs/bench/${name}.tmp`, text);
  Deno.renameSync(`runs/bench/${name}.tmp`, `runs/bench/${name}`);
}
console.log(md.join("\n"));
