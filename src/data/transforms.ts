/**
 * Image transforms with torchvision 0.14 semantics, on float HWC images. All randomness comes
 * from a seeded {@link Rng} passed in.
 *
 * NOTE: unlike torchvision on PIL images, resizing is torch's bilinear interpolation
 * (`align_corners=False`) on float pixels without antialiasing — torchvision's tensor path with
 * `antialias=False`. Downscaling by more than 2× therefore aliases.
 *
 * @module
 */

import type { AugmentConfig } from "./config.ts";
import type { RawImage } from "./image.ts";
import type { Rng } from "./rng.ts";

/** A float image in height × width × channels order. */
export interface FloatImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels. */
  channels: number;
  /** `height * width * channels` values, HWC. */
  data: Float32Array;
}

/** A crop box: top row, left column, height, width (torchvision's `i, j, h, w`). */
export interface CropBox {
  /** Top row. */
  top: number;
  /** Left column. */
  left: number;
  /** Height. */
  height: number;
  /** Width. */
  width: number;
}

/** Python's `round()` (half to even), which torchvision's crop arithmetic uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ToTensor's scaling: 8-bit pixels to floats in [0, 1]. */
export function toFloat(img: RawImage): FloatImage {
  const data = new Float32Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i] / 255;
  return { width: img.width, height: img.height, channels: img.channels, data };
}

/** Crops a box; pixels outside the image are 0 (torchvision pads with 0 there). */
export function crop(img: FloatImage, box: CropBox): FloatImage {
  const { width: W, height: H, channels: C } = img;
  const out = new Float32Array(box.height * box.width * C);
  for (let y = 0; y < box.height; y++) {
    const sy = y + box.top;
    if (sy < 0 || sy >= H) continue;
    const x0 = Math.max(0, -box.left);
    const x1 = Math.min(box.width, W - box.left);
    if (x1 <= x0) continue;
    const src = (sy * W + box.left + x0) * C;
    out.set(img.data.subarray(src, src + (x1 - x0) * C), (y * box.width + x0) * C);
  }
  return { width: box.width, height: box.height, channels: C, data: out };
}

/** One axis of torch's bilinear `align_corners=False` sampling: index pairs and weights. */
function axisTable(inSize: number, outSize: number): {
  i0: Int32Array;
  i1: Int32Array;
  l1: Float32Array;
} {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(scale * (d + 0.5) - 0.5, 0);
    const a = Math.min(Math.floor(src), inSize - 1);
    i0[d] = a;
    i1[d] = a < inSize - 1 ? a + 1 : a;
    l1[d] = src - a;
  }
  return { i0, i1, l1 };
}

/**
 * Bilinear resize to `height × width` as `torch.nn.functional.interpolate(mode="bilinear",
 * align_corners=False, antialias=False)`.
 */
export function resize(img: FloatImage, size: { height: number; width: number }): FloatImage {
  const { width: W, height: H, channels: C, data } = img;
  if (size.height === H && size.width === W) return img;
  const ty = axisTable(H, size.height);
  const tx = axisTable(W, size.width);
  const out = new Float32Array(size.height * size.width * C);
  for (let y = 0; y < size.height; y++) {
    const r0 = ty.i0[y] * W;
    const r1 = ty.i1[y] * W;
    const ly = ty.l1[y];
    const hy = 1 - ly;
    for (let x = 0; x < size.width; x++) {
      const a = tx.i0[x];
      const b = tx.i1[x];
      const lx = tx.l1[x];
      const hx = 1 - lx;
      const o = (y * size.width + x) * C;
      for (let c = 0; c < C; c++) {
        out[o + c] = hy * (hx * data[(r0 + a) * C + c] + lx * data[(r0 + b) * C + c]) +
          ly * (hx * data[(r1 + a) * C + c] + lx * data[(r1 + b) * C + c]);
      }
    }
  }
  return { width: size.width, height: size.height, channels: C, data: out };
}

/**
 * torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer one
 * `int(size * long / short)`.
 */
export function resizeShorter(img: FloatImage, size: number): FloatImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.floor((size * long) / short);
  return w <= h
    ? resize(img, { width: size, height: newLong })
    : resize(img, { width: newLong, height: size });
}

/** torchvision `CenterCrop(size)`, padding with 0 when the image is smaller. */
export function centerCropBox(
  imgSize: { width: number; height: number },
  size: number,
): CropBox {
  const { width: w, height: h } = imgSize;
  // torchvision pads (left = (size − w) // 2) first, then crops round((padded − size) / 2).
  const top = h < size ? -Math.floor((size - h) / 2) : roundHalfEven((h - size) / 2);
  const left = w < size ? -Math.floor((size - w) / 2) : roundHalfEven((w - size) / 2);
  return { top, left, height: size, width: size };
}

