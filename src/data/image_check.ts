/**
 * Structure checks of PNG and JPEG files, run before decoding: a file that is cut short, has a
 * damaged chunk or segment, or promises far more pixels than its data can hold is rejected here
 * with a reason a user can act on, instead of reaching a decoder that would fill in the missing
 * part, print a warning, or allocate for a picture that is not there.
 *
 * @module
 */

/** The width, height and (JPEG) component count of a checked image. */
export interface CheckedHeader {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** JPEG components (1 gray, 3 YCbCr, 4 CMYK/YCCK); PNGs leave it out. */
  components?: number;
}

/** The 8-byte PNG signature. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Deflate's best case is 1032:1 (258-byte matches at about 2 bits each), so raw image data
 * larger than this times the compressed bytes (plus slack for headers) cannot be genuine.
 */
export const MAX_DEFLATE_RATIO = 1032;

/**
 * Most pixels per file byte a JPEG may declare. Huffman-coded JPEGs spend at least one bit per
 * 8×8 block per scan (512 px/byte); arithmetic coding can beat that on flat images, hence the
 * margin.
 */
export const MAX_JPEG_PIXELS_PER_BYTE = 4096;

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
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const hex = (b: number): string => `0x${b.toString(16).padStart(2, "0")}`;

/** Bits per pixel of each valid PNG colour type and bit depth. */
function pngBitsPerPixel(colorType: number, depth: number): number | null {
  const channels: Record<number, [number, number[]]> = {
    0: [1, [1, 2, 4, 8, 16]],
    2: [3, [8, 16]],
    3: [1, [1, 2, 4, 8]],
    4: [2, [8, 16]],
    6: [4, [8, 16]],
  };
  const c = channels[colorType];
  if (!c || !c[1].includes(depth)) return null;
  return c[0] * depth;
}

/** Bytes of filtered scanlines (filter byte included) of a PNG image, interlaced or not. */
function pngRawBytes(w: number, h: number, bpp: number, interlaced: boolean): number {
  const rows = (pw: number, ph: number): number =>
    pw === 0 || ph === 0 ? 0 : ph * (1 + Math.ceil((pw * bpp) / 8));
  if (!interlaced) return rows(w, h);
  // Adam7 passes: [x0, y0, dx, dy].
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [
    1,
    0,
    2,
    2,
  ], [0, 1, 1, 2]];
  let sum = 0;
  for (const [x0, y0, dx, dy] of passes) {
    sum += rows(Math.ceil((w - x0) / dx), Math.ceil((h - y0) / dy));
  }
  return sum;
}

/**
 * Checks a PNG's chunk structure: the signature, an IHDR first with a valid colour type and
 * bit depth, every chunk complete with a correct CRC, consecutive IDAT chunks holding enough
 * bytes for the declared size, and an IEND. Returns the header, or throws an Error whose
 * one-line message says what is wrong.
 */
export function checkPng(bytes: Uint8Array): CheckedHeader {
  const n = bytes.length;
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== PNG_SIGNATURE[i]) {
      throw new Error(
        i < n ? "corrupt PNG: damaged signature" : `truncated PNG: ${n} bytes, no header`,
      );
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  let header: CheckedHeader | null = null;
  let bpp = 0;
  let interlaced = false;
  let colorType = 0;
  let idat = 0;
  let idatDone = false;
  let plte = false;
  while (true) {
    if (p + 8 > n) {
      throw new Error(
        `truncated PNG: ends at byte ${n} ${
          p === n ? "without an IEND chunk" : "inside a chunk header"
        }`,
      );
    }
    const len = dv.getUint32(p);
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) {
      throw new Error(`corrupt PNG: invalid chunk type at byte ${p}`);
    }
    if (len > 0x7fffffff || p + 12 + len > n) {
      throw new Error(
        `truncated PNG: chunk ${type} at byte ${p} declares ${len} bytes, the file has ${
          Math.max(0, n - p - 12)
        } after its header`,
      );
    }
    const crc = dv.getUint32(p + 8 + len);
    if (crc32(bytes.subarray(p + 4, p + 8 + len)) !== crc) {
      throw new Error(`corrupt PNG: bad CRC in chunk ${type} at byte ${p}`);
    }
    if (header === null && type !== "IHDR") {
      throw new Error(`corrupt PNG: first chunk is ${type}, expected IHDR`);
    }
    if (type === "IHDR") {
      if (header !== null) throw new Error("corrupt PNG: second IHDR chunk");
      if (len !== 13) throw new Error(`corrupt PNG: IHDR has ${len} bytes, expected 13`);
      const width = dv.getUint32(p + 8);
      const height = dv.getUint32(p + 12);
      const depth = bytes[p + 16];
      colorType = bytes[p + 17];
      const b = pngBitsPerPixel(colorType, depth);
      if (b === null) {
        throw new Error(`corrupt PNG: colour type ${colorType} with bit depth ${depth}`);
      }
      if (bytes[p + 18] !== 0 || bytes[p + 19] !== 0 || bytes[p + 20] > 1) {
        throw new Error("corrupt PNG: unknown compression, filter or interlace method");
      }
      if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
        throw new Error(`corrupt PNG: image size ${width}x${height}`);
      }
      bpp = b;
      interlaced = bytes[p + 20] === 1;
      header = { width, height };
    } else if (type === "PLTE") {
      plte = true;
    } else if (type === "IDAT") {
      if (idatDone) throw new Error("corrupt PNG: IDAT chunks are not consecutive");
      idat += len;
    } else if (idat > 0) {
      idatDone = true;
    }
    p += 12 + len;
    if (type === "IEND") break;
  }
  if (idat === 0) throw new Error("corrupt PNG: no image data (IDAT chunk)");
  if (colorType === 3 && !plte) throw new Error("corrupt PNG: palette image without PLTE chunk");
  const raw = pngRawBytes(header!.width, header!.height, bpp, interlaced);
  if (raw > MAX_DEFLATE_RATIO * idat + 1024) {
    throw new Error(
      `truncated PNG: ${idat} bytes of image data cannot hold ${header!.width}x${
        header!.height
      } pixels`,
    );
  }
  return header!;
}

