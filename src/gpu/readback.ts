/**
 * Batched readback: many GPU tensors read to the host with few round trips (each readback
 * costs ~11 ms in Deno, so reading tensor by tensor dominates a checkpoint or a metric read).
 *
 * @module
 */

import { Tensor } from "./tensor.ts";
import { copyBuffer, readBuffer } from "./dispatch.ts";

/** Bytes gathered per readback (tensors are packed into one GPU buffer of at most this). */
const READ_CHUNK_BYTES = 64 << 20;

/**
 * Reads many tensors with few readbacks: packs them into one GPU buffer per ~64 MiB (a
 * buffer copy each) and maps it once, instead of one round trip per tensor. The result has
 * one array per tensor, in order: `Float32Array` for f32 (and f16, widened), `Int32Array` for i32.
 */
export async function readBackAll(
  tensors: readonly Tensor[],
): Promise<(Float32Array | Int32Array)[]> {
  const out: (Float32Array | Int32Array)[] = new Array(tensors.length);
  let i = 0;
  while (i < tensors.length) {
    // f16 tensors (element pairs) take the one-by-one path, which widens them.
    if (tensors[i].size * 4 >= READ_CHUNK_BYTES || tensors[i].dtype === "f16") {
      out[i] = await tensors[i].toArray();
      i++;
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
    if (bytes === 0) {
      for (; i < j; i++) {
        out[i] = tensors[i].dtype === "f32" ? new Float32Array(0) : new Int32Array(0);
      }
      continue;
    }
    const staging = Tensor.empty([bytes / 4]);
    try {
      let off = 0;
      for (let k = i; k < j; k++) {
        const n = tensors[k].size * 4;
        if (n > 0) copyBuffer(tensors[k].buffer, staging.buffer, { dstOffset: off, size: n });
        off += n;
      }
      const buf = await readBuffer(staging.buffer, bytes);
      off = 0;
      for (let k = i; k < j; k++) {
        const n = tensors[k].size;
        out[k] = tensors[k].dtype === "f32"
          ? new Float32Array(buf, off, n)
          : new Int32Array(buf, off, n);
        off += n * 4;
      }
    } finally {
      staging.dispose();
    }
    i = j;
  }
  return out;
}
