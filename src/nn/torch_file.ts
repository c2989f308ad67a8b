/**
 * Reads files written by `torch.save` without Python: the zip format (torch ≥ 1.6,
 * `<archive>/data.pkl` plus one stored entry per storage) and the legacy format (torch < 1.6:
 * a magic number, protocol and system-info pickles, the object pickle, the list of storage
 * keys, then each storage's raw bytes behind an int64 element count).
 *
 * The object pickle goes through the restricted unpickler (`pickle.ts`) with an allowlist of
 * the globals state dicts use; anything else is refused by name. Tensors are rebuilt from
 * (storage, offset, size, stride), so views into a shared storage (a transposed or sliced
 * tensor) come out as the values PyTorch shows. Supported element types: float32, float16,
 * bfloat16, int64 (and int32); any other is an error naming the key.
 *
 * Bounds: every storage is a view into the input (no copy), its declared size must fit the
 * entry or the stream, a tensor's extent (offset + Σ (size−1)·stride) must lie inside its
 * storage, and a materialised tensor may not exceed the file's size, so a hostile file cannot
 * cause an out-of-bounds read or an allocation its bytes do not justify.
 *
 * @module
 */

import { describe, PickleError, PyDict, type PyGlobal, PyTuple, unpickle } from "./pickle.ts";
import { isZip, readZip, type ZipArchive, ZipError } from "./zip_reader.ts";
import type { HostTensor, SafetensorsDType } from "./safetensors.ts";

/** The longest error message kept whole; the rest of a longer one is cut. */
const MESSAGE_MAX = 400;

/** A malformed, hostile or unsupported PyTorch file (one-line message naming file and key). */
export class TorchFileError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    // One line, and short: names quoted from the file (storage keys, entries, globals) may
    // hold control characters, shown escaped, and be any length, cut after MESSAGE_MAX.
    const line = message.replace(
      // deno-lint-ignore no-control-regex -- control characters are what it escapes
      /[\u0000-\u001f\u007f]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    super(
      line.length <= MESSAGE_MAX
        ? line
        : `${line.slice(0, MESSAGE_MAX)}… (${line.length} characters)`,
    );
    this.name = "TorchFileError";
  }
}

/** A `torch.*Storage` type: its element size and, when supported, our dtype. */
interface StorageType {
  name: string;
  itemSize: number;
  dtype: SafetensorsDType | null;
}

const STORAGE_TYPES: Record<string, [number, SafetensorsDType | null]> = {
  FloatStorage: [4, "F32"],
  HalfStorage: [2, "F16"],
  BFloat16Storage: [2, "BF16"],
  LongStorage: [8, "I64"],
  IntStorage: [4, "I32"],
  DoubleStorage: [8, null],
  ShortStorage: [2, null],
  CharStorage: [1, null],
  ByteStorage: [1, null],
  BoolStorage: [1, null],
  ComplexFloatStorage: [8, null],
  ComplexDoubleStorage: [16, null],
  QUInt8Storage: [1, null],
  QInt8Storage: [1, null],
  QInt32Storage: [4, null],
  QUInt4x2Storage: [1, null],
  QUInt2x4Storage: [1, null],
};

/** One storage: its type, element count and (once known) its bytes. */
class Storage {
  /** Bytes of a legacy-stream storage. */
  data: Uint8Array | null = null;
  /** Reads (and CRC-checks) a zip entry on first use. */
  reader: (() => Uint8Array) | null = null;
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly numel: number,
    /** For a legacy view storage: the root storage and the element offset into it. */
    readonly root: Storage | null = null,
    readonly rootOffset = 0,
  ) {}

  bytes(): Uint8Array {
    if (this.root) {
      const r = this.root.bytes();
      const s = this.rootOffset * this.type.itemSize;
      return r.subarray(s, s + this.numel * this.type.itemSize);
    }
    if (this.reader) return this.reader();
    if (!this.data) throw new TorchFileError(`storage "${this.key}" has no data in the file`);
    return this.data;
  }
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  /** Creates the reference. */
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** What a parsed file holds: its format, the top-level object and the file size. */
export interface TorchFile {
  /** "zip" (torch ≥ 1.6) or "legacy" (torch < 1.6). */
  format: "zip" | "legacy";
  /** The unpickled object; tensors are `TensorRef`s, dicts `PyDict`s. */
  root: unknown;
  /** The file's size in bytes (bounds materialised tensors). */
  fileSize: number;
  /** Names the file in errors. */
  source: string;
}

