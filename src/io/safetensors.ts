/**
 * safetensors reading and writing (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}, …,
 * "__metadata__": {string: string}}`, then the raw little-endian data.
 *
 * The header is fully validated before any data is touched: header length bounded,
 * valid JSON, known dtypes, integer shapes, offsets inside the data section, no overlaps,
 * shape × dtype size = byte length. A malformed or hostile file raises a one-line
 * `SafetensorsError` naming the key and field; nothing is allocated beyond the file size.
 *
 * `parseSafetensors` / `serializeSafetensors` work on host data (for checkpoints);
 * `loadSafetensors` / `saveSafetensors` move GPU tensors.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { readBackMapped } from "../gpu/readback.ts";
import { atomicWrite } from "./atomic.ts";
import { host as osHost } from "../platform/host.ts";

/** Element types this reader and writer know. */
export type SafetensorsDType = "F32" | "F16" | "BF16" | "I64" | "I32";

const DTYPE_SIZE: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

/** Largest accepted JSON header (100 MB), so a hostile length cannot force a huge allocation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** A malformed, hostile or unsupported safetensors file. */
export class SafetensorsError extends Error {
  /** Creates the error (message is one line). */
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/** One tensor on the host: dtype, shape and its raw little-endian bytes. */
export interface HostTensor {
  /** Element type in the file. */
  dtype: SafetensorsDType;
  /** Dimensions (`[]` for a scalar). */
  shape: number[];
  /** Raw little-endian bytes, `numel(shape) × size(dtype)` long. */
  data: Uint8Array;
}

/** A parsed file: tensors in header order and the `__metadata__` map. */
export interface ParsedSafetensors {
  /** Tensors by name, in the order their data appears in the file. */
  tensors: Map<string, HostTensor>;
  /** String metadata (empty when absent). */
  metadata: Record<string, string>;
}

function fail(where: string, msg: string): never {
  throw new SafetensorsError(`safetensors${where ? ` ${where}` : ""}: ${msg}`);
}

function isDType(d: unknown): d is SafetensorsDType {
  return typeof d === "string" && Object.hasOwn(DTYPE_SIZE, d);
}

/**
 * Parses and validates safetensors bytes. The returned `data` arrays are views into
 * `bytes` (no copy). `source` names the file in error messages.
 */
export function parseSafetensors(bytes: Uint8Array, source = ""): ParsedSafetensors {
  const where = source ? `"${source}"` : "";
  if (bytes.byteLength < 8) fail(where, `file is ${bytes.byteLength} bytes, expected at least 8`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  const maxHeader = Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8);
  if (n64 > BigInt(maxHeader)) {
    fail(
      where,
      `header length ${n64} exceeds ${
        maxHeader === MAX_HEADER_BYTES
          ? `the ${MAX_HEADER_BYTES}-byte limit`
          : `the ${bytes.byteLength - 8} bytes after the length field`
      }`,
    );
  }
  const headerLen = Number(n64);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail(where, "header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(where, `header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail(
      where,
      `header must be a JSON object, got ${Array.isArray(header) ? "array" : typeof header}`,
    );
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: {
    name: string;
    dtype: SafetensorsDType;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail(where, `"__metadata__" must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(where, `"__metadata__"."${k}" must be a string, got ${typeof v}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const key = `tensor "${name}"`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      fail(where, `${key} must be an object`);
    }
    const e = raw as Record<string, unknown>;
    if (!isDType(e.dtype)) {
      fail(
        where,
        `${key} has dtype ${JSON.stringify(e.dtype)}, expected one of ${
          Object.keys(DTYPE_SIZE).join(", ")
        }`,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape)) fail(where, `${key} field "shape" must be an array`);
    let numel = 1;
    for (const d of shape) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
        fail(
          where,
          `${key} field "shape" has ${JSON.stringify(d)}, expected non-negative integers`,
        );
      }
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) {
        fail(where, `${key} field "shape" [${shape}] is too large`);
      }
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(
        where,
        `${key} field "data_offsets" must be two non-negative integers, got ${
          JSON.stringify(offs)
        }`,
      );
    }
    const [begin, end] = offs as number[];
    if (begin > end) fail(where, `${key} field "data_offsets" [${begin}, ${end}] has begin > end`);
    if (end > dataLen) {
      fail(
        where,
        `${key} field "data_offsets" [${begin}, ${end}] exceeds the ${dataLen}-byte data section`,
      );
    }
    const want = numel * DTYPE_SIZE[e.dtype];
    if (end - begin !== want) {
      fail(
        where,
        `${key} has shape [${shape.join(", ")}] ${e.dtype} (${want} bytes) but data_offsets span ${
          end - begin
        } bytes`,
      );
    }
    entries.push({ name, dtype: e.dtype, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: (typeof entries)[number] | null = null;
  for (const c of entries) {
    if (c.end === c.begin) continue; // empty tensors occupy no bytes
    if (last && c.begin < last.end) {
      fail(
        where,
        `tensor "${c.name}" data [${c.begin}, ${c.end}] overlaps tensor "${last.name}" [${last.begin}, ${last.end}]`,
      );
    }
    last = c;
  }
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: bytes.subarray(dataStart + e.begin, dataStart + e.end),
    });
  }
  return { tensors, metadata };
}

