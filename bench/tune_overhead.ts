/**
 * Warm-up tuning overhead on the first training step: `deno run -A bench/tune_overhead.ts
 * [on|all|off] [resnet18|resnet50] [size] [batch] [small]`. Runs one step (ImageNet stem
 * unless `small`), then times the candidates of every bucket it noted as the trainer does after
 * its first optimizer step (`on`: best of 2 within `WARMUP_BUDGET_MS`; `all`: no budget; `off`:
 * nothing), then one more step. Prints CPU and wall seconds of each phase and the buckets tuned
 * per family as JSON. Run it in fresh processes: pipeline compilation (and Mesa's shader cache)
 * dominate the first numbers.
 *
 * @module
 */

import { sync } from "../src/gpu/dispatch.ts";
import { getDevice } from "../src/gpu/device.ts";
import { pendingBuckets, tunePending } from "../src/gpu/tune.ts";
import { WARMUP_BUDGET_MS } from "../src/train/run_tuning.ts";
import { enableKernelTuning } from "../src/kernels/tuning.ts";
import { cpuTimeMs, makeStep } from "./train_step.ts";

const [mode = "on", arch = "resnet18", size = "32", batch = "32", stem = ""] = Deno.args;
if (arch !== "resnet18" && arch !== "resnet50") {
  throw new Error(`expected resnet18|50, got ${arch}`);
}
const ctx = await getDevice();
if (mode !== "off") enableKernelTuning();
const { step, dispose } = makeStep({
  arch,
  batch: Number(batch),
  size: Number(size),
  smallInput: stem === "small",
});
const phase = async (fn: () => Promise<unknown>) => {
  const c0 = cpuTimeMs()!;
  const t0 = performance.now();
  const r = await fn();
  return { cpuS: (cpuTimeMs()! - c0) / 1000, wallS: (performance.now() - t0) / 1000, r };
};
const first = await phase(async () => {
  step();
  await sync();
});
const tune = await phase(() =>
  mode === "off" ? Promise.resolve([]) : tunePending({
    reps: 2,
    budgetMs: mode === "on" ? WARMUP_BUDGET_MS : Infinity,
  })
);
const left = pendingBuckets().length;
const second = await phase(async () => {
  step();
  await sync();
});
dispose();
const perFamily: Record<string, number> = {};
for (const t of tune.r as { key: string }[]) {
  const f = t.key.split("/")[0];
  perFamily[f] = (perFamily[f] ?? 0) + 1;
}
const s = (p: { cpuS: number; wallS: number }) => ({
  cpuS: +p.cpuS.toFixed(2),
  wallS: +p.wallS.toFixed(2),
});
console.log(JSON.stringify({
  adapter: ctx.adapter.description,
  mode,
  arch,
  size: Number(size),
  batch: Number(batch),
  firstStep: s(first),
  tuning: s(tune),
  secondStep: s(second),
  bucketsTuned: perFamily,
  bucketsLeft: left,
}));
