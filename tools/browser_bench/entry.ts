/**
 * Browser entry of tools/browser_bench.ts: the web app's training step (ResNet-18, ImageNet
 * stem, 4 classes, 32 px, batch 32: forward, label-smoothed cross-entropy, backward, gradient
 * clipping, AdamW) and one evaluation forward, on the browser's WebGPU, posting a mark after
 * each phase (the driver reads the browser's CPU time at each mark).
 *
 * Query: `steps` (timed steps after the first, default 4); `cpu=0` makes the kernel heuristics
 * treat the adapter as a GPU (what they pick for discrete GPUs); `profile=1` adds one step's
 * per-kernel GPU times (timestamp queries); `compile=1` compiles each pipeline of the run again
 * on a second device, one at a time, and reports what each cost; `convs=1` instead times
 * ResNet-18's stem, layer-1 and first stride-2 convs (forward, input and weight gradient) per
 * algorithm (`algos=direct,im2col`).
 *
 * @module
 */
import { getDevice } from "../../src/gpu/device.ts";
import { startProfile, stopProfile, sync } from "../../src/gpu/dispatch.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward, noGrad } from "../../src/autograd/tape.ts";
import { crossEntropy } from "../../src/autograd/loss.ts";
import { clipGradNorm } from "../../src/optim/clip.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { resnet18 } from "../../src/nn/resnet.ts";
import { pipelineCount } from "../../src/gpu/pipeline_cache.ts";
import { conv2d, conv2dInputGrad, conv2dWeightGrad } from "../../src/kernels/conv.ts";

const post = (path: string, body: unknown): Promise<Response> =>
  fetch(path, { method: "POST", body: JSON.stringify(body) });

/** Forward, input and weight gradient of each of ResNet-18's convs at 32 px, per algorithm. */
async function convTable(q: URLSearchParams): Promise<void> {
  // [C, H, O, k, stride, padding, input gradient]
  const convs: [number, number, number, number, number, number, boolean][] = [
    [3, 32, 64, 7, 2, 3, false],
    [64, 8, 64, 3, 1, 1, true],
    [64, 8, 128, 3, 2, 1, true],
  ];
  const algos = (q.get("algos") ?? "direct,im2col").split(",") as ("direct" | "im2col")[];
  const rows: [number, string][] = [];
  for (const [c, h, o, k, s, p, dgrad] of convs) {
    for (const algorithm of algos) {
      const opts = {
        stride: [s, s] as [number, number],
        padding: [p, p] as [number, number],
        algorithm,
      };
      const x = Tensor.fromArray(
        Float32Array.from({ length: 32 * c * h * h }, (_, i) => Math.sin(i)),
        [32, c, h, h],
      ).keep();
      const w = Tensor.fromArray(
        Float32Array.from({ length: o * c * k * k }, (_, i) => Math.cos(i)),
        [o, c, k, k],
      ).keep();
      const run = () =>
        scope(() => {
          const y = conv2d(x, w, opts);
          if (dgrad) conv2dInputGrad(y, w, { ...opts, inputShape: x.shape });
          conv2dWeightGrad(x, y, { ...opts, weightShape: w.shape });
        });
      let t = performance.now();
      run();
      await sync();
      const first = performance.now() - t;
      t = performance.now();
      for (let i = 0; i < 4; i++) run();
      await sync();
      const each = (performance.now() - t) / 4;
      rows.push([
        each,
        `${c}→${o} ${k}×${k}/${s} on ${h}×${h} ${algorithm}: first ${first.toFixed(0)} ms`,
      ]);
      x.dispose();
      w.dispose();
    }
  }
  await post("/table", { total: 0, rows });
}

