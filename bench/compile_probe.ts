/**
 * Where the first training step's time goes: pipeline creation (count, wall and CPU ms) vs
 * the rest. Wraps `GPUDevice.createComputePipeline` / `createShaderModule` to time them.
 *
 * `deno run --allow-read --allow-env bench/compile_probe.ts [resnet18|resnet50] [size] [batch]`
 */
import process from "node:process";
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { makeStep } from "./train_step.ts";

const [arch = "resnet18", size = "32", batch = "32"] = Deno.args;
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
const t0 = performance.now();
const c0 = cpuMs();
step();
const recorded = performance.now() - t0;
await sync();
console.log(
  `first step: wall ${(performance.now() - t0).toFixed(0)} ms (recording ${
    recorded.toFixed(0)
  } ms), CPU ${(cpuMs() - c0).toFixed(0)} ms`,
);
for (const [k, v] of Object.entries(acc)) {
  console.log(`${k}: ${v.n} calls, wall ${v.wall.toFixed(0)} ms, CPU ${v.cpu.toFixed(0)} ms`);
}
dispose();
