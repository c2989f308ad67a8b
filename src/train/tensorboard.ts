/**
 * TensorBoard event files, written and read without any package: TFRecord framing
 * (`u64le length, u32le masked-crc32c(length), data, u32le masked-crc32c(data)`) around
 * `tensorflow.Event` protobuf messages with scalar summaries (`Summary.Value.simple_value`).
 *
 * Wire format used (tensorflow/core/util/event.proto, summary.proto):
 * - Event: `wall_time` 1 (double), `step` 2 (int64), `file_version` 3 (string), `summary` 5.
 * - Summary: repeated `value` 1. Summary.Value: `tag` 1 (string), `simple_value` 2 (float).
 *
 * @module
 */

import { host } from "../platform/host.ts";

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as used by TFRecord. `crc32c("123456789") === 0xe3069283`. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add 0xa282ead8. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames one record: length, masked CRC of the length, data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** A minimal protobuf writer (varint, 64-bit, 32-bit and length-delimited fields). */
class ProtoWriter {
  #bytes: number[] = [];

  #varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.#bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#bytes.push(Number(x));
  }

  #tag(field: number, wire: number): void {
    this.#varint(BigInt((field << 3) | wire));
  }

  double(field: number, v: number): this {
    this.#tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.#bytes.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.#tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#bytes.push(...b);
    return this;
  }

  int64(field: number, v: number): this {
    this.#tag(field, 0);
    this.#varint(BigInt(Math.trunc(v)));
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.#tag(field, 2);
    this.#varint(BigInt(b.length));
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

/** Encodes an Event with the file version (the first record of every event file). */
export function encodeVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, "brain.Event:2").finish();
}

/** Options of `encodeScalarEvent`. */
export interface ScalarEventOptions {
  /** Seconds since the epoch. */
  wallTime: number;
}

/** Encodes an Event holding scalar summaries at a step. */
export function encodeScalarEvent(
  step: number,
  scalars: Record<string, number>,
  options: ScalarEventOptions,
): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, v] of Object.entries(scalars)) {
    summary.bytes(1, new ProtoWriter().string(1, tag).float(2, v).finish());
  }
  return new ProtoWriter().double(1, options.wallTime).int64(2, step).bytes(5, summary.finish())
    .finish();
}

/** Options of `TensorBoardWriter`. */
export interface TensorBoardWriterOptions {
  /** Seconds since the epoch for the file name and the version event (default: now). */
  wallTime?: number;
}

/**
 * Appends scalar events to `dir/events.out.tfevents.<time>.<name>` (TensorBoard's naming;
 * the host name is replaced by `classifier-training.<pid>` to need no `--allow-sys`).
 */
export class TensorBoardWriter {
  /** The event file path. */
  readonly path: string;

  /** Creates the event file and writes the version record. */
  constructor(dir: string, options: TensorBoardWriterOptions = {}) {
    const t = options.wallTime ?? Date.now() / 1000;
    host.mkdirSync(dir, { recursive: true });
    this.path = `${dir}/events.out.tfevents.${Math.floor(t)}.classifier-training.${host.pid}`;
    this.#write(encodeVersionEvent(t));
  }

  #write(event: Uint8Array): void {
    const rec = frameRecord(event);
    host.writeFileSync(this.path, rec, { append: true });
  }

  /** Writes scalars at a step (one Event with one Summary.Value per tag). */
  addScalars(
    step: number,
    scalars: Record<string, number>,
    options: Partial<ScalarEventOptions> = {},
  ): void {
    if (Object.keys(scalars).length === 0) return;
    this.#write(
      encodeScalarEvent(step, scalars, { wallTime: options.wallTime ?? Date.now() / 1000 }),
    );
  }

  /** Flushes to disk (each record is appended as it is written, so nothing is pending). */
  flush(): void {}

  /** Closes the file (nothing stays open between records). */
  close(): void {}
}

/** A decoded event (the fields this module writes). */
export interface TensorBoardEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  /** Global step (0 when absent). */
  step: number;
  /** `brain.Event:2` on the first record. */
  fileVersion?: string;
  /** Scalar summaries by tag. */
  scalars: Record<string, number>;
}

type Field = { field: number; wire: number; value: bigint | Uint8Array | number };

/** Decodes the top-level fields of a protobuf message. */
function decodeFields(b: Uint8Array): Field[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let s = 0n;
    for (;;) {
      if (i >= b.length) throw new Error("protobuf: truncated varint");
      const x = b[i++];
      r |= BigInt(x & 0x7f) << s;
      if (!(x & 0x80)) return r;
      s += 7n;
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1) {
      out.push({ field, wire, value: dv.getFloat64(i, true) });
      i += 8;
    } else if (wire === 2) {
      const n = Number(varint());
      if (i + n > b.length) throw new Error("protobuf: truncated field");
      out.push({ field, wire, value: b.subarray(i, i + n) });
      i += n;
    } else if (wire === 5) {
      out.push({ field, wire, value: dv.getFloat32(i, true) });
      i += 4;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
  return out;
}

/** Decodes one Event message. */
export function decodeEvent(b: Uint8Array): TensorBoardEvent {
  const ev: TensorBoardEvent = { wallTime: 0, step: 0, scalars: {} };
  for (const f of decodeFields(b)) {
    if (f.field === 1 && f.wire === 1) ev.wallTime = f.value as number;
    else if (f.field === 2 && f.wire === 0) ev.step = Number(BigInt.asIntN(64, f.value as bigint));
    else if (f.field === 3 && f.wire === 2) {
      ev.fileVersion = new TextDecoder().decode(f.value as Uint8Array);
    } else if (f.field === 5 && f.wire === 2) {
      for (const v of decodeFields(f.value as Uint8Array)) {
        if (v.field !== 1 || v.wire !== 2) continue;
        let tag = "";
        let val = NaN;
        for (const g of decodeFields(v.value as Uint8Array)) {
          if (g.field === 1 && g.wire === 2) tag = new TextDecoder().decode(g.value as Uint8Array);
          if (g.field === 2 && g.wire === 5) val = g.value as number;
        }
        ev.scalars[tag] = val;
      }
    }
  }
  return ev;
}

/** Splits TFRecord bytes into records, verifying both masked CRCs of each. */
export function readRecords(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  while (i < bytes.length) {
    if (i + 12 > bytes.length) throw new Error(`tfrecord: truncated header at byte ${i}`);
    const len = Number(dv.getBigUint64(i, true));
    const lenCrc = dv.getUint32(i + 8, true);
    if (maskedCrc32c(bytes.subarray(i, i + 8)) !== lenCrc) {
      throw new Error(`tfrecord: length CRC mismatch at byte ${i}`);
    }
    if (i + 16 + len > bytes.length) throw new Error(`tfrecord: truncated record at byte ${i}`);
    const data = bytes.subarray(i + 12, i + 12 + len);
    if (maskedCrc32c(data) !== dv.getUint32(i + 12 + len, true)) {
      throw new Error(`tfrecord: data CRC mismatch at byte ${i}`);
    }
    out.push(data);
    i += 16 + len;
  }
  return out;
}

/** Reads every event of an event file. */
export function readEventFile(path: string): TensorBoardEvent[] {
  return readRecords(host.readFileSync(path)).map(decodeEvent);
}
