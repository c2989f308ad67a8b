/**
 * CPU cost of compiling one kernel variant, split where lavapipe spends it: the WGSL expansion
 * (`wgsl_expand.ts`, in JS), `createShaderModule` (naga), `createComputePipeline` (naga to
 * SPIR-V, then lavapipe's NIR passes) and the first dispatch, where llvmpipe JIT-compiles the
 * pipeline's LLVM code (Mesa 22.3 compiles a compute variant when it first runs, on the queue
 * thread, not in `createComputePipeline`). The dispatch is one workgroup with every uniform
 * field 16 (zeros would let lavapipe fold loops away), so its run time is small next to the
 * compile.
 *
 * `deno run --allow-read --allow-env bench/shader_cost.ts <kernel> [NAME=value ...]`, or
 * `... bench/shader_cost.ts --log <file>` for every variant of a `compile_probe.ts` log (PROBE_JSON).
 *
 * Run it in a fresh process with an empty cache (`MESA_SHADER_CACHE_DIR=/tmp/<fresh>`) or
 * the LLVM step is a cache hit. `bench/compile_probe.ts` lists the variants a training step
 * compiles.
 */
import process from "node:process";
import "../mod.ts";
import "../src/optim/adamw.ts";
import { getDevice } from "../src/gpu/device.ts";
import { definedKernels } from "../src/gpu/kernel.ts";
import { expandWgsl, hasExpansionMarks } from "../src/gpu/wgsl_expand.ts";

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** One variant to measure: a kernel name and its override values. */
interface Variant {
  kernel: string;
  overrides: Record<string, number>;
}

function parseArgs(args: string[]): Variant[] {
  if (args[0] === "--log") {
    // A pipeline log written by compile_probe.ts (PROBE_JSON): every variant it lists.
    return JSON.parse(Deno.readTextFileSync(args[1])) as Variant[];
  }
  const [kernel, ...assignments] = args;
  const overrides: Record<string, number> = {};
  for (const a of assignments) {
    const m = /^(\w+)=(-?\d+)$/.exec(a);
    if (!m) throw new Error(`shader_cost: expected NAME=integer, got "${a}"`);
    overrides[m[1]] = Number(m[2]);
  }
  return [{ kernel: kernel ?? "", overrides }];
}

const { device } = await getDevice();
let c = cpuMs();
const lap = (): number => {
  const now = cpuMs();
  const d = now - c;
  c = now;
  return d;
};
const variants = parseArgs(Deno.args);
const totals = { expand: 0, module: 0, pipeline: 0, llvm: 0 };
for (const { kernel: name, overrides } of variants) {
  // Dispatch labels may add a suffix to the kernel's name ("binary_same.add").
  const kernel = definedKernels().get(name) ?? definedKernels().get(name.split(".")[0]);
  if (!kernel) {
    console.error(
      `shader_cost: no kernel named "${name}"; kernels: ${
        [...definedKernels().keys()].sort().join(", ")
      }`,
    );
    Deno.exit(1);
  }
  // SHADER_SOURCE=file.wgsl: measure an edited copy of the kernel's shader (experiments).
  const edited = Deno.env.get("SHADER_SOURCE");
  const code = edited ? kernel.params.inject(Deno.readTextFileSync(edited), name) : kernel.code;
  lap();
  const expand = hasExpansionMarks(code);
  const wgsl = expand ? expandWgsl(code, overrides, name) : code;
  const expandMs = lap();
  const module = device.createShaderModule({ code: wgsl, label: name });
  const moduleMs = lap();
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main", constants: expand ? {} : overrides },
  });
  const pipelineMs = lap();
  // Bindings in declaration order: the uniform block, then storage buffers.
  const entries: GPUBindGroupEntry[] = [];
  for (const m of wgsl.matchAll(/@binding\((\d+)\)\s*var<(\w+)/g)) {
    const uniform = m[2] === "uniform";
    const buffer = device.createBuffer({
      size: uniform ? kernel.params.slots * 4 : 1 << 16,
      usage: uniform ? 0x40 | 0x08 : 0x80, // UNIFORM | COPY_DST, or STORAGE
    });
    // Every uniform field 16: lavapipe folds uniform values into the shader it compiles, and
    // zeros (empty loops) compile to almost nothing, which would hide the real cost.
    if (uniform) {
      device.queue.writeBuffer(buffer, 0, new Uint32Array(kernel.params.slots).fill(16));
    }
    entries.push({ binding: Number(m[1]), resource: { buffer } });
  }
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  const runMs = lap();
  console.log(
    `${name} ${JSON.stringify(overrides)}: ${wgsl.length} chars; CPU ms: expand ${
      expandMs.toFixed(0)
    }, module ${moduleMs.toFixed(0)}, pipeline ${pipelineMs.toFixed(0)}, first dispatch (LLVM) ${
      runMs.toFixed(0)
    }`,
  );
  totals.expand += expandMs;
  totals.module += moduleMs;
  totals.pipeline += pipelineMs;
  totals.llvm += runMs;
}
if (variants.length > 1) {
  console.log(
    `total CPU ms over ${variants.length} variants: ${
      JSON.stringify(totals, (_, v) => typeof v === "number" ? Math.round(v) : v)
    }`,
  );
}
