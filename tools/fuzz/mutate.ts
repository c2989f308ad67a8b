/**
 * Seeded mutations of valid seed files: bit flips, interesting bytes, truncations, grown and
 * shrunk length fields, duplicated or deleted ranges, and splices of two seeds. Every mutation is
 * a function of the Rng state only, so `(seed, iteration)` reproduces an input exactly.
 *
 * @module
 */

import type { Rng } from "../../src/data/rng.ts";

/** A length field of a seed: where it is and how it is stored. */
export interface LengthField {
  /** Byte offset. */
  offset: number;
  /** 2, 4 or 8 bytes. */
  width: 2 | 4 | 8;
  /** Little-endian (safetensors) or big-endian (PNG, JPEG, IDX). */
  little: boolean;
}

/** A seed file and the length fields a mutation may grow or shrink. */
export interface Seed {
  /** A short name (shown when an input fails). */
  name: string;
  /** The valid bytes. */
  bytes: Uint8Array;
  /** Known length fields (sizes, counts, offsets); the mutator also guesses others. */
  fields: LengthField[];
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/** Mutation kinds, in the order the mutator draws from. */
export const MUTATIONS = [
  "bitflip",
  "byte",
  "truncate",
  "length",
  "duplicate",
  "delete",
  "splice",
] as const;

/** One mutation kind. */
export type Mutation = typeof MUTATIONS[number];

function readField(b: Uint8Array, f: LengthField): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (f.width === 2) return BigInt(dv.getUint16(f.offset, f.little));
  if (f.width === 4) return BigInt(dv.getUint32(f.offset, f.little));
  return dv.getBigUint64(f.offset, f.little);
}

function writeField(b: Uint8Array, f: LengthField, v: bigint): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const bits = BigInt(f.width * 8);
  const x = BigInt.asUintN(Number(bits), v);
  if (f.width === 2) dv.setUint16(f.offset, Number(x), f.little);
  else if (f.width === 4) dv.setUint32(f.offset, Number(x), f.little);
  else dv.setBigUint64(f.offset, x, f.little);
}

/** A new value for a length field: ±small, ×2, ÷2, zero, all ones, or just past the file. */
function newLength(old: bigint, fileLen: number, width: number, rng: Rng): bigint {
  const max = (1n << BigInt(width * 8)) - 1n;
  switch (rng.int(0, 8)) {
    case 0:
      return old + BigInt(rng.int(1, 17));
    case 1:
      return old - BigInt(rng.int(1, 17));
    case 2:
      return old * 2n;
    case 3:
      return old / 2n;
    case 4:
      return 0n;
    case 5:
      return max;
    case 6:
      return BigInt(fileLen + rng.int(0, 64));
    default:
      return max >> BigInt(rng.int(1, width * 8));
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Applies one to three mutations to a copy of `seed` (one of `seeds`, which splices draw from).
 * Returns the bytes and the names of the mutations applied.
 */
export function mutate(
  seed: Seed,
  seeds: readonly Seed[],
  rng: Rng,
): { bytes: Uint8Array; applied: Mutation[] } {
  let b: Uint8Array = seed.bytes.slice();
  const applied: Mutation[] = [];
  const rounds = 1 + (rng.next() < 0.3 ? rng.int(1, 3) : 0);
  for (let r = 0; r < rounds; r++) {
    const kind = MUTATIONS[rng.int(0, MUTATIONS.length)];
    applied.push(kind);
    // Headers matter most: half the positions land in the first 64 bytes.
    const pos = (): number =>
      b.length === 0
        ? 0
        : rng.next() < 0.5
        ? rng.int(0, Math.min(64, b.length))
        : rng.int(0, b.length);
    switch (kind) {
      case "bitflip": {
        const n = 1 + rng.int(0, 8);
        for (let i = 0; i < n && b.length; i++) b[pos()] ^= 1 << rng.int(0, 8);
        break;
      }
      case "byte":
        if (b.length) b[pos()] = INTERESTING[rng.int(0, INTERESTING.length)];
        break;
      case "truncate":
        b = b.slice(0, rng.int(0, Math.max(1, b.length)));
        break;
      case "length": {
        const known = seed.fields.filter((f) => f.offset + f.width <= b.length);
        let f: LengthField;
        if (known.length && rng.next() < 0.8) f = known[rng.int(0, known.length)];
        else {
          const width = ([2, 4, 8] as const)[rng.int(0, 3)];
          if (b.length < width) break;
          f = { offset: rng.int(0, b.length - width + 1), width, little: rng.next() < 0.5 };
        }
        writeField(b, f, newLength(readField(b, f), b.length, f.width, rng));
        break;
      }
      case "duplicate": {
        if (!b.length) break;
        const at = pos();
        const len = rng.int(1, Math.min(256, b.length - at) + 1);
        b = concat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
        break;
      }
      case "delete": {
        if (!b.length) break;
        const at = pos();
        const len = rng.int(1, Math.min(256, b.length - at) + 1);
        b = concat(b.subarray(0, at), b.subarray(at + len));
        break;
      }
      case "splice": {
        const other = seeds[rng.int(0, seeds.length)].bytes;
        const cut = rng.int(0, b.length + 1);
        const from = rng.int(0, other.length + 1);
        b = concat(b.subarray(0, cut), other.subarray(from));
        break;
      }
    }
  }
  return { bytes: b, applied };
}
