/**
 * IDX files (the MNIST / Fashion-MNIST layout), raw or gzip: a validating reader and a writer.
 *
 * Layout (big-endian): magic `0x00000803` (unsigned bytes, 3 dims) then N, rows, cols and
 * N·rows·cols pixels for images; magic `0x00000801` then N and N label bytes for labels.
 *
 * @module
 */

import { DataError, reasonOf } from "./errors.ts";
import { host } from "../platform/host.ts";

/** Magic number of an IDX file of unsigned bytes with 3 dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x803;
/** Magic number of an IDX file of unsigned bytes with 1 dimension (labels). */
export const IDX_LABELS_MAGIC = 0x801;
/** Largest accepted payload (bytes) of one IDX file. */
export const MAX_IDX_BYTES = 2 ** 31 - 1;
/** Largest accepted image side in an IDX file. */
export const MAX_IDX_SIDE = 4096;

/** Images read from an IDX file. */
export interface IdxImages {
  /** Number of images. */
  count: number;
  /** Rows per image. */
  height: number;
  /** Columns per image. */
  width: number;
  /** `count·height·width` pixels. */
  data: Uint8Array;
}

const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Reads a file, gunzipping it when it starts with the gzip magic. `expect(header)` receives the
 * first 16 decompressed bytes (or fewer for a short file) and returns the exact total size the
 * file must have; decompression stops as soon as the output exceeds it, so a hostile gzip cannot
 * make us allocate more than the header promises (and the header itself is capped).
 */
async function readSized(
  path: string,
  header: { bytes: number; magic: number; what: string },
  expect: (header: Uint8Array) => number,
): Promise<Uint8Array> {
  const headerBytes = header.bytes;
  let magicChecked = false;
  const magicOf = (parts: Uint8Array[]): void => {
    if (magicChecked) return;
    const j = concat(parts, parts.reduce((a, p) => a + p.length, 0));
    if (j.length < 4) return;
    magicChecked = true;
    checkMagic(
      path,
      new DataView(j.buffer, j.byteOffset, 4).getUint32(0),
      header.magic,
      header.what,
    );
  };
  let opened: { head: Uint8Array; stream: ReadableStream<Uint8Array> };
  try {
    opened = await host.openRead(path, 2);
  } catch (e) {
    throw new DataError(`IDX file ${path}: cannot open (${reasonOf(e)})`);
  }
  const head = opened.head;
  let stream = opened.stream;
  // A raw file's size is known up front; a gzip file's only as it decompresses.
  let rawSize: number | null = null;
  if (head.length === 2 && isGzip(head)) {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
    );
  } else {
    try {
      rawSize = (await host.stat(path)).size;
    } catch { /* unknown: read and count */ }
  }
  const reader = stream.getReader();
  let out: Uint8Array | null = null;
  const pending: Uint8Array[] = [];
  let pendingLen = 0;
  let total = 0;
  let need = -1;
  try {
    while (true) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new DataError(`IDX file ${path}: corrupt gzip data (${reasonOf(e)})`);
      }
      if (r.done) break;
      const chunk = r.value;
      if (need < 0) {
        pending.push(chunk);
        pendingLen += chunk.length;
        magicOf(pending);
        if (pendingLen < headerBytes) continue;
        const joined = concat(pending, pendingLen);
        need = expect(joined.subarray(0, headerBytes));
        if (rawSize !== null && rawSize !== need) {
          total = rawSize;
          break; // reported below, before anything is allocated
        }
        // The buffer grows with the data actually received (up to what the header promises),
        // so a header promising gigabytes in a small (or gzip-bomb) file allocates little.
        out = new Uint8Array(rawSize ?? Math.min(need, Math.max(joined.length, 1 << 20)));
        const take = Math.min(joined.length, need);
        out.set(joined.subarray(0, take));
        total = joined.length;
        if (total > need) break;
        continue;
      }
      if (total + chunk.length > need) {
        total += chunk.length;
        break;
      }
      if (total + chunk.length > out!.length) {
        const grown: Uint8Array = new Uint8Array(
          Math.min(need, Math.max(2 * out!.length, total + chunk.length)),
        );
        grown.set(out!.subarray(0, total));
        out = grown;
      }
      out!.set(chunk, total);
      total += chunk.length;
    }
  } finally {
    // Cancelling the stream also closes the file behind it.
    await reader.cancel().catch(() => {});
  }
  if (need < 0) {
    magicOf(pending);
    throw new DataError(
      `IDX file ${path}: truncated header (expected ${headerBytes} bytes, got ${pendingLen})`,
    );
  }
  if (total !== need || out === null) {
    throw new DataError(
      `IDX file ${path}: ${total < need ? "truncated" : "too long"} (header says ${need} bytes, ` +
        `file has ${total > need ? "more than " : ""}${total})`,
    );
  }
  return out!.subarray(0, total);
}