/**
 * Checks a JPEG's marker structure: SOI, complete segments, a frame header (SOF) before the
 * first scan, and an EOI after the last scan's entropy-coded data (bytes after EOI are
 * ignored, as by libjpeg). Returns the frame size, or throws an Error whose one-line message
 * says what is wrong (e.g. the file is cut inside its header or inside its image data).
 */
export function checkJpeg(bytes: Uint8Array): CheckedHeader {
  const n = bytes.length;
  if (n < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    throw new Error("corrupt JPEG: no start-of-image marker");
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 2;
  let header: CheckedHeader | null = null;
  let scans = 0;
  const cut = (): Error =>
    new Error(
      scans === 0
        ? `truncated JPEG: ends at byte ${n}, inside its header`
        : `truncated JPEG: image data ends early at byte ${n} (no end-of-image marker)`,
    );
  while (true) {
    if (p >= n) throw cut();
    if (bytes[p] !== 0xff) {
      throw new Error(`corrupt JPEG: expected a marker at byte ${p}, got ${hex(bytes[p])}`);
    }
    while (p < n && bytes[p] === 0xff) p++; // fill bytes
    if (p >= n) throw cut();
    const m = bytes[p++];
    if (m === 0xd9) {
      if (header === null || scans === 0) {
        throw new Error("corrupt JPEG: end-of-image marker before any image data");
      }
      return header;
    }
    if (m === 0xd8) throw new Error(`corrupt JPEG: second start-of-image marker at byte ${p - 2}`);
    if (m === 0x00) throw new Error(`corrupt JPEG: stray 0xff00 at byte ${p - 2}`);
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // standalone markers
    if (p + 2 > n) throw cut();
    const len = dv.getUint16(p);
    if (len < 2) {
      throw new Error(`corrupt JPEG: marker ${hex(m)} at byte ${p - 2} has length ${len}`);
    }
    if (p + len > n) throw cut();
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc).
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (header !== null) throw new Error("corrupt JPEG: second frame header");
      if (len < 8) throw new Error(`corrupt JPEG: frame header of ${len} bytes`);
      const components = bytes[p + 7];
      if (len < 8 + 3 * components) {
        throw new Error(`corrupt JPEG: frame header too short for ${components} components`);
      }
      header = { height: dv.getUint16(p + 3), width: dv.getUint16(p + 5), components };
    }
    p += len;
    if (m !== 0xda) continue;
    if (header === null) throw new Error("corrupt JPEG: image data before the frame header");
    scans++;
    // Entropy-coded data runs to the next marker: 0xff not followed by 0x00 (a stuffed 0xff),
    // a restart marker, or another 0xff (fill).
    while (true) {
      const q = bytes.indexOf(0xff, p);
      if (q < 0 || q + 1 >= n) throw cut();
      const b = bytes[q + 1];
      if (b === 0x00 || (b >= 0xd0 && b <= 0xd7)) {
        p = q + 2;
        continue;
      }
      p = q;
      break;
    }
  }
}
