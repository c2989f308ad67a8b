/**
 * Seeded parameter initialisation with torchvision's distributions: a small deterministic
 * PRNG (`Rng`) and the fills the layers use (kaiming normal with fan_out for convolutions,
 * U(±1/√fan_in) for PyTorch's default Linear/Conv2d init).
 *
 * NOTE: unlike PyTorch the random stream differs (xoshiro128** with Box-Muller instead of
 * PyTorch's Mersenne Twister/Philox), so a given seed gives different numbers than
 * `torch.manual_seed(seed)`; only the distributions match. To reproduce a PyTorch model
 * exactly, load its weights (see `loadSafetensors`).
 *
 * @module
 */

/** A seeded pseudo-random generator (xoshiro128**, seeded through splitmix32). */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  /** Creates a generator; equal seeds give equal streams. */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) {
      throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    }
    let x = (Math.trunc(seed) >>> 0) ^ Math.trunc(seed / 4294967296);
    for (let i = 0; i < 4; i++) {
      // splitmix32: decorrelates nearby seeds and never yields the all-zero state.
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** A double uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A double uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** A normal sample N(mean, std²) (Box-Muller; the second value of each pair is cached). */
  normal(mean = 0, std = 1): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** `n` samples of U[low, high). */
  uniformArray(n: number, low: number, high: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(low, high);
    return out;
  }

  /**
   * `n` samples of N(mean, std²): the same numbers as `n` calls of `normal(mean, std)` (the
   * cached second value included, on entry and on exit), with the generator's state kept in
   * locals. Model construction draws every weight here (25 M for ResNet-50), and the
   * per-sample calls and state array accesses cost as much as the logarithm, square root,
   * sine and cosine themselves.
   */
  normalArray(n: number, mean: number, std: number): Float32Array {
    const out = new Float32Array(n);
    let i = 0;
    if (n > 0 && this.#spare !== null) {
      out[i++] = mean + std * this.#spare;
      this.#spare = null;
    }
    const st = this.#s;
    // xoshiro128** as in `nextU32`, on int32 locals (the same 32 bits).
    let s0 = st[0] | 0, s1 = st[1] | 0, s2 = st[2] | 0, s3 = st[3] | 0;
    while (i < n) {
      // `next()` twice: u ≠ 0 (redrawn while 0), then v; each is 27 + 26 random bits.
      let u = 0;
      let v = 0;
      for (let k = 0; k < 2; k++) {
        // Two 32-bit draws: the top 27 bits of the first and 26 of the second.
        let w = 0;
        for (let j = 0; j < 2; j++) {
          const x = Math.imul(s1, 5);
          const bits = Math.imul((x << 7) | (x >>> 25), 9);
          const t = s1 << 9;
          s2 ^= s0;
          s3 ^= s1;
          s1 ^= s2;
          s0 ^= s3;
          s2 ^= t;
          s3 = (s3 << 11) | (s3 >>> 21);
          w = j === 0 ? (bits >>> 5) * 67108864 : (w + (bits >>> 6)) / 9007199254740992;
        }
        if (k === 0) {
          if (w === 0) k--; // draw u again
          else u = w;
        } else v = w;
      }
      const r = Math.sqrt(-2 * Math.log(u));
      const z = r * Math.sin(2 * Math.PI * v);
      out[i++] = mean + std * r * Math.cos(2 * Math.PI * v);
      if (i < n) out[i++] = mean + std * z;
      else this.#spare = z;
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Where a layer gets its random numbers: a seed (a fresh `Rng`) or a shared `Rng`. */
export interface InitOptions {
  /** Seed of a fresh generator (default 0); ignored when `rng` is given. */
  seed?: number;
  /** A generator shared across layers (a model passes one to all its layers). */
  rng?: Rng;
}

/** The generator described by `opts`. */
export function rngFrom(opts: InitOptions = {}): Rng {
  return opts.rng ?? new Rng(opts.seed ?? 0);
}

/** PyTorch's fan_in / fan_out of a weight `[out, in, ...kernel]`. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new RangeError(`fans: weight needs at least 2 dims, got [${shape.join(", ")}]`);
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/**
 * `kaiming_normal_(w, mode="fan_out", nonlinearity="relu")`, torchvision's conv init:
 * N(0, 2 / fan_out) with fan_out = C_out·kH·kW.
 */
export function kaimingNormalFanOut(shape: readonly number[], rng: Rng): Float32Array {
  const { fanOut } = fans(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  return rng.normalArray(n, 0, Math.sqrt(2 / fanOut));
}

/**
 * PyTorch's default Linear/Conv weight init, `kaiming_uniform_(a=√5)`, which is
 * U(±1/√fan_in); the bias uses the same bound.
 */
export function defaultUniform(shape: readonly number[], fanIn: number, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return rng.uniformArray(n, -bound, bound);
}
