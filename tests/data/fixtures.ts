/** Test fixtures for the data tests: image files written with the jsquash encoders. */
import { encode as encodePng } from "@jsquash/png";
import { encode as encodeJpeg } from "@jsquash/jpeg";

/** RGBA pixels of a w×h image with pixel (x, y) = f(x, y) as [r, g, b]. */
export function rgba(w: number, h: number, f: (x: number, y: number) => number[]): ImageData {
  const d = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = f(x, y);
      d.set([r, g, b, 255], (y * w + x) * 4);
    }
  }
  return new ImageData(d, w, h);
}

/** Writes an RGB image as PNG or JPEG (by the extension), creating parent folders. */
export async function writeImage(path: string, img: ImageData): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const bytes = path.endsWith(".png")
    ? await encodePng(img)
    : await encodeJpeg(img, { quality: 95 });
  await Deno.writeFile(path, new Uint8Array(bytes));
}

/** Writes a grayscale JPEG (MozJPEG color_space 1 = GRAYSCALE). */
export async function writeGrayJpeg(path: string, img: ImageData): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const bytes = await encodeJpeg(img, { quality: 95, color_space: 1 });
  await Deno.writeFile(path, new Uint8Array(bytes));
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Encodes an 8-bit grayscale PNG (colour type 0), which the RGBA encoder cannot write. */
export async function grayPng(
  w: number,
  h: number,
  px: (x: number, y: number) => number,
): Promise<Uint8Array> {
  const raw = new Uint8Array(h * (w + 1));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = px(x, y);
  }
  const z = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"));
  const idat = new Uint8Array(await new Response(z).arrayBuffer());
  const chunk = (type: string, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs `fn` with a fresh temp folder, removed afterwards. */
export async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ct_data_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Collects one epoch of host batches. */
export async function collect(
  it: AsyncIterable<{ images: Float32Array; labels: Int32Array }>,
): Promise<{ images: Float32Array; labels: Int32Array }[]> {
  const out = [];
  for await (const b of it) out.push({ images: b.images, labels: b.labels });
  return out;
}
