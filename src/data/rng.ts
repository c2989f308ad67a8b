/**
 * Seeded pseudo-random numbers for shuffling and augmentation. Every stream is derived from a
 * tuple of integers (seed, epoch, sample index, ...) so results do not depend on which thread or
 * in which order samples are processed.
 *
 * @module
 */

/** Mixes 32-bit integers into one 32-bit hash (murmur3's finaliser over a running state). */
export function hashInts(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    // Split into two 32-bit halves so seeds up to 2^53 are mixed fully.
    const lo = x >>> 0;
    const hi = Math.floor(x / 4294967296) >>> 0;
    for (const v of [lo, hi]) {
      let k = Math.imul(v, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A small, fast, seeded generator (mulberry32). */
export class Rng {
  #a: number;

  /** Creates a generator from a 32-bit state. */
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** Creates a generator whose stream is a function of the given integers only. */
  static from(...xs: number[]): Rng {
    return new Rng(hashInts(...xs));
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(this.#a ^ (this.#a >>> 15), 1 | this.#a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi) (like `torch.randint(lo, hi)`); `hi > lo`. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** A seeded Fisher–Yates permutation of `0..n-1`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
