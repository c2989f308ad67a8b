/**
 * CPU cost of compiling each `shaders/*.wgsl` with its default overrides: shader module,
 * first pipeline, and the same pipeline again (no cache helps inside one process), sorted by
 * the pipeline cost. `deno run --allow-read bench/shader_cost.ts`
 *
 * NOTE: on lavapipe (Deno 2.9.6's wgpu) the generated conv shaders dominate the first step:
 * conv2d_forward (166 KB) ≈ 350 ms module + 480–640 ms per pipeline, conv2d_forward_k7
 * (139 KB) ≈ 250 + 590–700 ms, against 2–5 ms for a 2 KB shader; and every override set is
 * one more pipeline. Deno's `createComputePipelineAsync` compiles inside the call, so the
 * lever is smaller shaders and fewer override sets, not parallel compilation.
 */
import process from "node:process";
import { getDevice } from "../src/gpu/device.ts";

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const { device } = await getDevice();
const rows: [string, number, number, number, number][] = [];
const dir = new URL("../shaders/", import.meta.url);
for (const e of Deno.readDirSync(dir)) {
  if (!e.name.endsWith(".wgsl")) continue;
  const code = Deno.readTextFileSync(new URL(e.name, dir));
  const c0 = cpuMs();
  const module = device.createShaderModule({ code, label: e.name });
  const moduleMs = cpuMs() - c0;
  const pipeline = () => {
    const t0 = cpuMs();
    device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    return cpuMs() - t0;
  };
  rows.push([e.name, code.length, moduleMs, pipeline(), pipeline()]);
}
rows.sort((a, b) => b[3] - a[3]);
for (const [name, bytes, mod, first, again] of rows) {
  console.log(
    `${name.padEnd(36)} ${String(bytes).padStart(7)} B  module ${mod.toFixed(0).padStart(4)} ms` +
      `  pipeline ${first.toFixed(0).padStart(4)} ms  again ${again.toFixed(0).padStart(4)} ms`,
  );
}
