/**
 * Compute pipelines cached by kernel name, shader source and override constants, so each
 * (shader, tile shape) pair is compiled once per process.
 *
 * @module
 */

import { gpu } from "./device.ts";

const modules = new Map<string, GPUShaderModule>();
// Keyed first by the source string itself: the module constant is the same string object on
// every call, so its hash is computed once (a combined key string would be rehashed, ~11 µs
// per lookup for the 54 KB register matmul).
const pipelines = new Map<string, Map<string, GPUComputePipeline>>();

/** Returns the cached pipeline for `code` with `overrides`, compiling it on first use. */
export function getPipeline(
  kernel: string,
  code: string,
  overrides: Record<string, number> = {},
): GPUComputePipeline {
  let byCode = pipelines.get(code);
  if (!byCode) pipelines.set(code, byCode = new Map());
  const key = `${kernel}\u0000${JSON.stringify(overrides)}`;
  let p = byCode.get(key);
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
  byCode.set(key, p);
  return p;
}

/** Number of compiled pipelines (for tests and diagnostics). */
export function pipelineCount(): number {
  let n = 0;
  for (const byCode of pipelines.values()) n += byCode.size;
  return n;
}