/** Options of `serializeSafetensors`. */
export interface SerializeOptions {
  /** String metadata stored under `__metadata__`. */
  metadata?: Record<string, string>;
}

/** What the header says of one tensor: its element type and dimensions. */
export interface TensorSpec {
  /** Element type in the file. */
  dtype: SafetensorsDType;
  /** Dimensions (`[]` for a scalar). */
  shape: readonly number[];
}

/** A file's first bytes (length and header) and the size of each tensor's data. */
interface FileLayout {
  /** The 8-byte length and the padded JSON header. */
  head: Uint8Array;
  /** Byte length of each tensor's data, in the given order (the data follows `head`). */
  sizes: number[];
  /** Byte length of the data section. */
  dataBytes: number;
}

/**
 * The one place the file layout is decided: header (data in the given order, JSON padded
 * with spaces to 8 bytes, as the reference writer does).
 */
function layoutSafetensors(
  list: readonly (readonly [string, TensorSpec])[],
  metadata: Record<string, string> | undefined,
): FileLayout {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(`metadata "${k}" must be a string, got ${typeof v}`);
      }
    }
    header.__metadata__ = metadata;
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" cannot name a tensor`);
    if (!isDType(t.dtype)) {
      throw new SafetensorsError(`tensor "${name}" has unknown dtype ${t.dtype}`);
    }
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + want] };
    sizes.push(want);
    offset += want;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20); // spaces, as the reference writer pads
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, sizes, dataBytes: offset };
}

/** Builds safetensors bytes from host tensors (data in the given order, 8-byte aligned header). */
export function serializeSafetensors(
  entries: Map<string, HostTensor> | Record<string, HostTensor>,
  opts: SerializeOptions = {},
): Uint8Array {
  const list = entries instanceof Map ? [...entries] : Object.entries(entries);
  // Checked before the layout allocates: a shape that disagrees with its data is an error,
  // not a huge allocation.
  for (const [name, t] of list) {
    if (!isDType(t.dtype)) continue; // the layout names it
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== want) {
      throw new SafetensorsError(
        `tensor "${name}" shape [${
          t.shape.join(", ")
        }] ${t.dtype} needs ${want} bytes, got ${t.data.byteLength}`,
      );
    }
  }
  const { head, dataBytes } = layoutSafetensors(list, opts.metadata);
  const bytes = new Uint8Array(head.byteLength + dataBytes);
  bytes.set(head);
  let at = head.byteLength;
  for (const [, t] of list) {
    bytes.set(t.data, at);
    at += t.data.byteLength;
  }
  return bytes;
}

// ---- element conversion -------------------------------------------------------------

/** IEEE half (as 16 bits) to a number. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** A number to IEEE half bits (round to nearest even; overflow to ±Inf). */
export function f32ToF16(v: number): number {
  f32Buf[0] = v;
  const x = u32Buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** The values of a float host tensor (F32, F16, BF16) as f32. */
export function hostToFloat32(t: HostTensor, name = "tensor"): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "F32":
      if (LITTLE_ENDIAN) {
        new Uint8Array(out.buffer).set(t.data); // copy also fixes any misalignment
      } else {
        for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      }
      break;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      break;
    case "BF16":
      for (let i = 0; i < n; i++) {
        u32Buf[0] = dv.getUint16(2 * i, true) << 16;
        out[i] = f32Buf[0];
      }
      break;
    default:
      throw new SafetensorsError(`"${name}" has dtype ${t.dtype}, expected a float dtype`);
  }
  return out;
}

