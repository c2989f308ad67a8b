import assert from "node:assert/strict";
import { assertClose, flat } from "../helpers.ts";
import {
  centerCropBox,
  crop,
  evalTransform,
  type FloatImage,
  hflip,
  normalizeInto,
  randomCropBox,
  randomResizedCropBox,
  resize,
  resizeShorter,
  roundHalfEven,
  toFloat,
  trainTransform,
} from "../../src/data/transforms.ts";
import { Rng } from "../../src/data/rng.ts";
import { DEFAULT_DATA_CONFIG } from "../../src/data/config.ts";
import type { RawImage } from "../../src/data/image.ts";

const golden = JSON.parse(
  Deno.readTextFileSync(new URL("./transforms_golden.json", import.meta.url)),
) as Record<string, unknown>;

/** 4×4, 1 channel, pixel (y, x) = 4y + x. */
const ramp = (): FloatImage => ({
  width: 4,
  height: 4,
  channels: 1,
  data: Float32Array.from({ length: 16 }, (_, i) => i),
});

Deno.test("transforms: hand-computed crop, flip, resize, normalize on a 4x4 image", () => {
  assert.deepEqual(
    Array.from(crop(ramp(), { top: 1, left: 1, height: 2, width: 2 }).data),
    [5, 6, 9, 10],
  );
  // Outside the image is zero padding.
  assert.deepEqual(
    Array.from(crop(ramp(), { top: -1, left: -1, height: 3, width: 3 }).data),
    [0, 0, 0, 0, 0, 1, 0, 4, 5],
  );
  assert.deepEqual(Array.from(hflip(ramp()).data.subarray(0, 8)), [3, 2, 1, 0, 7, 6, 5, 4]);
  // 4 → 2: each output is the mean of a 2×2 block (source 0.5 and 2.5).
  assert.deepEqual(Array.from(resize(ramp(), { height: 2, width: 2 }).data), [
    2.5,
    4.5,
    10.5,
    12.5,
  ]);
  // 2 → 4 upsampling: sources −0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge).
  const small: FloatImage = { width: 2, height: 2, channels: 1, data: Float32Array.of(0, 1, 2, 3) };
  const r = [0, 0.25, 0.75, 1];
  const want = r.flatMap((ry) => r.map((rx) => 2 * ry + rx));
  assertClose(resize(small, { height: 4, width: 4 }).data, want);
  const out = new Float32Array(16);
  normalizeInto(ramp(), { mean: [2], std: [4] }, out, 0);
  assertClose(out, Array.from({ length: 16 }, (_, i) => (i - 2) / 4));
});

Deno.test("transforms: python rounding and crop boxes", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4].map(roundHalfEven), [0, 2, 2, 4, 2]);
  assert.deepEqual(centerCropBox({ width: 5, height: 5 }, 2), {
    top: 2,
    left: 2,
    height: 2,
    width: 2,
  });
  assert.deepEqual(centerCropBox({ width: 6, height: 4 }, 3), {
    top: 0,
    left: 2,
    height: 3,
    width: 3,
  });
  assert.deepEqual(centerCropBox({ width: 2, height: 2 }, 4), {
    top: -1,
    left: -1,
    height: 4,
    width: 4,
  });
  // Every attempt too large (aspect ≥ 2 on a square at full scale) → the fallback box.
  const fb = randomResizedCropBox(
    { width: 4, height: 4 },
    { scale: [1, 1], ratio: [2, 3] },
    new Rng(1),
  );
  assert.deepEqual(fb, { top: 1, left: 0, height: 2, width: 4 });
  const wide = randomResizedCropBox(
    { width: 8, height: 2 },
    { scale: [1, 1], ratio: [0.5, 1] },
    new Rng(1),
  );
  assert.deepEqual(wide, { top: 0, left: 3, height: 2, width: 2 });
  for (let s = 0; s < 50; s++) {
    const b = randomResizedCropBox(
      { width: 10, height: 8 },
      { scale: [0.25, 0.25], ratio: [1, 1] },
      new Rng(s),
    );
    assert.equal(b.width, 4); // round(sqrt(80 · 0.25)) = round(4.47)
    assert.equal(b.height, 4);
    assert.ok(b.top >= 0 && b.top <= 4 && b.left >= 0 && b.left <= 6, JSON.stringify(b));
    const c = randomCropBox({ width: 4, height: 4 }, { size: 4, padding: 1 }, new Rng(s));
    assert.ok(c.top >= -1 && c.top <= 1 && c.left >= -1 && c.left <= 1, JSON.stringify(c));
  }
  const rs = resizeShorter({ width: 8, height: 4, channels: 1, data: new Float32Array(32) }, 2);
  assert.deepEqual([rs.height, rs.width], [2, 4]);
});

