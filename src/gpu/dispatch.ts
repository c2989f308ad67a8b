/**
 * Command recording: every dispatch of a step goes into one command encoder (one open
 * compute pass), submitted only when results are read back, a copy is needed, or the
 * batch grows large. Readbacks are rare by design: each `mapAsync` costs ~11 ms in Deno.
 *
 * @module
 */

import { closeErrorScope, gpu, openErrorScope, settleErrors } from "./device.ts";
import { getPipeline } from "./pipeline_cache.ts";
import { acquireBuffer, onSubmitted, onTrim, releaseBuffer } from "./pool.ts";

/** One compute dispatch. */
export interface DispatchOptions {
  /** Kernel name, used as the pipeline label so errors name it. */
  kernel: string;
  /** WGSL source with a `main` entry point. */
  code: string;
  /** Values of the shader's `override` constants. */
  overrides?: Record<string, number>;
  /** Uniform data bound at binding 0 when present. */
  uniform?: ArrayBuffer;
  /** Storage buffers bound in order after the uniform (from binding 0 without one). */
  buffers: GPUBuffer[];
  /** Workgroup counts. */
  workgroups: [number, number?, number?];
}

const MAX_DISPATCHES_PER_SUBMIT = 2048;
/**
 * A dispatch that needs a pipeline not made yet first submits what is recorded, once that is
 * this many dispatches or more: the driver then runs it (on lavapipe that includes compiling
 * each pipeline's code at its first dispatch, on the queue thread) while this thread makes
 * the new pipeline, instead of all of it waiting for the step's one submit. Only first steps
 * make pipelines, so later steps submit as before. ResNet-18 32×32 first step on lavapipe
 * (`bench/compile_probe.ts`, warm shader cache): 2.6–2.7 → 2.0–2.1 s wall. Per-dispatch
 * submits (a threshold of 1) lose part of it to the driver's per-submit cost.
 */
const EARLY_SUBMIT_MIN = 16;
/** Distinct uniform blocks kept (each is a small persistent buffer); cleared when reached. */
const MAX_UNIFORMS = 8192;
/** Bind groups kept; cleared when reached. */
const MAX_BIND_GROUPS = 16384;

let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let dispatchesInBatch = 0;
let totalDispatches = 0;
let totalSubmits = 0;

// Per-dispatch host cost dominates small kernels (createBindGroup ~28 µs, writeBuffer ~8 µs
// on lavapipe). Training repeats the same shapes every step, so uniform blocks are
// content-addressed persistent buffers (written once when created, never rewritten: no
// hazard with queued work), and bind groups are cached by pipeline and buffer identity
// (the pool hands out the same buffers step after step, so most lookups hit).
const uniformCache = new Map<string, GPUBuffer>();
const bindGroupCache = new Map<string, GPUBindGroup>();
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
let bindGroupHits = 0;

function idOf(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(o, id);
  }
  return id;
}

// Destroyed buffers must not stay reachable through cached bind groups.
onTrim(() => bindGroupCache.clear());

function uniformBuffer(device: GPUDevice, data: ArrayBuffer): GPUBuffer {
  const key = String.fromCharCode.apply(null, Array.from(new Uint16Array(data)));
  let buf = uniformCache.get(key);
  if (!buf) {
    if (uniformCache.size >= MAX_UNIFORMS) {
      uniformCache.clear();
      bindGroupCache.clear();
    }
    // UNIFORM | COPY_DST
    buf = device.createBuffer({ size: data.byteLength, usage: 0x40 | 0x08, label: "uniform" });
    device.queue.writeBuffer(buf, 0, data);
    uniformCache.set(key, buf);
  }
  return buf;
}

function currentEncoder(): GPUCommandEncoder {
  if (!encoder) {
    // Everything recorded for this encoder (pipelines, bind groups, the submit) reports
    // its validation errors through one scope, closed in flush().
    openErrorScope();
    encoder = gpu().device.createCommandEncoder({ label: "step" });
  }
  return encoder;
}