function ints(x: unknown, what: string): number[] {
  const items = x instanceof PyTuple ? x.items : Array.isArray(x) ? x : null;
  if (!items || !items.every((v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) {
    throw new TorchFileError(
      `${what} must be a tuple of non-negative integers, got ${describe(x)}`,
    );
  }
  return items as number[];
}

function rebuildTensor(args: unknown[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof Storage)) {
    throw new TorchFileError(`_rebuild_tensor: expected a storage, got ${describe(storage)}`);
  }
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
    throw new TorchFileError(`_rebuild_tensor: bad storage offset ${String(offset)}`);
  }
  const shape = ints(size, "tensor size");
  const st = ints(stride, "tensor stride");
  if (st.length !== shape.length) {
    throw new TorchFileError(`tensor size [${shape}] and stride [${st}] differ in length`);
  }
  return new TensorRef(storage, offset, shape, st);
}

function fn(qualname: string, call: (args: unknown[]) => unknown): [string, PyGlobal] {
  return [qualname, { qualname, call }];
}

function storageGlobals(): [string, PyGlobal][] {
  return Object.entries(STORAGE_TYPES).map(([name, [itemSize, dtype]]) => {
    const type: StorageType = { name: `torch.${name}`, itemSize, dtype };
    const g: PyGlobal & { storageType: StorageType } = {
      qualname: `torch.${name}`,
      storageType: type,
      call: () => {
        throw new TorchFileError(`torch.${name} cannot be called in a state dict`);
      },
    };
    return [g.qualname, g];
  });
}

const newDict = (args: unknown[]): PyDict => {
  const d = new PyDict();
  // OrderedDict(items) with a list of pairs (protocol 0/1 writers).
  if (args.length === 1 && Array.isArray(args[0])) {
    for (const kv of args[0]) if (kv instanceof PyTuple) d.set(kv.items[0], kv.items[1]);
  }
  return d;
};

/**
 * The allowlist: what state dicts, Lightning checkpoints and timm/torchvision files use.
 * Nothing here runs code: each entry builds plain data.
 */
const GLOBALS: ReadonlyMap<string, PyGlobal> = new Map([
  fn("collections.OrderedDict", newDict),
  // Lightning's hyper-parameter dict (a plain dict subclass) under its historical names.
  fn("pytorch_lightning.utilities.parsing.AttributeDict", newDict),
  fn("lightning.fabric.utilities.data.AttributeDict", newDict),
  fn("lightning_fabric.utilities.data.AttributeDict", newDict),
  fn("torch._utils._rebuild_tensor_v2", rebuildTensor),
  fn("torch._utils._rebuild_tensor", rebuildTensor),
  fn("torch._utils._rebuild_parameter", (a) => a[0]),
  fn("torch._utils._rebuild_parameter_with_state", (a) => a[0]),
  fn("torch.Size", (a) => a[0] ?? new PyTuple([])),
  ...storageGlobals(),
]);

function storageTypeOf(x: unknown, src: string): StorageType {
  const t = (x as { storageType?: StorageType } | null)?.storageType;
  if (!t) throw new TorchFileError(`${src}: expected a torch.*Storage type, got ${describe(x)}`);
  return t;
}

function count(x: unknown, what: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
    throw new TorchFileError(`${what} must be a non-negative integer, got ${String(x)}`);
  }
  return x;
}

function rethrow(e: unknown, source: string): never {
  if (e instanceof TorchFileError || e instanceof PickleError || e instanceof ZipError) {
    const m = e.message;
    throw new TorchFileError(m.includes(source) ? m : `"${source}": ${m}`);
  }
  throw e;
}

/** Parses a `torch.save` file (zip or legacy). Storages stay views into `bytes`. */
export function readTorchFile(bytes: Uint8Array, source = "file"): TorchFile {
  try {
    return isZip(bytes) ? readZipFormat(bytes, source) : readLegacyFormat(bytes, source);
  } catch (e) {
    rethrow(e, source);
  }
}