Deno.test("transforms: match torchvision 0.14 tensor ops (antialias=False)", () => {
  const img: FloatImage = {
    width: 9,
    height: 7,
    channels: 3,
    data: Float32Array.from(flat(golden.img)),
  };
  const tol = { rtol: 1e-5, atol: 1e-6 };
  assertClose(resize(img, { height: 5, width: 4 }).data, golden.resize_5x4, {
    ...tol,
    msg: "resize 5x4",
  });
  assertClose(resize(img, { height: 11, width: 13 }).data, golden.resize_11x13, {
    ...tol,
    msg: "resize 11x13",
  });
  assertClose(resizeShorter(img, 4).data, golden.resize_short_4, { ...tol, msg: "resize short" });
  assertClose(crop(img, centerCropBox(img, 4)).data, golden.center_crop_4, {
    msg: "center crop 4",
  });
  assertClose(crop(img, centerCropBox(img, 10)).data, golden.center_crop_10, {
    msg: "center crop 10",
  });
  const rc = resize(crop(img, { top: 1, left: 2, height: 5, width: 6 }), { height: 4, width: 4 });
  assertClose(rc.data, golden.resized_crop, { ...tol, msg: "resized crop" });
  // Box (1, 3) in the image padded by 2 = (−1, 1) in image coordinates.
  assertClose(crop(img, { top: -1, left: 1, height: 6, width: 6 }).data, golden.pad_crop, {
    msg: "pad crop",
  });
  assertClose(hflip(img).data, golden.hflip, { msg: "hflip" });
  const out = new Float32Array(3 * 7 * 9);
  normalizeInto(img, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, out, 0);
  assertClose(out, golden.normalize_chw, { ...tol, msg: "normalize" });
});

Deno.test("transforms: train and eval pipelines", () => {
  const raw: RawImage = {
    width: 4,
    height: 4,
    channels: 1,
    data: Uint8Array.from({ length: 16 }, (_, i) => i * 10),
  };
  const base = { imageSize: 4, channels: 1 };
  const norm = { mean: [0.5], std: [0.5] };
  // Always flip, no crop: flipped, /255, normalized.
  const out = new Float32Array(16);
  trainTransform(
    raw,
    {
      ...base,
      augment: { ...DEFAULT_DATA_CONFIG.augment, ...norm, randomCrop: null, hflip: 1 },
    },
    new Rng(3),
    out,
    0,
  );
  const want = Array.from({ length: 16 }, (_, i) => {
    const y = Math.floor(i / 4);
    const x = 3 - (i % 4);
    return ((y * 4 + x) * 10 / 255 - 0.5) / 0.5;
  });
  assertClose(out, want);
  // Eval: Resize(4) on 4×4 is identity, CenterCrop(2) takes the middle.
  const ev = new Float32Array(4);
  evalTransform(
    raw,
    { imageSize: 2, channels: 1, augment: { ...DEFAULT_DATA_CONFIG.augment, ...norm, resize: 4 } },
    ev,
    0,
  );
  assertClose(ev, [5, 6, 9, 10].map((v) => (v * 10 / 255 - 0.5) / 0.5));
  // Same rng seed → same random crop; the default config's 3-value mean averages for 1 channel.
  const a = new Float32Array(16);
  const b = new Float32Array(16);
  const spec = { ...base, augment: DEFAULT_DATA_CONFIG.augment };
  trainTransform(raw, spec, Rng.from(7, 1, 2), a, 0);
  trainTransform(raw, spec, Rng.from(7, 1, 2), b, 0);
  assert.deepEqual(a, b);
});

Deno.test("transforms: fused u8 pipelines equal the composed reference ops", () => {
  const rng = new Rng(42);
  const raw: RawImage = {
    width: 13,
    height: 9,
    channels: 3,
    data: Uint8Array.from({ length: 13 * 9 * 3 }, () => Math.floor(rng.next() * 256)),
  };
  const mean = [0.4, 0.5, 0.6];
  const std = [0.2, 0.25, 0.3];
  const reference = (img: FloatImage): number[] => {
    const o = new Float32Array(img.data.length);
    normalizeInto(img, { mean, std }, o, 0);
    return Array.from(o);
  };
  const aug = { ...DEFAULT_DATA_CONFIG.augment, mean, std };
  for (let s = 0; s < 20; s++) {
    // RandomResizedCrop(6) + flip: same draws (box, then flip) as the pipeline.
    const spec = {
      imageSize: 6,
      channels: 3,
      augment: {
        ...aug,
        randomResizedCrop: {
          scale: [0.2, 1] as [number, number],
          ratio: [0.5, 2] as [number, number],
        },
        hflip: 0.5,
      },
    };
    const got = new Float32Array(3 * 36);
    trainTransform(raw, spec, new Rng(s), got, 0);
    const r = new Rng(s);
    let img = resize(
      crop(toFloat(raw), randomResizedCropBox(raw, spec.augment.randomResizedCrop, r)),
      { height: 6, width: 6 },
    );
    if (r.next() < 0.5) img = hflip(img);
    assertClose(got, reference(img), { atol: 1e-5, msg: `rrc seed ${s}` });
    // Resize((8, 8)) + RandomCrop(8, padding 3) + flip.
    const spec2 = {
      imageSize: 8,
      channels: 3,
      augment: { ...aug, randomCrop: { padding: 3 }, hflip: 0.5 },
    };
    const got2 = new Float32Array(3 * 64);
    trainTransform(raw, spec2, new Rng(s), got2, 0);
    const r2 = new Rng(s);
    let img2 = resize(toFloat(raw), { height: 8, width: 8 });
    img2 = crop(img2, randomCropBox(img2, { size: 8, padding: 3 }, r2));
    if (r2.next() < 0.5) img2 = hflip(img2);
    assertClose(got2, reference(img2), { atol: 1e-5, msg: `random crop seed ${s}` });
  }
  // Eval: Resize(r) + CenterCrop(5), r below and above the crop size.
  for (const r of [4, 5, 7, 20]) {
    const got = new Float32Array(3 * 25);
    evalTransform(raw, { imageSize: 5, channels: 3, augment: { ...aug, resize: r } }, got, 0);
    const img = resizeShorter(toFloat(raw), r);
    assertClose(got, reference(crop(img, centerCropBox(img, 5))), {
      atol: 1e-5,
      msg: `eval resize ${r}`,
    });
  }
});
