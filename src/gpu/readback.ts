/**
 * Batched readback: many GPU tensors read to the host with few round trips (each readback
 * costs ~11 ms in Deno, so reading tensor by tensor dominates a checkpoint or a metric read).
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";
import { copyBuffer, flush } from "./dispatch.ts";
import { settleErrors } from "./device.ts";
import { acquireBuffer, releaseBuffer } from "./pool.ts";

/** Bytes gathered per mapped buffer (tensors are packed into mappable buffers of at most this). */
const READ_CHUNK_BYTES = 64 << 20;

/** A tensor's values on the host: `Float32Array` for f32 (and f16, widened), `Int32Array` for i32. */
export type HostValues = Float32Array | Int32Array;

/** Tensors read back by `readBackMapped`, still mapped. */
export interface MappedReadback {
  /** One array per tensor, in order; views into mapped memory, valid until `release()`. */
  values: HostValues[];
  /** Unmaps the buffers (idempotent); the views become unusable. */
  release(): void;
}

/**
 * Reads many tensors with one round trip: their buffers are copied (GPU side) straight into
 * mappable buffers of at most 64 MiB, which are all mapped at once, and each tensor's values
 * are a view of the mapped memory. A caller that writes them to a file (a checkpoint of
 * ResNet-18 with its AdamW moments is 135 MB) so makes no host copy of its own; it must call
 * `release()` when done (also on errors) so the buffers return to the pool.
 */
export async function readBackMapped(tensors: readonly Tensor[]): Promise<MappedReadback> {
  const values: HostValues[] = new Array(tensors.length);
  // Tensors [from, to) packed into one mappable buffer (none for an all-empty run).
  const chunks: { buffer?: GPUBuffer; bytes: number; from: number; to: number }[] = [];
  const owned: number[] = [];
  let i = 0;
  while (i < tensors.length) {
    // f16 tensors (element pairs) take the one-by-one path, which widens them.
    if (tensors[i].size * 4 >= READ_CHUNK_BYTES || tensors[i].dtype === "f16") {
      owned.push(i++);
      continue;
    }
    let bytes = 0;
    let j = i;
    while (
      j < tensors.length && tensors[j].dtype !== "f16" &&
      bytes + tensors[j].size * 4 <= READ_CHUNK_BYTES
    ) {
      bytes += tensors[j].size * 4;
      j++;
    }
    chunks.push({ bytes, from: i, to: j });
    i = j;
  }
  const mapped: GPUBuffer[] = [];
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const b of mapped) b.unmap();
    for (const c of chunks) if (c.buffer) releaseBuffer(c.buffer, "readback");
  };
  try {
    for (const c of chunks) {
      if (c.bytes === 0) continue;
      c.buffer = acquireBuffer(c.bytes, "readback");
      let off = 0;
      for (let k = c.from; k < c.to; k++) {
        const n = tensors[k].size * 4;
        if (n > 0) copyBuffer(tensors[k].buffer, c.buffer, { dstOffset: off, size: n });
        off += n;
      }
    }
    flush();
    // Every map settles before anything is released (a buffer must not return to the pool
    // mapped).
    const maps = await Promise.allSettled(chunks.map(async (c) => {
      if (!c.buffer) return;
      await c.buffer.mapAsync(GPUMapMode.READ, 0, c.bytes);
      mapped.push(c.buffer);
    }));
    // A validation error upstream explains a failed map better than the map error.
    await settleErrors();
    for (const m of maps) if (m.status === "rejected") throw m.reason;
    for (const c of chunks) {
      const range = c.buffer ? c.buffer.getMappedRange(0, c.bytes) : new ArrayBuffer(0);
      let off = 0;
      for (let k = c.from; k < c.to; k++) {
        const n = tensors[k].size;
        values[k] = tensors[k].dtype === "f32"
          ? new Float32Array(range, off, n)
          : new Int32Array(range, off, n);
        off += n * 4;
      }
    }
    for (const k of owned) values[k] = await tensors[k].toArray();
  } catch (e) {
    release();
    throw e;
  }
  return { values, release };
}

/**
 * Reads many tensors with one round trip (see `readBackMapped`). The result has one array
 * per tensor, in order: `Float32Array` for f32 (and f16, widened), `Int32Array` for i32.
 */
export async function readBackAll(tensors: readonly Tensor[]): Promise<HostValues[]> {
  const mapped = await readBackMapped(tensors);
  try {
    return mapped.values.map((v) => v.slice());
  } finally {
    mapped.release();
  }
}