function concat(parts: Uint8Array[], len: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function checkMagic(path: string, got: number, want: number, what: string): void {
  if (got !== want) {
    throw new DataError(
      `IDX file ${path}: wrong magic number 0x${got.toString(16).padStart(8, "0")} ` +
        `(expected 0x${want.toString(16).padStart(8, "0")} for ${what})`,
    );
  }
}

/** Reads and validates an IDX image file (raw or gzip). */
export async function readIdxImages(path: string): Promise<IdxImages> {
  let dims = [0, 0, 0];
  const head = { bytes: 16, magic: IDX_IMAGES_MAGIC, what: "images" };
  const bytes = await readSized(path, head, (h) => {
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    dims = [dv.getUint32(4), dv.getUint32(8), dv.getUint32(12)];
    const [n, rows, cols] = dims;
    if (rows < 1 || cols < 1 || rows > MAX_IDX_SIDE || cols > MAX_IDX_SIDE) {
      throw new DataError(
        `IDX file ${path}: image size ${rows}x${cols} outside 1..${MAX_IDX_SIDE}`,
      );
    }
    const size = 16 + n * rows * cols;
    if (size > MAX_IDX_BYTES) {
      throw new DataError(
        `IDX file ${path}: header promises ${size} bytes, more than the ${MAX_IDX_BYTES} accepted`,
      );
    }
    return size;
  });
  const [count, height, width] = dims;
  return { count, height, width, data: bytes.subarray(16) };
}

/** Reads and validates an IDX label file (raw or gzip). */
export async function readIdxLabels(path: string): Promise<Uint8Array> {
  const head = { bytes: 8, magic: IDX_LABELS_MAGIC, what: "labels" };
  const bytes = await readSized(path, head, (h) => {
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    const size = 8 + dv.getUint32(4);
    if (size > MAX_IDX_BYTES) {
      throw new DataError(`IDX file ${path}: header promises ${size} bytes, too many`);
    }
    return size;
  });
  return bytes.subarray(8);
}

/** Encodes images `[count, height, width]` as IDX bytes. */
export function encodeIdxImages(img: IdxImages): Uint8Array {
  const out = new Uint8Array(16 + img.data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_IMAGES_MAGIC);
  dv.setUint32(4, img.count);
  dv.setUint32(8, img.height);
  dv.setUint32(12, img.width);
  out.set(img.data, 16);
  return out;
}

/** Encodes labels as IDX bytes. */
export function encodeIdxLabels(labels: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + labels.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_LABELS_MAGIC);
  dv.setUint32(4, labels.length);
  out.set(labels, 8);
  return out;
}

/** Gzips bytes (for writing `.gz` IDX files). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** Fashion-MNIST's class names, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Finds `<prefix>-<kind>-ubyte` or `.gz` in a folder; null when neither exists. */
export async function findIdxFile(
  root: string,
  prefix: "train" | "t10k",
  kind: "images-idx3" | "labels-idx1",
): Promise<string | null> {
  for (const name of [`${prefix}-${kind}-ubyte.gz`, `${prefix}-${kind}-ubyte`]) {
    const p = `${root.replace(/\/+$/, "")}/${name}`;
    try {
      const st = await host.stat(p);
      if (st.isFile) return p;
    } catch { /* try the next name */ }
  }
  return null;
}
