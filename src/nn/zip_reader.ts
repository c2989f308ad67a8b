/**
 * A small, bounded reader of the zip archives `torch.save` writes (torch ≥ 1.6): every
 * entry is *stored* (method 0, no compression), sizes and CRC-32 live in the central
 * directory (the local headers use data descriptors), and a ZIP64 end record is always
 * present. Entries are returned as views into the input bytes: nothing is copied or
 * allocated beyond the directory itself, so a hostile archive cannot force a large
 * allocation. Every offset and size is checked against the file length, and each entry's
 * CRC-32 is checked when it is read.
 *
 * Why not a general zip library: PyTorch never compresses, and a view-only reader keeps
 * a 100 MB checkpoint at one copy in memory (fflate's `unzipSync` copies every entry and
 * does not check CRCs).
 *
 * @module
 */

/** A malformed or unsupported zip archive (the message is one line naming file and entry). */
export class ZipError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ZipError";
  }
}

/** One entry of the central directory. */
export interface ZipEntry {
  /** Entry name (UTF-8). */
  name: string;
  /** Stored size in bytes. */
  size: number;
  /** CRC-32 from the central directory. */
  crc32: number;
  /** Offset of the entry's data in the archive. */
  dataOffset: number;
}

/** A parsed archive: entries by name; `read(name)` returns the CRC-checked data view. */
export interface ZipArchive {
  /** Entries in directory order, by name. */
  entries: Map<string, ZipEntry>;
  /** The entry's bytes (a view into the archive), CRC-checked on first read. */
  read(name: string): Uint8Array;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** Most entries accepted (a ResNet-50 state dict has ~320 storages). */
export const MAX_ZIP_ENTRIES = 1_000_000;

let crcTable: Uint32Array | null = null;

function table(): Uint32Array {
  if (crcTable) return crcTable;
  // Slicing-by-8 tables: 8 × 256 entries (8 bytes per step instead of 1).
  const t = new Uint32Array(2048);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + n];
      t[s * 256 + n] = (t[prev & 0xff] ^ (prev >>> 8)) >>> 0;
    }
  }
  crcTable = t;
  return t;
}

/** CRC-32 (ISO-HDLC, as zip uses) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  const t = table();
  let c = 0xffffffff;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    const b = bytes[i + 4] | (bytes[i + 5] << 8) | (bytes[i + 6] << 16) | (bytes[i + 7] << 24);
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^ t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^
      t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when `bytes` starts like a zip archive (a local file header). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 &&
    bytes[3] === 4;
}

/**
 * Parses the central directory of `bytes`. `source` names the file in errors. Only stored
 * entries are accepted (what `torch.save` writes); a compressed entry is an error naming it.
 */
export function readZip(bytes: Uint8Array, source = "archive"): ZipArchive {
  const fail = (msg: string): never => {
    throw new ZipError(`zip "${source}": ${msg}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.byteLength;
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number, what: string): number => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(len)) fail(`${what} ${v} exceeds the file size ${len}`);
    return Number(v);
  };
  // The end-of-central-directory record: 22 bytes plus a comment of at most 65535 bytes.
  let eocd = -1;
  for (let o = len - 22; o >= Math.max(0, len - 22 - 65535); o--) {
    if (u32(o) === EOCD_SIG && o + 22 + u16(o + 20) === len) {
      eocd = o;
      break;
    }
  }
  if (eocd < 0) {
    fail(`no end-of-central-directory record (truncated or not a zip, ${len} bytes)`);
  }
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  const loc = eocd - 20;
  if (loc >= 0 && u32(loc) === ZIP64_LOCATOR_SIG) {
    const z = u64(loc + 8, "ZIP64 end record offset");
    if (z + 56 > len || u32(z) !== ZIP64_EOCD_SIG) fail(`bad ZIP64 end record at ${z}`);
    const c64 = dv.getBigUint64(z + 32, true);
    if (c64 > BigInt(MAX_ZIP_ENTRIES)) fail(`${c64} entries exceed the ${MAX_ZIP_ENTRIES} limit`);
    count = Number(c64);
    cdSize = u64(z + 40, "central directory size");
    cdOffset = u64(z + 48, "central directory offset");
  }
  if (cdOffset + cdSize > len) {
    fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) exceeds the file size ${len}`);
  }
  // Each directory record is at least 46 bytes, which bounds `count` by the file size.
  if (count * 46 > cdSize) fail(`${count} entries cannot fit a ${cdSize}-byte central directory`);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== CDIR_SIG) fail(`bad central directory record ${i} at ${p}`);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let csize = u32(p + 20);
    let usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localOff = u32(p + 42);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`central directory record ${i} overruns the directory`);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information (id 1): the 0xffffffff fields, in order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = u16(e);
      const sz = u16(e + 2);
      if (e + 4 + sz > eEnd) fail(`entry "${name}": extra field overruns its record`);
      if (id === 1) {
        let q = e + 4;
        const take = (what: string): number => {
          if (q + 8 > e + 4 + sz) fail(`entry "${name}": ZIP64 field ${what} missing`);
          const v = u64(q, `entry "${name}" ${what}`);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take("size");
        if (csize === 0xffffffff) csize = take("compressed size");
        if (localOff === 0xffffffff) localOff = take("offset");
      }
      e += 4 + sz;
    }
    if (method !== 0) {
      fail(
        `entry "${name}" uses compression method ${method}, expected 0 (stored, as torch.save writes)`,
      );
    }
    if (csize !== usize) {
      fail(`entry "${name}" is stored but its sizes differ (${csize} vs ${usize})`);
    }
    if (localOff + 30 > len || u32(localOff) !== LOCAL_SIG) {
      fail(`entry "${name}": no local header at ${localOff}`);
    }
    const dataOffset = localOff + 30 + u16(localOff + 26) + u16(localOff + 28);
    if (dataOffset + usize > len) {
      fail(
        `entry "${name}" data [${dataOffset}, ${
          dataOffset + usize
        }) exceeds the file size ${len} (truncated?)`,
      );
    }
    if (entries.has(name)) fail(`entry "${name}" appears twice`);
    entries.set(name, { name, size: usize, crc32: crc, dataOffset });
    p = next;
  }
  const checked = new Set<string>();
  return {
    entries,
    read(name: string): Uint8Array {
      const ent = entries.get(name);
      if (!ent) fail(`no entry "${name}"`);
      const data = bytes.subarray(ent!.dataOffset, ent!.dataOffset + ent!.size);
      if (!checked.has(name)) {
        const got = crc32(data);
        if (got !== ent!.crc32) {
          fail(
            `entry "${name}" has CRC-32 ${hex(got)}, expected ${hex(ent!.crc32)} (corrupt file)`,
          );
        }
        checked.add(name);
      }
      return data;
    },
  };
}

function hex(v: number): string {
  return v.toString(16).padStart(8, "0");
}