function endPass(): void {
  if (pass) {
    pass.end();
    pass = null;
  }
}

/** Records one dispatch into the current encoder. */
export function dispatch(opts: DispatchOptions): void {
  const { device, limits } = gpu();
  const [x, y = 1, z = 1] = opts.workgroups;
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  if (x > maxDim || y > maxDim || z > maxDim) {
    throw new RangeError(
      `${opts.kernel}: workgroup count [${x}, ${y}, ${z}] exceeds maxComputeWorkgroupsPerDimension = ${maxDim}`,
    );
  }
  if (x === 0 || y === 0 || z === 0) return;
  const pipeline = getPipeline(opts.kernel, opts.code, opts.overrides, () => {
    if (dispatchesInBatch >= EARLY_SUBMIT_MIN) flush();
    currentEncoder(); // its error scope catches the new pipeline's validation errors
  });
  const enc = currentEncoder();
  const uni = opts.uniform ? uniformBuffer(device, opts.uniform) : null;
  let key = `${idOf(pipeline)}:${uni ? idOf(uni) : 0}`;
  for (const b of opts.buffers) key += `,${idOf(b)}`;
  let bindGroup = bindGroupCache.get(key);
  if (bindGroup) {
    bindGroupHits++;
  } else {
    const entries: GPUBindGroupEntry[] = [];
    if (uni) entries.push({ binding: 0, resource: { buffer: uni } });
    const base = entries.length;
    opts.buffers.forEach((buffer, i) => entries.push({ binding: base + i, resource: { buffer } }));
    if (bindGroupCache.size >= MAX_BIND_GROUPS) bindGroupCache.clear();
    bindGroup = device.createBindGroup({
      label: opts.kernel,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    bindGroupCache.set(key, bindGroup);
  }
  if (profile) {
    endPass();
    const i = profile.names.length;
    if (2 * i + 2 <= PROFILE_CAPACITY) {
      profile.names.push(opts.kernel);
      pass = enc.beginComputePass({
        label: opts.kernel,
        timestampWrites: {
          querySet: profile.querySet,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      });
    }
  }
  pass ??= enc.beginComputePass({ label: "step" });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y, z);
  if (profile) endPass();
  dispatchesInBatch++;
  totalDispatches++;
  if (dispatchesInBatch >= MAX_DISPATCHES_PER_SUBMIT) flush();
}

const PROFILE_CAPACITY = 4096;
let profile: { querySet: GPUQuerySet; names: string[] } | null = null;

/**
 * Starts timing every dispatch on the GPU with timestamp queries (one pass per dispatch,
 * up to 2048 dispatches); `stopProfile()` returns the times. Needs `timestamp-query`.
 */
export function startProfile(): void {
  const { device, adapter } = gpu();
  if (!adapter.features.includes("timestamp-query")) {
    throw new Error("startProfile: the device lacks the timestamp-query feature");
  }
  flush();
  profile = {
    querySet: device.createQuerySet({ type: "timestamp", count: PROFILE_CAPACITY }),
    names: [],
  };
}

/** Per-kernel dispatch count and total GPU milliseconds since `startProfile()`. */
export async function stopProfile(): Promise<Map<string, { count: number; ms: number }>> {
  const p = profile;
  if (!p) throw new Error("stopProfile: no profile is running");
  profile = null;
  const n = p.names.length * 2;
  const out = new Map<string, { count: number; ms: number }>();
  if (n === 0) return out;
  const { device } = gpu();
  const resolved = device.createBuffer({ size: n * 8, usage: 0x200 | 0x04 }); // QUERY_RESOLVE|COPY_SRC
  endPass();
  currentEncoder().resolveQuerySet(p.querySet, 0, n, resolved, 0);
  const bytes = await readBuffer(resolved, n * 8);
  resolved.destroy();
  p.querySet.destroy();
  const ts = new BigUint64Array(bytes);
  p.names.forEach((name, i) => {
    const ms = Number(ts[2 * i + 1] - ts[2 * i]) / 1e6;
    const e = out.get(name) ?? { count: 0, ms: 0 };
    e.count++;
    e.ms += ms;
    out.set(name, e);
  });
  return out;
}

/** Records a buffer-to-buffer copy (closes the open compute pass). */
export function copyBuffer(
  src: GPUBuffer,
  dst: GPUBuffer,
  opts: { srcOffset?: number; dstOffset?: number; size: number },
): void {
  endPass();
  currentEncoder().copyBufferToBuffer(
    src,
    opts.srcOffset ?? 0,
    dst,
    opts.dstOffset ?? 0,
    opts.size,
  );
}

/** Submits everything recorded so far; released buffers become reusable. */
export function flush(): void {
  if (!encoder) return;
  endPass();
  gpu().device.queue.submit([encoder.finish()]);
  encoder = null;
  closeErrorScope();
  dispatchesInBatch = 0;
  totalSubmits++;
  onSubmitted();
}

/** Copies `size` bytes of `buf` to the host: one submit and one `mapAsync`. */
export async function readBuffer(buf: GPUBuffer, size: number, offset = 0): Promise<ArrayBuffer> {
  // Copies and mapped ranges must be multiples of 4 bytes.
  const size4 = Math.ceil(size / 4) * 4;
  const staging = acquireBuffer(size, "readback");
  copyBuffer(buf, staging, { srcOffset: offset, size: size4 });
  flush();
  let out: ArrayBuffer;
  try {
    await staging.mapAsync(GPUMapMode.READ, 0, size4);
    out = staging.getMappedRange(0, size4).slice(0, size);
    staging.unmap();
  } catch (e) {
    // A validation error upstream explains a failed map better than the map error.
    await settleErrors();
    throw e;
  } finally {
    releaseBuffer(staging, "readback");
  }
  await settleErrors();
  return out;
}

/** Waits until the queue is idle (one `onSubmittedWorkDone`, ~11 ms in Deno). */
export async function sync(): Promise<void> {
  flush();
  await gpu().device.queue.onSubmittedWorkDone();
  await settleErrors();
}

/** Dispatch and submit counters since start, and how many dispatches reused a bind group. */
export function dispatchStats(): { dispatches: number; submits: number; bindGroupHits: number } {
  return { dispatches: totalDispatches, submits: totalSubmits, bindGroupHits };
}

/**
 * Workgroup grid covering `n` invocations with `wgSize` per group; spills into y when x
 * would exceed 65535. Shaders recover the linear id as `gid.x + gid.y * nwg.x * wgSize`.
 */
export function gridFor(n: number, wgSize: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / wgSize));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/**
 * Builds a uniform block of 4-byte fields, padded to 16 bytes, for ad-hoc shaders (tests,
 * experiments). Library kernels declare their fields once with `defineKernel` (kernel.ts), which
 * yields both the WGSL struct and the packing.
 */
export class Uniforms {
  #view: DataView;
  #buf: ArrayBuffer;
  #n = 0;
  /** A block with room for `capacity` 4-byte fields. */
  constructor(capacity = 64) {
    this.#buf = new ArrayBuffer(capacity * 4);
    this.#view = new DataView(this.#buf);
  }
  /** Appends an unsigned 32-bit field. */
  u32(v: number): this {
    this.#view.setUint32(4 * this.#n++, v >>> 0, true);
    return this;
  }
  /** Appends a signed 32-bit field. */
  i32(v: number): this {
    this.#view.setInt32(4 * this.#n++, v | 0, true);
    return this;
  }
  /** Appends a 32-bit float field. */
  f32(v: number): this {
    this.#view.setFloat32(4 * this.#n++, v, true);
    return this;
  }
  /** Appends several unsigned fields. */
  u32s(vs: readonly number[]): this {
    for (const v of vs) this.u32(v);
    return this;
  }
  /** The packed bytes, padded to a multiple of 16. */
  bytes(): ArrayBuffer {
    return this.#buf.slice(0, Math.max(16, Math.ceil(this.#n / 4) * 16));
  }
}