/** The values of an integer host tensor (I64 with a range check, I32) as i32. */
export function hostToInt32(t: HostTensor, name = "tensor"): Int32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Int32Array(n);
  if (t.dtype === "I32") {
    for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
  } else if (t.dtype === "I64") {
    for (let i = 0; i < n; i++) {
      const v = dv.getBigInt64(8 * i, true);
      if (v < -2147483648n || v > 2147483647n) {
        throw new SafetensorsError(`"${name}" element ${i} = ${v} does not fit in i32`);
      }
      out[i] = Number(v);
    }
  } else {
    throw new SafetensorsError(`"${name}" has dtype ${t.dtype}, expected I64 or I32`);
  }
  return out;
}

/** Encodes numbers as a host tensor of `dtype` (F16 rounds to nearest even). */
export function toHostTensor(
  values: ArrayLike<number>,
  shape: readonly number[],
  dtype: SafetensorsDType = "F32",
): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) {
    throw new RangeError(
      `toHostTensor: shape [${shape.join(", ")}] needs ${n} values, got ${values.length}`,
    );
  }
  const data = new Uint8Array(n * DTYPE_SIZE[dtype]);
  encodeInto(values, dtype, data);
  return { dtype, shape: [...shape], data };
}

/** Whether the bytes of `values` are already `dtype`'s little-endian file bytes. */
function isFileForm(
  values: ArrayLike<number>,
  dtype: SafetensorsDType,
): values is Float32Array | Int32Array {
  return LITTLE_ENDIAN && ((dtype === "F32" && values instanceof Float32Array) ||
    (dtype === "I32" && values instanceof Int32Array));
}

/**
 * Writes `values` as little-endian `dtype` elements into `dst` (exactly `values.length`
 * elements long). Values already in the file's form (f32 as F32, i32 as I32, on a
 * little-endian host) are one byte copy.
 */
function encodeInto(values: ArrayLike<number>, dtype: SafetensorsDType, dst: Uint8Array): void {
  if (isFileForm(values, dtype)) {
    dst.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return;
  }
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case "F32":
        dv.setFloat32(4 * i, v, true);
        break;
      case "F16":
        dv.setUint16(2 * i, f32ToF16(v), true);
        break;
      case "BF16": {
        // round to nearest even on the upper 16 bits
        f32Buf[0] = v;
        const x = u32Buf[0];
        const r = Number.isNaN(v) ? 0x7fc0 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
        dv.setUint16(2 * i, r, true);
        break;
      }
      case "I64":
        dv.setBigInt64(8 * i, BigInt(Math.trunc(v)), true);
        break;
      case "I32":
        dv.setInt32(4 * i, v, true);
        break;
    }
  }
}

// ---- GPU tensors ----------------------------------------------------------------------

/**
 * Loads a safetensors file (path or bytes) into new GPU tensors: F32/F16/BF16 become f32,
 * I64 (range-checked) and I32 become i32. The caller owns (and disposes) the tensors.
 */
export async function loadSafetensors(
  pathOrBytes: string | Uint8Array,
): Promise<Map<string, Tensor>> {
  let bytes: Uint8Array;
  let source = "";
  if (typeof pathOrBytes === "string") {
    source = pathOrBytes;
    try {
      bytes = await osHost.readFile(pathOrBytes);
    } catch (e) {
      throw new SafetensorsError(
        `safetensors "${pathOrBytes}": cannot read (${(e as Error).message})`,
      );
    }
  } else {
    bytes = pathOrBytes;
  }
  const { tensors } = parseSafetensors(bytes, source);
  // Decode everything first so a bad value leaves no half-loaded GPU tensors behind.
  const host: [string, Float32Array | Int32Array, number[]][] = [];
  for (const [name, t] of tensors) {
    const isInt = t.dtype === "I64" || t.dtype === "I32";
    host.push([name, isInt ? hostToInt32(t, name) : hostToFloat32(t, name), t.shape]);
  }
  const out = new Map<string, Tensor>();
  for (const [name, data, shape] of host) out.set(name, Tensor.fromArray(data, shape).keep());
  return out;
}

/** Options of `saveSafetensors`. */
export interface SaveSafetensorsOptions {
  /** String metadata stored under `__metadata__`. */
  metadata?: Record<string, string>;
  /**
   * Which i32 tensors to write as I64 (PyTorch's integer type); others are written as I32.
   * Default: names ending in `num_batches_tracked`.
   */
  i64Keys?: (key: string) => boolean;
  /** Float storage type (default F32). */
  floatDType?: "F32" | "F16" | "BF16";
}

/**
 * The file type of a GPU tensor: floats (f32, and f16 read back widened) as `floatDType`,
 * i32 as I64 where `i64Keys` says so, else I32.
 */
