/**
 * Decoded images (8-bit, HWC) and the PNG / JPEG decoders.
 *
 * @module
 */

import jpegJs from "jpeg-js";
import { DecoderFault, JpegDecoder, PngDecoder, type RgbaPixels } from "./codecs.ts";
import { DataError, reasonOf } from "./errors.ts";
import { checkJpeg, checkPng, MAX_JPEG_PIXELS_PER_BYTE } from "./image_check.ts";

/** An 8-bit image in height × width × channels order. */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels (1 or 3). */
  channels: number;
  /** `height * width * channels` bytes, HWC. */
  data: Uint8Array;
}

/** Largest accepted decoded image (pixels), checked from the header before decoding. */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/** File name extensions read as images (lower case). */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

/** The format of encoded bytes, from their magic number. */
export function sniffFormat(bytes: Uint8Array): "png" | "jpeg" | null {
  if (
    bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47
  ) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return null;
}

/**
 * Width and height from a PNG IHDR or a JPEG SOF marker (plus the JPEG's component count), or
 * null when not found.
 */
export function headerSize(
  bytes: Uint8Array,
): { width: number; height: number; components?: number } | null {
  const fmt = sniffFormat(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (fmt === "png") {
    if (bytes.length < 24) return null;
    return { width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (fmt === "jpeg") {
    let p = 2;
    while (p + 9 < bytes.length) {
      if (bytes[p] !== 0xff) return null;
      const m = bytes[p + 1];
      if (m === 0xff) {
        p++;
        continue;
      }
      // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        return {
          height: dv.getUint16(p + 5),
          width: dv.getUint16(p + 7),
          components: bytes[p + 9],
        };
      }
      if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
        p += 2;
        continue;
      }
      p += 2 + dv.getUint16(p + 2);
    }
    return null;
  }
  return null;
}

/**
 * Converts RGBA (or 1-channel) pixels to `channels` channels. Alpha is dropped without
 * compositing (as PIL's `convert("RGB")`); RGB → 1 channel uses PIL's `convert("L")` luma,
 * L = (19595·R + 38470·G + 7471·B + 2^15) >> 16.
 */
export function convertChannels(
  src: Uint8Array | Uint8ClampedArray,
  size: { width: number; height: number; srcChannels: number },
  channels: number,
): RawImage {
  const { width, height, srcChannels } = size;
  const n = width * height;
  const out = new Uint8Array(n * channels);
  if (srcChannels === channels) {
    out.set(src.subarray(0, n * channels));
  } else if (srcChannels === 1) {
    for (let i = 0; i < n; i++) {
      const v = src[i];
      for (let c = 0; c < channels; c++) out[i * channels + c] = v;
    }
  } else if (channels === 1) {
    for (let i = 0; i < n; i++) {
      const o = i * srcChannels;
      out[i] = (19595 * src[o] + 38470 * src[o + 1] + 7471 * src[o + 2] + 32768) >>> 16;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = i * srcChannels;
      out[i * 3] = src[o];
      out[i * 3 + 1] = src[o + 1];
      out[i * 3 + 2] = src[o + 2];
    }
  }
  return { width, height, channels, data: out };
}

const jpegDecoder = new JpegDecoder();
const pngDecoder = new PngDecoder();

/** The decoders' instance counts (a fault replaces the instance; for tests). */
export function decoderInstances(): { jpeg: number; png: number } {
  return { jpeg: jpegDecoder.instances, png: pngDecoder.instances };
}

/**
 * Decodes PNG or JPEG bytes (sniffed from the magic number, not the file name) into `channels`
 * channels. Before decoding, the declared size is bounded ({@link MAX_IMAGE_PIXELS}) and the
 * file structure is checked (see `image_check.ts`): a file cut short, with a damaged chunk or
 * segment, or declaring far more pixels than its data can hold is refused. A decoder failure or
 * warning (libjpeg's "Corrupt JPEG data: …", for example) is corruption too; its message is
 * part of the error, and the decoder instance is replaced so later decodes are unaffected.
 * CMYK/YCCK JPEGs (which MozJPEG's wasm build rejects) go through jpeg-js in strict mode.
 *
 * Throws a {@link DataError} with a one-line reason, prefixed by `name` when given (the data
 * loader adds the path itself).
 */
export async function decodeImage(
  bytes: Uint8Array,
  channels: number,
  name?: string,
): Promise<RawImage> {
  try {
    return await decode(bytes, channels);
  } catch (e) {
    // Our checks throw plain Errors and the decoders DecoderFaults; anything else (a TypeError,
    // say) is a bug here and stays what it is.
    if (!(e instanceof Error && (e.constructor === Error || e instanceof DecoderFault))) throw e;
    const reason = reasonOf(e);
    throw new DataError(name === undefined ? reason : `${name}: ${reason}`);
  }
}

async function decode(bytes: Uint8Array, channels: number): Promise<RawImage> {
  const fmt = sniffFormat(bytes);
  if (fmt === null) throw new Error("not a PNG or JPEG (unknown magic number)");
  const size = headerSize(bytes);
  if (size === null) {
    // The structure check says precisely where the header breaks off.
    if (fmt === "png") checkPng(bytes);
    else checkJpeg(bytes);
    throw new Error(`truncated ${fmt === "png" ? "PNG" : "JPEG"} header`);
  }
  if (size.width < 1 || size.height < 1 || size.width * size.height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `image size ${size.width}x${size.height} outside 1..${MAX_IMAGE_PIXELS} pixels`,
    );
  }
  let img: RgbaPixels;
  if (fmt === "png") {
    checkPng(bytes);
    img = await pngDecoder.decode(bytes);
  } else {
    const h = checkJpeg(bytes);
    if (h.width * h.height > MAX_JPEG_PIXELS_PER_BYTE * bytes.length) {
      throw new Error(
        `truncated JPEG: ${bytes.length} bytes cannot hold ${h.width}x${h.height} pixels`,
      );
    }
    if (h.components === 4) {
      // CMYK/YCCK: MozJPEG's wasm build rejects these; jpeg-js converts. Strict mode, so that
      // missing blocks are an error rather than silently left blank.
      try {
        img = jpegJs.decode(bytes, {
          useTArray: true,
          formatAsRGBA: true,
          tolerantDecoding: false,
          maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
          maxMemoryUsageInMB: 1024,
        });
      } catch (e) {
        throw new DecoderFault("corrupt CMYK JPEG", [`jpeg-js: ${reasonOf(e)}`]);
      }
    } else {
      img = await jpegDecoder.decode(bytes);
    }
  }
  if (img.width !== size.width || img.height !== size.height) {
    throw new Error(
      `decoder returned ${img.width}x${img.height}, the header says ${size.width}x${size.height}`,
    );
  }
  if (img.data.length < img.width * img.height * 4) {
    throw new Error(`decoder returned ${img.data.length} bytes for ${img.width}x${img.height}`);
  }
  return convertChannels(
    img.data,
    { width: img.width, height: img.height, srcChannels: 4 },
    channels,
  );
}
