/**
 * Compute pipelines cached by kernel name, shader source and override constants, so each
 * (shader, tile shape) pair is compiled once per process.
 *
 * @module
 */

import { gpu } from "./device.ts";

const modules = new Map<string, GPUShaderModule>();
const pipelines = new Map<string, GPUComputePipeline>();

/** Returns the cached pipeline for `code` with `overrides`, compiling it on first use. */
export function getPipeline(
  kernel: string,
  code: string,
  overrides: Record<string, number> = {},
): GPUComputePipeline {
  const key = `${kernel}\u0000${code.length}\u0000${JSON.stringify(overrides)}\u0000${code}`;
  let p = pipelines.get(key);
  if (p) return p;
  const { device } = gpu();
  let mod = modules.get(code);
  if (!mod) {
    mod = device.createShaderModule({ code, label: kernel });
    modules.set(code, mod);
  }
  p = device.createComputePipeline({
    label: kernel,
    layout: "auto",
    compute: { module: mod, entryPoint: "main", constants: overrides },
  });
  pipelines.set(key, p);
  return p;
}

/** Number of compiled pipelines (for tests and diagnostics). */
export function pipelineCount(): number {
  return pipelines.size;
}