function fileDType(
  key: string,
  t: Tensor,
  opts: Omit<SaveSafetensorsOptions, "metadata">,
): SafetensorsDType {
  const i64 = opts.i64Keys ?? ((k: string) => k.endsWith("num_batches_tracked"));
  return t.dtype === "i32" ? (i64(key) ? "I64" : "I32") : (opts.floatDType ?? "F32");
}

/** Reads GPU tensors back into host tensors (i32 as I64 where `i64Keys` says so). */
export async function toHostTensors(
  dict: Map<string, Tensor> | Record<string, Tensor>,
  opts: Omit<SaveSafetensorsOptions, "metadata"> = {},
): Promise<Map<string, HostTensor>> {
  const list = dict instanceof Map ? [...dict] : Object.entries(dict);
  const mapped = await readBackMapped(list.map(([, t]) => t));
  try {
    return new Map(list.map(([k, t], i) => [
      k,
      toHostTensor(mapped.values[i], t.shape, fileDType(k, t, opts)),
    ]));
  } finally {
    mapped.release();
  }
}

/**
 * A safetensors file as pieces to write in order (`serializeTensorChunks`). Some pieces are
 * views of mapped GPU readback memory: valid until `release()`.
 */
export interface SafetensorsChunks {
  /** The file's bytes, in order. */
  chunks: Uint8Array[];
  /** Their total length. */
  byteLength: number;
  /** Unmaps the readback memory (idempotent); call it when the pieces are written. */
  release(): void;
}

/**
 * GPU tensors as safetensors pieces, with no host copy where the file's bytes are the
 * tensor's (f32 as F32, i32 as I32 on a little-endian host): those pieces are views of the
 * mapped readback memory, merged where consecutive, ready to be written straight to a file.
 * Other types (I64, F16, BF16) are encoded into new arrays.
 */
export async function serializeTensorChunks(
  dict: Map<string, Tensor> | Record<string, Tensor>,
  opts: SaveSafetensorsOptions = {},
): Promise<SafetensorsChunks> {
  const list = dict instanceof Map ? [...dict] : Object.entries(dict);
  const specs = list.map(([k, t]) =>
    [k, { dtype: fileDType(k, t, opts), shape: t.shape }] as const
  );
  const { head, sizes, dataBytes } = layoutSafetensors(specs, opts.metadata);
  const mapped = await readBackMapped(list.map(([, t]) => t));
  const chunks: Uint8Array[] = [head];
  try {
    for (const [i, values] of mapped.values.entries()) {
      let piece: Uint8Array;
      if (isFileForm(values, specs[i][1].dtype)) {
        piece = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      } else {
        piece = new Uint8Array(sizes[i]);
        encodeInto(values, specs[i][1].dtype, piece);
      }
      const prev = chunks[chunks.length - 1];
      if (
        chunks.length > 1 && prev.buffer === piece.buffer &&
        prev.byteOffset + prev.byteLength === piece.byteOffset
      ) {
        chunks[chunks.length - 1] = new Uint8Array(
          prev.buffer,
          prev.byteOffset,
          prev.byteLength + piece.byteLength,
        );
      } else if (piece.byteLength) chunks.push(piece);
    }
  } catch (e) {
    mapped.release();
    throw e;
  }
  return { chunks, byteLength: head.byteLength + dataBytes, release: mapped.release };
}

/** The safetensors bytes of GPU tensors (what `saveSafetensors` writes), in one array. */
export async function serializeTensors(
  dict: Map<string, Tensor> | Record<string, Tensor>,
  opts: SaveSafetensorsOptions = {},
): Promise<Uint8Array> {
  const file = await serializeTensorChunks(dict, opts);
  try {
    return concatBytes(file.chunks, file.byteLength);
  } finally {
    file.release();
  }
}

/** The pieces joined into one array of `byteLength` bytes. */
export function concatBytes(chunks: readonly Uint8Array[], byteLength?: number): Uint8Array {
  const out = new Uint8Array(byteLength ?? chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Writes GPU tensors to a safetensors file atomically (a temporary file in the same
 * directory, fsync, rename, folder fsync), so a crash never leaves a truncated file under
 * `path`.
 */
export async function saveSafetensors(
  path: string,
  dict: Map<string, Tensor> | Record<string, Tensor>,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  const file = await serializeTensorChunks(dict, opts);
  try {
    atomicWrite(path, file.chunks);
  } finally {
    file.release();
  }
}