async function main(): Promise<void> {
  const q = new URL(location.href).searchParams;
  if (q.get("convs") === "1") {
    await getDevice();
    await convTable(q);
    await post("/done", {});
    return;
  }
  const steps = Number(q.get("steps") ?? 4);
  const ctx = await getDevice();
  if (q.get("cpu") === "0") ctx.adapter.isCpu = false;
  await post("/adapter", ctx.adapter);
  // Every pipeline the step creates (WGSL, constants), for the per-pipeline compile timing.
  const made: { label: string; code: string; constants: Record<string, number> }[] = [];
  const codeOf = new Map<GPUShaderModule, string>();
  const dev = ctx.device;
  const mkModule = dev.createShaderModule.bind(dev);
  dev.createShaderModule = (d) => {
    const m = mkModule(d);
    codeOf.set(m, d.code);
    return m;
  };
  const mkPipeline = dev.createComputePipeline.bind(dev);
  dev.createComputePipeline = (d) => {
    made.push({
      label: d.label ?? "",
      code: codeOf.get(d.compute.module) ?? "",
      constants: (d.compute.constants ?? {}) as Record<string, number>,
    });
    return mkPipeline(d);
  };
  const n = 32, size = 32, classes = 4;
  const net = resnet18({ numClasses: classes, smallInput: false, seed: 0 });
  const x = Tensor.fromArray(
    Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
    [n, 3, size, size],
  ).keep();
  const y = Tensor.fromArray(Int32Array.from({ length: n }, (_, i) => (i * 7) % classes), [n], {
    dtype: "i32",
  }).keep();
  const opt = new AdamW(net.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
  const mark = async (what: string, t0: number) => {
    await sync();
    await post("/mark", { what, ms: performance.now() - t0, pipelines: pipelineCount() });
  };
  let loss = 0;
  const step = () =>
    scope(() => {
      const l = crossEntropy(net.forward(x), y, { labelSmoothing: 0.1 });
      backward(l);
      clipGradNorm(net.parameters(), 5);
      opt.step();
      opt.zeroGrad();
      return l.toArray();
    });
  await post("/mark", { what: "start", ms: 0, pipelines: pipelineCount() });
  let t0 = performance.now();
  loss = (await step())[0];
  await mark(`first step (loss ${loss.toFixed(4)})`, t0);
  t0 = performance.now();
  for (let i = 0; i < steps; i++) loss = (await step())[0];
  await mark(`${steps} steps (loss ${loss.toFixed(4)})`, t0);
  if (q.get("profile") === "1") {
    startProfile();
    await step();
    const prof = await stopProfile();
    const rows = [...prof].sort((a, b) => b[1].ms - a[1].ms)
      .map(([k, v]) => [v.ms, `${k} ×${v.count}`] as [number, string]);
    await post("/table", { total: rows.reduce((s, r) => s + r[0], 0), rows });
  }
  net.eval();
  t0 = performance.now();
  await noGrad(() => scope(() => net.forward(x).toArray()));
  await mark("first eval forward", t0);
  t0 = performance.now();
  await noGrad(() => scope(() => net.forward(x).toArray()));
  await mark("eval forward", t0);
  if (q.get("compile") === "1") {
    // Each pipeline again on a second device, one at a time: what compiling it costs.
    const adapter = await navigator.gpu.requestAdapter();
    const dev2 = await adapter!.requestDevice({
      requiredFeatures: ctx.adapter.features as GPUFeatureName[],
      requiredLimits: ctx.limits as unknown as Record<string, number>,
    });
    const rows: [number, string][] = [];
    for (const m of made) {
      const t = performance.now();
      const mod = dev2.createShaderModule({ code: m.code });
      await dev2.createComputePipelineAsync({
        layout: "auto",
        compute: { module: mod, entryPoint: "main", constants: m.constants },
      });
      rows.push([
        performance.now() - t,
        `${m.label} ${JSON.stringify(m.constants)} ${m.code.length} ch`,
      ]);
    }
    rows.sort((a, b) => b[0] - a[0]);
    const total = rows.reduce((s, r) => s + r[0], 0);
    await post("/table", { total, rows });
  }
  await post("/done", {});
}

main().catch((e) => post("/fatal", { message: String((e as Error)?.stack ?? e) }));
