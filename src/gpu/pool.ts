/**
 * Size-bucketed GPU buffer pool. A released buffer goes to a pending list until the command
 * encoder that may still use it has been submitted. `queue.writeBuffer` runs ahead of
 * unsubmitted work, so a buffer the host will write (uploads, uniforms) is only taken from
 * buffers released before the last submit. A storage buffer that only GPU work will write
 * may be taken from the pending list too: dispatches and copies in one encoder run in
 * recording order, so the earlier readers finish first. Without that, every buffer a step
 * frees stays unusable until the next submit and the pool grows with the dispatches per
 * submit.
 *
 * @module
 */

import { gpu } from "./device.ts";

/** Which pool a buffer comes from. */
export type BufferKind = "storage" | "readback";

const USAGE: Record<BufferKind, number> = {
  storage: 0x80 | 0x04 | 0x08, // STORAGE | COPY_SRC | COPY_DST
  readback: 0x01 | 0x08, // MAP_READ | COPY_DST
};

/** Bucket sizes: 16 bytes minimum, then steps of a quarter power of two. */
export function bucketSize(bytes: number): number {
  if (bytes <= 256) return Math.max(16, Math.ceil(bytes / 16) * 16);
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

const free = new Map<string, GPUBuffer[]>();
const pendingFree = new Map<string, GPUBuffer[]>();
let pendingCount = 0;
let pendingBytes = 0;
const sizes = new WeakMap<GPUBuffer, number>();
let live = 0;
let liveBytes = 0;
let peakBytes = 0;
let pooled = 0;
let pooledBytes = 0;

/** Options of `acquireBuffer`. */
export interface AcquireOptions {
  /** The host will fill the buffer with `queue.writeBuffer` (default true except for storage). */
  hostWrite?: boolean;
}

/**
 * Takes a buffer of at least `bytes` bytes from the pool, creating one when none is free.
 * A storage buffer acquired with `hostWrite: false` (the default for storage) may still be
 * read by recorded, unsubmitted work: write it only with GPU commands recorded after now.
 */
export function acquireBuffer(
  bytes: number,
  kind: BufferKind = "storage",
  opts: AcquireOptions = {},
): GPUBuffer {
  const { device, limits } = gpu();
  const size = bucketSize(bytes);
  const bindingLimited = kind === "storage" &&
    limits.maxStorageBufferBindingSize <= limits.maxBufferSize;
  const maxSize = bindingLimited ? limits.maxStorageBufferBindingSize : limits.maxBufferSize;
  const limitName = bindingLimited ? "maxStorageBufferBindingSize" : "maxBufferSize";
  if (size > maxSize) {
    throw new RangeError(
      `buffer of ${bytes} bytes exceeds the device limit ${limitName} = ${maxSize} bytes`,
    );
  }
  const key = `${kind}:${size}`;
  const hostWrite = opts.hostWrite ?? kind !== "storage";
  // GPU-written buffers come from the pending list first: the same sequence of ops then
  // gets the same buffers step after step (dispatch caches bind groups by buffer).
  let buf = hostWrite ? undefined : pendingFree.get(key)?.pop();
  if (buf) {
    pendingCount--;
    pendingBytes -= size;
  } else if ((buf = free.get(key)?.pop())) {
    pooled--;
    pooledBytes -= size;
  } else {
    buf = device.createBuffer({ size, usage: USAGE[kind], label: `${kind}:${size}` });
    sizes.set(buf, size);
  }
  live++;
  liveBytes += size;
  if (liveBytes > peakBytes) peakBytes = liveBytes;
  return buf;
}

/** Returns a buffer to the pool; it becomes reusable after the next submit. */
export function releaseBuffer(buf: GPUBuffer, kind: BufferKind = "storage"): void {
  const size = sizes.get(buf)!;
  live--;
  liveBytes -= size;
  const key = `${kind}:${size}`;
  let list = pendingFree.get(key);
  if (!list) pendingFree.set(key, list = []);
  list.push(buf);
  pendingCount++;
  pendingBytes += size;
}

/** Called after each submit: pending buffers become reusable. */
export function onSubmitted(): void {
  for (const [key, bufs] of pendingFree) {
    let list = free.get(key);
    if (!list) free.set(key, list = []);
    list.push(...bufs);
  }
  pooled += pendingCount;
  pooledBytes += pendingBytes;
  pendingFree.clear();
  pendingCount = 0;
  pendingBytes = 0;
}

const trimListeners: (() => void)[] = [];

/** Registers `fn` to run before `trimPool` destroys buffers (caches that reference them). */
export function onTrim(fn: () => void): void {
  trimListeners.push(fn);
}

/** Destroys every free buffer in the pool (live buffers are untouched). */
export function trimPool(): void {
  for (const fn of trimListeners) fn();
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  pooled = 0;
  pooledBytes = 0;
}

/** Buffer counts and bytes: in use, and idle in the pool. */
export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  /** Bytes of those buffers. */
  liveBytes: number;
  /** Idle buffers kept for reuse (including those waiting for a submit). */
  pooledBuffers: number;
  /** Bytes of idle buffers. */
  pooledBytes: number;
  /** Highest `liveBytes` since start or the last `resetPeak()`. */
  peakBytes: number;
}

/** Current pool statistics. */
export function poolStats(): PoolStats {
  return {
    liveBuffers: live,
    liveBytes,
    peakBytes,
    pooledBuffers: pooled + pendingCount,
    pooledBytes: pooledBytes + pendingBytes,
  };
}

/**
 * Restarts the peak counter at the bytes in use now, so `poolStats().peakBytes` then
 * reports the high-water mark of what runs next (one training step, say).
 */
export function resetPeak(): void {
  peakBytes = liveBytes;
}