function readZipFormat(bytes: Uint8Array, source: string): TorchFile {
  const zip: ZipArchive = readZip(bytes, source);
  const pkl = [...zip.entries.keys()].find((n) => /^[^/]*\/data\.pkl$/.test(n) || n === "data.pkl");
  if (!pkl) {
    throw new TorchFileError(`"${source}": zip has no data.pkl entry (not a torch.save file)`);
  }
  const prefix = pkl.slice(0, pkl.length - "data.pkl".length);
  const storages = new Map<string, Storage>();
  const root = unpickle(zip.read(pkl), {
    globals: GLOBALS,
    source: `"${source}" entry "${pkl}"`,
    persistentLoad(pid) {
      if (!(pid instanceof PyTuple) || pid.items[0] !== "storage") {
        throw new TorchFileError(`"${source}": unknown persistent id ${describe(pid)}`);
      }
      const [, typ, key, , numel] = pid.items;
      const type = storageTypeOf(typ, source);
      const k = String(key);
      const cached = storages.get(k);
      if (cached) return cached;
      const n = count(numel, `storage "${k}" size`);
      const entry = `${prefix}data/${k}`;
      const e = zip.entries.get(entry);
      if (!e) throw new TorchFileError(`"${source}": storage entry "${entry}" is missing`);
      if (e.size < n * type.itemSize) {
        throw new TorchFileError(
          `"${source}" entry "${entry}": ${type.name} of ${n} elements needs ${
            n * type.itemSize
          } bytes, the entry has ${e.size}`,
        );
      }
      const s = new Storage(k, type, n);
      s.reader = () => zip.read(entry).subarray(0, n * type.itemSize);
      storages.set(k, s);
      return s;
    },
  }).value;
  return { format: "zip", root, fileSize: bytes.byteLength, source };
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function readLegacyFormat(bytes: Uint8Array, source: string): TorchFile {
  if (bytes.length >= 262 && bytes[257] === 0x75 && bytes[258] === 0x73 && bytes[259] === 0x74) {
    throw new TorchFileError(`"${source}": the tar format of torch < 0.4 is not supported`);
  }
  if (bytes[0] !== 0x80) {
    throw new TorchFileError(
      `"${source}": not a torch.save file (expected a zip archive or a pickle, got byte 0x${
        (bytes[0] ?? 0).toString(16)
      } at 0)`,
    );
  }
  const plain = { globals: new Map<string, PyGlobal>(), source: `"${source}" header` };
  const magic = unpickle(bytes, plain, 0);
  if (magic.value !== LEGACY_MAGIC) {
    throw new TorchFileError(`"${source}": bad magic number (not a torch.save file)`);
  }
  const proto = unpickle(bytes, plain, magic.end);
  if (proto.value !== 1001) {
    throw new TorchFileError(`"${source}": legacy protocol ${String(proto.value)}, expected 1001`);
  }
  const info = unpickle(bytes, plain, proto.end);
  if (info.value instanceof PyDict && info.value.get("little_endian") === false) {
    throw new TorchFileError(`"${source}": big-endian files are not supported`);
  }
  const storages = new Map<string, Storage>();
  const main = unpickle(bytes, {
    globals: GLOBALS,
    source: `"${source}" data pickle`,
    persistentLoad(pid) {
      if (!(pid instanceof PyTuple) || pid.items[0] !== "storage") {
        throw new TorchFileError(`"${source}": unknown persistent id ${describe(pid)}`);
      }
      const [, typ, rootKey, , numel, view] = pid.items;
      const type = storageTypeOf(typ, source);
      const k = String(rootKey);
      let root = storages.get(k);
      if (!root) {
        root = new Storage(k, type, count(numel, `storage "${k}" size`));
        storages.set(k, root);
      }
      if (view instanceof PyTuple) {
        const [vk, off, vsize] = view.items;
        const o = count(off, `view "${String(vk)}" offset`);
        const n = count(vsize, `view "${String(vk)}" size`);
        if (o + n > root.numel) {
          throw new TorchFileError(
            `"${source}": storage view "${String(vk)}" [${o}, ${
              o + n
            }) exceeds storage "${k}" of ${root.numel} elements`,
          );
        }
        return new Storage(String(vk), type, n, root, o);
      }
      return root;
    },
  }, info.end);
  const keys = unpickle(bytes, { ...plain, source: `"${source}" storage keys` }, main.end);
  if (!Array.isArray(keys.value)) {
    throw new TorchFileError(`"${source}": expected the list of storage keys after the data`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = keys.end;
  for (const key of keys.value) {
    const k = String(key);
    const s = storages.get(k);
    if (!s) throw new TorchFileError(`"${source}": storage "${k}" is listed but never used`);
    if (p + 8 > bytes.length) {
      throw new TorchFileError(`"${source}": storage "${k}" header is past the end (truncated)`);
    }
    const n = dv.getBigInt64(p, true);
    if (n !== BigInt(s.numel)) {
      throw new TorchFileError(
        `"${source}": storage "${k}" records ${n} elements, its pickle says ${s.numel}`,
      );
    }
    const nbytes = s.numel * s.type.itemSize;
    if (p + 8 + nbytes > bytes.length) {
      throw new TorchFileError(
        `"${source}": storage "${k}" needs ${nbytes} bytes at ${
          p + 8
        }, the file ends at ${bytes.length} (truncated)`,
      );
    }
    s.data = bytes.subarray(p + 8, p + 8 + nbytes);
    p += 8 + nbytes;
  }
  return { format: "legacy", root: main.value, fileSize: bytes.byteLength, source };
}

/**
 * Copies a tensor out of its storage into contiguous little-endian bytes (a view when it is
 * already contiguous). `key` names the tensor in errors.
 */
export function materialize(t: TensorRef, key: string, file: TorchFile): HostTensor {
  const where = `"${file.source}" tensor "${key}"`;
  const type = t.storage.type;
  if (!type.dtype) {
    throw new TorchFileError(
      `${where}: unsupported dtype ${type.name} (expected float32, float16, bfloat16 or int64)`,
    );
  }
  let numel = 1;
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) {
    numel *= t.shape[i];
    if (!Number.isSafeInteger(numel)) {
      throw new TorchFileError(`${where}: absurd size [${t.shape}]`);
    }
  }
  if (numel > 0) {
    for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
    if (!Number.isSafeInteger(last) || last >= t.storage.numel) {
      throw new TorchFileError(
        `${where}: size [${t.shape}] stride [${t.stride}] offset ${t.offset} reaches element ${last}, the storage has ${t.storage.numel}`,
      );
    }
  }
  const item = type.itemSize;
  if (numel * item > file.fileSize) {
    throw new TorchFileError(
      `${where}: ${numel * item} bytes exceed the file's ${file.fileSize} (absurd size)`,
    );
  }
  const src = t.storage.bytes();
  // Contiguous (row-major) tensors are views.
  let contiguous = true;
  for (let i = t.shape.length - 1, s = 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== s) contiguous = false;
    s *= t.shape[i];
  }
  const shape = [...t.shape];
  if (contiguous || numel === 0) {
    const b = t.offset * item;
    return { dtype: type.dtype, shape, data: src.subarray(b, b + numel * item) };
  }
  const out = new Uint8Array(numel * item);
  const nd = shape.length;
  const inner = shape[nd - 1];
  const innerStride = t.stride[nd - 1];
  const idx = new Array(Math.max(0, nd - 1)).fill(0);
  let o = 0;
  for (let row = 0, rows = numel / inner; row < rows; row++) {
    let base = t.offset;
    for (let d = 0; d < nd - 1; d++) base += idx[d] * t.stride[d];
    if (innerStride === 1) {
      out.set(src.subarray(base * item, (base + inner) * item), o);
      o += inner * item;
    } else {
      for (let j = 0; j < inner; j++) {
        const s = (base + j * innerStride) * item;
        for (let b = 0; b < item; b++) out[o++] = src[s + b];
      }
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { dtype: type.dtype, shape, data: out };
}

/** The state dict found in a parsed file, with what else the file held. */
export interface TorchStateDict {
  /** Tensors by key (contiguous host tensors). */
  tensors: Map<string, HostTensor>;
  /** Where the state dict was found: "" (top level), "state_dict" or "model". */
  container: string;
  /** Non-tensor entries of the state dict (skipped). */
  skipped: string[];
}

/**
 * Finds the state dict (top level, or wrapped under `state_dict` as Lightning writes it, or
 * under `model`) and materialises its tensors.
 */
export function torchStateDict(file: TorchFile): TorchStateDict {
  let d = file.root;
  let container = "";
  if (!(d instanceof PyDict)) {
    throw new TorchFileError(
      `"${file.source}": expected a dict (a state dict), got ${describe(d)}`,
    );
  }
  for (const wrap of ["state_dict", "model"]) {
    const inner = (d as PyDict).get(wrap);
    if (inner instanceof PyDict) {
      d = inner;
      container = wrap;
      break;
    }
  }
  const tensors = new Map<string, HostTensor>();
  const skipped: string[] = [];
  try {
    for (const [k, v] of d as PyDict) {
      const key = String(k);
      if (v instanceof TensorRef) tensors.set(key, materialize(v, key, file));
      else skipped.push(key);
    }
  } catch (e) {
    rethrow(e, file.source);
  }
  if (tensors.size === 0) {
    throw new TorchFileError(
      `"${file.source}": no tensors found${container ? ` under "${container}"` : ""}`,
    );
  }
  return { tensors, container, skipped };
}