/** `RandomResizedCrop.get_params`: 10 attempts, then the central-crop fallback. */
export function randomResizedCropBox(
  imgSize: { width: number; height: number },
  opts: { scale: [number, number]; ratio: [number, number] },
  rng: Rng,
): CropBox {
  const { width, height } = imgSize;
  const area = width * height;
  const logLo = Math.log(opts.ratio[0]);
  const logHi = Math.log(opts.ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(opts.scale[0], opts.scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  const rMin = Math.min(...opts.ratio);
  const rMax = Math.max(...opts.ratio);
  let w: number;
  let h: number;
  if (inRatio < rMin) {
    w = width;
    h = roundHalfEven(w / rMin);
  } else if (inRatio > rMax) {
    h = height;
    w = roundHalfEven(h * rMax);
  } else {
    w = width;
    h = height;
  }
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** `RandomCrop(size, padding)`: the box within the image padded by `padding` on every side. */
export function randomCropBox(
  imgSize: { width: number; height: number },
  opts: { size: number; padding: number },
  rng: Rng,
): CropBox {
  const h = imgSize.height + 2 * opts.padding;
  const w = imgSize.width + 2 * opts.padding;
  const th = opts.size;
  const tw = opts.size;
  if (h < th || w < tw) {
    throw new RangeError(
      `RandomCrop: size ${th} larger than the padded image ${h}x${w}`,
    );
  }
  if (h === th && w === tw) return { top: -opts.padding, left: -opts.padding, height: h, width: w };
  const top = rng.int(0, h - th + 1) - opts.padding;
  const left = rng.int(0, w - tw + 1) - opts.padding;
  return { top, left, height: th, width: tw };
}

/** Mirrors left–right. */
export function hflip(img: FloatImage): FloatImage {
  const { width: W, height: H, channels: C, data } = img;
  const out = new Float32Array(data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * C;
      const d = (y * W + (W - 1 - x)) * C;
      for (let c = 0; c < C; c++) out[d + c] = data[s + c];
    }
  }
  return { width: W, height: H, channels: C, data: out };
}

/**
 * Normalize((x − mean) / std) and HWC → CHW, written into `out` at `offset`.
 * `mean`/`std` have one value per channel.
 */
export function normalizeInto(
  img: FloatImage,
  norm: { mean: ArrayLike<number>; std: ArrayLike<number> },
  out: Float32Array,
  offset: number,
): void {
  const { width: W, height: H, channels: C, data } = img;
  const hw = W * H;
  for (let c = 0; c < C; c++) {
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    const base = offset + c * hw;
    for (let i = 0; i < hw; i++) out[base + i] = (data[i * C + c] - m) * inv;
  }
}

/** What the pipelines need from the config. */
export interface PipelineSpec {
  /** Output side. */
  imageSize: number;
  /** Output channels. */
  channels: number;
  /** Augmentation settings. */
  augment: AugmentConfig;
}

/**
 * Mean and std per output channel. A 3-value mean/std with 1 channel is averaged
 * (NOTE: torchvision would fail; this lets the ImageNet defaults serve grayscale data).
 */
export function channelNorm(spec: PipelineSpec): { mean: Float32Array; std: Float32Array } {
  const pick = (v: number[], name: string): Float32Array => {
    if (v.length === spec.channels) return Float32Array.from(v);
    if (v.length === 1) return new Float32Array(spec.channels).fill(v[0]);
    if (spec.channels === 1) {
      return Float32Array.of(v.reduce((a, b) => a + b, 0) / v.length);
    }
    throw new RangeError(
      `augment.${name}: expected ${spec.channels} values (one per channel), got ${v.length}`,
    );
  };
  return { mean: pick(spec.augment.mean, "mean"), std: pick(spec.augment.std, "std") };
}

/**
 * `resize(crop(toFloat(raw), box), size)` in one pass over the 8-bit source (the reference
 * composition is what the tests check against torchvision; this fused form avoids converting and
 * copying the whole source image). Pixels of `box` outside the image are 0.
 */
export function resampleU8(
  raw: RawImage,
  box: CropBox,
  size: { height: number; width: number },
): FloatImage {
  const { width: W, height: H, channels: C, data } = raw;
  const out = new Float32Array(size.height * size.width * C);
  const k = 1 / 255;
  const inside = box.top >= 0 && box.left >= 0 && box.top + box.height <= H &&
    box.left + box.width <= W;
  if (size.height === box.height && size.width === box.width) {
    for (let y = 0; y < box.height; y++) {
      const sy = y + box.top;
      if (sy < 0 || sy >= H) continue;
      for (let x = 0; x < box.width; x++) {
        const sx = x + box.left;
        if (sx < 0 || sx >= W) continue;
        const s = (sy * W + sx) * C;
        const d = (y * box.width + x) * C;
        for (let c = 0; c < C; c++) out[d + c] = data[s + c] * k;
      }
    }
    return { width: size.width, height: size.height, channels: C, data: out };
  }
  const ty = axisTable(box.height, size.height);
  const tx = axisTable(box.width, size.width);
  const px = (y: number, x: number, c: number): number => {
    const sy = y + box.top;
    const sx = x + box.left;
    return sy < 0 || sy >= H || sx < 0 || sx >= W ? 0 : data[(sy * W + sx) * C + c];
  };
  for (let y = 0; y < size.height; y++) {
    const ya = ty.i0[y];
    const yb = ty.i1[y];
    const ly = ty.l1[y];
    const hy = 1 - ly;
    const r0 = (ya + box.top) * W + box.left;
    const r1 = (yb + box.top) * W + box.left;
    for (let x = 0; x < size.width; x++) {
      const xa = tx.i0[x];
      const xb = tx.i1[x];
      const lx = tx.l1[x];
      const hx = 1 - lx;
      const o = (y * size.width + x) * C;
      if (inside) {
        for (let c = 0; c < C; c++) {
          out[o + c] = (hy * (hx * data[(r0 + xa) * C + c] + lx * data[(r0 + xb) * C + c]) +
            ly * (hx * data[(r1 + xa) * C + c] + lx * data[(r1 + xb) * C + c])) * k;
        }
      } else {
        for (let c = 0; c < C; c++) {
          out[o + c] = (hy * (hx * px(ya, xa, c) + lx * px(ya, xb, c)) +
            ly * (hx * px(yb, xa, c) + lx * px(yb, xb, c))) * k;
        }
      }
    }
  }
  return { width: size.width, height: size.height, channels: C, data: out };
}

/**
 * `normalize(hflip?(crop(img, box)))` written as CHW into `out` at `offset`, in one pass
 * (`box` null = the whole image; pixels outside the image are 0 before normalisation).
 */
export function writeCHW(
  img: FloatImage,
  opts: { box: CropBox | null; flip: boolean; mean: ArrayLike<number>; std: ArrayLike<number> },
  out: Float32Array,
  offset: number,
): void {
  const { width: W, height: H, channels: C, data } = img;
  const box = opts.box ?? { top: 0, left: 0, height: H, width: W };
  const hw = box.height * box.width;
  for (let c = 0; c < C; c++) {
    const m = opts.mean[c];
    const inv = 1 / opts.std[c];
    const base = offset + c * hw;
    for (let y = 0; y < box.height; y++) {
      const sy = y + box.top;
      const row = base + y * box.width;
      for (let x = 0; x < box.width; x++) {
        const sx = (opts.flip ? box.width - 1 - x : x) + box.left;
        const v = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0 : data[(sy * W + sx) * C + c];
        out[row + x] = (v - m) * inv;
      }
    }
  }
}

/**
 * The train pipeline: RandomResizedCrop(imageSize) when set, else Resize((imageSize,
 * imageSize)) when the size differs, then RandomCrop(imageSize, padding) when set; then
 * RandomHorizontalFlip(hflip), ToTensor, Normalize. Writes CHW floats into `out` at `offset`.
 * Random draws, in order: the crop box, then the flip.
 */
export function trainTransform(
  raw: RawImage,
  spec: PipelineSpec,
  rng: Rng,
  out: Float32Array,
  offset: number,
): void {
  const a = spec.augment;
  const S = spec.imageSize;
  const size = { height: S, width: S };
  let img: FloatImage;
  let box: CropBox | null = null;
  if (a.randomResizedCrop) {
    img = resampleU8(raw, randomResizedCropBox(raw, a.randomResizedCrop, rng), size);
  } else {
    img = resampleU8(raw, { top: 0, left: 0, height: raw.height, width: raw.width }, size);
    if (a.randomCrop) box = randomCropBox(img, { size: S, padding: a.randomCrop.padding }, rng);
  }
  const flip = a.hflip > 0 && rng.next() < a.hflip;
  writeCHW(img, { box, flip, ...channelNorm(spec) }, out, offset);
}

/**
 * The eval pipeline: Resize(resize) (shorter side) then CenterCrop(imageSize) when
 * `augment.resize` is set, else Resize((imageSize, imageSize)); then ToTensor, Normalize.
 */
export function evalTransform(
  raw: RawImage,
  spec: PipelineSpec,
  out: Float32Array,
  offset: number,
): void {
  const S = spec.imageSize;
  const full = { top: 0, left: 0, height: raw.height, width: raw.width };
  let img: FloatImage;
  let box: CropBox | null = null;
  if (spec.augment.resize !== null) {
    const r = spec.augment.resize;
    const { width: w, height: h } = raw;
    const newLong = Math.floor((r * Math.max(w, h)) / Math.min(w, h));
    img = resampleU8(
      raw,
      full,
      w <= h ? { width: r, height: newLong } : { width: newLong, height: r },
    );
    box = centerCropBox(img, S);
  } else {
    img = resampleU8(raw, full, { height: S, width: S });
  }
  writeCHW(img, { box, flip: false, ...channelNorm(spec) }, out, offset);
}
