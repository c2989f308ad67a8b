/**
 * The built-in procedural dataset: coloured shapes on noisy, coloured backgrounds. No files; every
 * image is a pure function of (seed, index). Shape, colours, position, scale, rotation and
 * noise are random, and foreground and background colours are drawn independently of the class,
 * so the class is the shape alone: colour statistics do not give it away.
 *
 * @module
 */

import type { RawImage } from "./image.ts";
import { Rng } from "./rng.ts";

/** Names of the built-in classes, in label order (the first `numClasses` are used). */
export const BUILTIN_CLASSES: readonly string[] = [
  "disk",
  "plus",
  "stripes",
  "triangle",
  "checker",
  "square",
  "ring",
  "frame",
  "cross",
  "two-dots",
];

/** Label of built-in image `index`: classes cycle, so every split is balanced. */
export function builtinLabel(index: number, numClasses: number): number {
  return index % numClasses;
}

/** Whether local point (u, v) in [-1, 1]² lies inside the shape of class `k`. */
function inside(k: number, u: number, v: number): boolean {
  const au = Math.abs(u);
  const av = Math.abs(v);
  const r2 = u * u + v * v;
  switch (k) {
    case 0: // disk
      return r2 < 0.81;
    case 1: // plus
      return (au < 0.25 && av < 0.95) || (av < 0.25 && au < 0.95);
    case 2: // horizontal stripes inside a disk
      return r2 < 0.9 && Math.floor((v + 1) * 3) % 2 === 0;
    case 3: // triangle, apex up
      return v > -0.7 && v < 0.85 && au < (0.85 - v) * 0.62;
    case 4: // checkerboard inside a square
      return au < 0.9 && av < 0.9 && (Math.floor((u + 1) * 2) + Math.floor((v + 1) * 2)) % 2 === 0;
    case 5: // square
      return au < 0.75 && av < 0.75;
    case 6: // ring
      return r2 < 0.9 && r2 > 0.3;
    case 7: // hollow square
      return Math.max(au, av) < 0.85 && Math.max(au, av) > 0.5;
    case 8: // diagonal cross
      return au < 0.95 && av < 0.95 && (Math.abs(u - v) < 0.35 || Math.abs(u + v) < 0.35);
    default: // two dots
      return (u - 0.45) ** 2 + v * v < 0.16 || (u + 0.45) ** 2 + v * v < 0.16;
  }
}

/** 2^16 standard normals, generated once: per-pixel noise is read from it at a random offset. */
let noiseTable: Float32Array | null = null;
function normals(): Float32Array {
  if (noiseTable === null) {
    const r = new Rng(0x5eed);
    noiseTable = new Float32Array(65536);
    for (let i = 0; i < noiseTable.length; i++) noiseTable[i] = r.normal();
  }
  return noiseTable;
}

function randomColour(rng: Rng): [number, number, number] {
  return [rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)];
}

/**
 * Renders built-in image `index` of class `builtinLabel(index, numClasses)`: `size × size`,
 * `channels` (1 or 3) channels. 2×2 supersampling smooths the edges.
 */
export function renderBuiltin(
  index: number,
  opts: { seed: number; numClasses: number; size: number; channels: number },
): RawImage {
  const { size: S, channels } = opts;
  const k = builtinLabel(index, opts.numClasses);
  const rng = Rng.from(opts.seed, 0xb17, index);
  const bg = randomColour(rng);
  let fg = randomColour(rng);
  // Enough contrast that the shape is visible (resampling does not depend on the class).
  for (
    let t = 0;
    t < 20 && Math.abs(fg[0] - bg[0]) + Math.abs(fg[1] - bg[1]) + Math.abs(fg[2] - bg[2]) < 250;
    t++
  ) {
    fg = randomColour(rng);
  }
  const bg2 = randomColour(rng); // background gradient end
  const gAngle = rng.uniform(0, 2 * Math.PI);
  const gx = Math.cos(gAngle);
  const gy = Math.sin(gAngle);
  const gStrength = rng.uniform(0, 0.3);
  const radius = S * rng.uniform(0.28, 0.4);
  const cx = S * rng.uniform(0.38, 0.62);
  const cy = S * rng.uniform(0.38, 0.62);
  const angle = rng.uniform(-0.3, 0.3);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const noise = rng.uniform(4, 16);
  const table = normals();
  let tap = rng.int(0, 65536);
  const stride = 2 * rng.int(0, 32768) + 1; // odd: visits every entry before repeating
  const out = new Uint8Array(S * S * channels);
  const px = new Float32Array(3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      let cover = 0;
      for (let sy = 0; sy < 2; sy++) {
        for (let sx = 0; sx < 2; sx++) {
          const dx = (x + 0.25 + 0.5 * sx - cx) / radius;
          const dy = (y + 0.25 + 0.5 * sy - cy) / radius;
          // Image y grows downwards; flip so "up" is up.
          const u = cos * dx + sin * dy;
          const v = -(-sin * dx + cos * dy);
          if (inside(k, u, v)) cover += 0.25;
        }
      }
      const g = gStrength * (0.5 + 0.5 * ((x / S - 0.5) * gx + (y / S - 0.5) * gy) * 1.4);
      for (let c = 0; c < 3; c++) {
        const b = bg[c] * (1 - g) + bg2[c] * g;
        px[c] = b * (1 - cover) + fg[c] * cover + noise * table[tap];
        tap = (tap + stride) & 65535;
      }
      const o = (y * S + x) * channels;
      if (channels === 1) {
        out[o] = clamp8(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]);
      } else {
        out[o] = clamp8(px[0]);
        out[o + 1] = clamp8(px[1]);
        out[o + 2] = clamp8(px[2]);
      }
    }
  }
  return { width: S, height: S, channels, data: out };
}

function clamp8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
