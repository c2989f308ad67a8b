/**
 * Compute pipelines cached by kernel name, shader source and override constants, so each
 * (shader, tile shape) pair is compiled once per process. A source with expansion marks
 * (`// @unroll`, `// @registers`, see `wgsl_expand.ts`) is expanded for its override values
 * when its pipeline is first created: the cache then holds the unrolled variant.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { expandWgsl, hasExpansionMarks } from "./wgsl_expand.ts";

const modules = new Map<string, GPUShaderModule>();

/** One compiled pipeline: what it is and what creating it cost (see `pipelineLog`). */
export interface PipelineRecord {
  /** Kernel name. */
  readonly kernel: string;
  /** Override values it was compiled for. */
  readonly overrides: Readonly<Record<string, number>>;
  /** Length of the WGSL handed to the device (after expansion). */
  readonly wgslChars: number;
  /** Milliseconds expanding the `// @unroll` / `// @registers` marks (0 without marks). */
  readonly expandMs: number;
  /** Milliseconds in `createShaderModule` (0 when the module was cached). */
  readonly moduleMs: number;
  /** Milliseconds in `createComputePipeline` (where lavapipe compiles). */
  readonly pipelineMs: number;
}

const log: PipelineRecord[] = [];
// Keyed first by the source string itself: the module constant is the same string object on
// every call, so its hash is computed once (a combined key string would be rehashed, ~11 µs
// per lookup for the 54 KB register matmul).
const pipelines = new Map<string, Map<string, GPUComputePipeline>>();

/**
 * Returns the cached pipeline for `code` with `overrides`, compiling it on first use, after
 * calling `beforeMaking` (dispatch submits what it recorded there, so the driver works while
 * the pipeline is made).
 */
export function getPipeline(
  kernel: string,
  code: string,
  overrides: Record<string, number> = {},
  beforeMaking?: () => void,
): GPUComputePipeline {
  let byCode = pipelines.get(code);
  if (!byCode) pipelines.set(code, byCode = new Map());
  const key = `${kernel}\u0000${JSON.stringify(overrides)}`;
  let p = byCode.get(key);
  if (p) return p;
  beforeMaking?.();
  const { device } = gpu();
  // An expanded variant has its overrides folded in as constants.
  const te = performance.now();
  const expand = hasExpansionMarks(code);
  const wgsl = expand ? expandWgsl(code, overrides, kernel) : code;
  const t0 = performance.now();
  let mod = modules.get(wgsl);
  if (!mod) {
    mod = device.createShaderModule({ code: wgsl, label: kernel });
    modules.set(wgsl, mod);
  }
  const t1 = performance.now();
  p = device.createComputePipeline({
    label: kernel,
    layout: "auto",
    compute: { module: mod, entryPoint: "main", constants: expand ? {} : overrides },
  });
  log.push({
    kernel,
    overrides,
    wgslChars: wgsl.length,
    expandMs: t0 - te,
    moduleMs: t1 - t0,
    pipelineMs: performance.now() - t1,
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

/** Every pipeline compiled so far in this process, in creation order (for benches). */
export function pipelineLog(): readonly PipelineRecord[] {
  return log;
}
