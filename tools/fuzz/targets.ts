/**
 * The parsers that take user files, as fuzz targets: each has seed files (valid inputs with
 * their length fields marked), a function that feeds it one input, and the error class its
 * rejections must have. Imported through mod.ts where the parser is exported there, so that
 * moving a file inside src/ does not break the harness.
 *
 * @module
 */

import {
  data,
  type HostTensor,
  parseSafetensors,
  readTorchFile,
  SafetensorsError,
  serializeSafetensors,
  TorchFileError,
  torchStateDict,
} from "../../mod.ts";
import * as core from "../../mod.ts";
import { encode as encodePng } from "@jsquash/png";
import type { LengthField, Seed } from "./mutate.ts";

/** One fuzz target. */
export interface Target {
  /** Name (`--targets` selects by it). */
  name: string;
  /** The error class every rejection must be an instance of. */
  errorClass: new (...args: never[]) => Error;
  /**
   * Allocation budget in bytes for an input of `n` bytes: what the format's own sizes can
   * justify (deflate's 1032:1, 4 bytes per decoded pixel, …) plus a fixed allowance.
   */
  budget(n: number): number;
  /** Builds the seeds (valid inputs). */
  seeds(): Promise<Seed[]>;
  /** Feeds one input to the parser; `tmp` is a private scratch folder. Throws on rejection. */
  run(bytes: Uint8Array, tmp: string): Promise<void>;
}

const MiB = 1024 * 1024;
const root = new URL("../../", import.meta.url);
const read = (rel: string): Promise<Uint8Array> => Deno.readFile(new URL(rel, root));

// ------------------------------------------------------------------------ length fields

/** PNG chunk lengths (u32 BE) and the IHDR width and height. */
function pngFields(b: Uint8Array): LengthField[] {
  const out: LengthField[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 8 <= b.length;) {
    out.push({ offset: p, width: 4, little: false });
    const len = dv.getUint32(p);
    if (String.fromCharCode(...b.subarray(p + 4, p + 8)) === "IHDR") {
      out.push({ offset: p + 8, width: 4, little: false }, {
        offset: p + 12,
        width: 4,
        little: false,
      });
    }
    p += 12 + len;
  }
  return out;
}

/** JPEG segment lengths (u16 BE) up to the first scan, and the frame's height and width. */
function jpegFields(b: Uint8Array): LengthField[] {
  const out: LengthField[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 2; p + 4 <= b.length && b[p] === 0xff;) {
    const m = b[p + 1];
    out.push({ offset: p + 2, width: 2, little: false });
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      out.push({ offset: p + 5, width: 2, little: false }, {
        offset: p + 7,
        width: 2,
        little: false,
      });
    }
    if (m === 0xda) break;
    p += 2 + dv.getUint16(p + 2);
  }
  return out;
}

// ------------------------------------------------------------------------------ images

async function imageSeeds(): Promise<Seed[]> {
  const seeds: Seed[] = [];
  for (const f of ["pil_420_q90", "pil_444_q95", "pil_progressive", "pil_gray", "cmyk"]) {
    const bytes = await read(`tests/data/fixtures/${f}.jpg`);
    seeds.push({ name: `${f}.jpg`, bytes, fields: jpegFields(bytes) });
  }
  for (const f of ["pil_palette", "pil_rgba"]) {
    const bytes = await read(`tests/data/fixtures/${f}.png`);
    seeds.push({ name: `${f}.png`, bytes, fields: pngFields(bytes) });
  }
  const d = new Uint8ClampedArray(20 * 12 * 4).map((_, i) => (i * 37) % 256);
  const rgba = new Uint8Array(await encodePng(new ImageData(d, 20, 12)));
  seeds.push({ name: "jsquash_rgba.png", bytes: rgba, fields: pngFields(rgba) });
  return seeds;
}

/** A valid JPEG and its first decode: decoded again after every input, it must not change. */
let reference: { bytes: Uint8Array; pixels: Uint8Array } | null = null;

const images: Target = {
  name: "image",
  errorClass: data.DataError,
  budget: (n) => 64 * MiB + 4 * 4096 * 4 * n,
  seeds: imageSeeds,
  async run(bytes) {
    if (reference === null) {
      const ref = await read("tests/data/fixtures/pil_420_q90.jpg");
      reference = { bytes: ref, pixels: (await data.decodeImage(ref, 3)).data };
    }
    let thrown: unknown = null;
    try {
      await data.decodeImage(bytes, 3);
    } catch (e) {
      thrown = e;
    }
    // A fault must not leak into later decodes (it once did: a corrupt JPEG changed how every
    // later JPEG decoded). Reported as a plain Error, so it counts as a crash.
    let again: Uint8Array;
    try {
      again = (await data.decodeImage(reference.bytes, 3)).data;
    } catch (e) {
      throw new Error(`decoder state leaked: the reference JPEG no longer decodes (${e})`);
    }
    const diff = again.findIndex((v, i) => v !== reference!.pixels[i]);
    if (diff >= 0) {
      throw new Error(`decoder state leaked: the reference JPEG changed at byte ${diff}`);
    }
    if (thrown !== null) throw thrown;
  },
};

// --------------------------------------------------------------------------------- IDX

async function idxSeeds(kind: "images" | "labels"): Promise<Seed[]> {
  const labels = Uint8Array.from({ length: 12 }, (_, i) => i % 10);
  const raw = kind === "images"
    ? data.encodeIdxImages({
      count: 3,
      height: 5,
      width: 4,
      data: Uint8Array.from({ length: 60 }, (_, i) => (i * 11) % 256),
    })
    : data.encodeIdxLabels(labels);
  const fields: LengthField[] = kind === "images"
    ? [4, 8, 12].map((offset) => ({ offset, width: 4, little: false }))
    : [{ offset: 4, width: 4, little: false }];
  const s = new Blob([raw as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  const gz = new Uint8Array(await new Response(s).arrayBuffer());
  return [
    { name: `${kind}.idx`, bytes: raw, fields },
    // gzip's trailer: CRC32 and ISIZE (u32 LE).
    {
      name: `${kind}.idx.gz`,
      bytes: gz,
      fields: [{ offset: gz.length - 4, width: 4, little: true }],
    },
  ];
}

function idxTarget(kind: "images" | "labels"): Target {
  return {
    name: `idx-${kind}`,
    errorClass: data.DataError,
    budget: (n) => 64 * MiB + 2 * 1032 * n,
    seeds: () => idxSeeds(kind),
    async run(bytes, tmp) {
      const path = `${tmp}/fuzz-${kind}-ubyte`;
      await Deno.writeFile(path, bytes);
      if (kind === "images") await data.readIdxImages(path);
      else await data.readIdxLabels(path);
    },
  };
}

// ------------------------------------------------------------------------- safetensors

function host(dtype: HostTensor["dtype"], shape: number[], bytesPer: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1) * bytesPer;
  return { dtype, shape, data: Uint8Array.from({ length: n }, (_, i) => (i * 29 + 3) % 256) };
}

const safetensors: Target = {
  name: "safetensors",
  errorClass: SafetensorsError,
  budget: (n) => 64 * MiB + 8 * n,
  seeds() {
    const a = serializeSafetensors({
      "conv.weight": host("F32", [2, 3, 1, 1], 4),
      "bn.running_mean": host("F16", [3], 2),
      "steps": host("I64", [1], 8),
    }, { metadata: { format: "pt" } });
    const b = serializeSafetensors({ "x": host("BF16", [4, 2], 2), "y": host("I32", [0], 4) });
    const field: LengthField = { offset: 0, width: 8, little: true };
    return Promise.resolve([
      { name: "three.safetensors", bytes: a, fields: [field] },
      { name: "two.safetensors", bytes: b, fields: [field] },
    ]);
  },
  run(bytes) {
    parseSafetensors(bytes, "fuzz.safetensors");
    return Promise.resolve();
  },
};

// ------------------------------------------------------------------------- torch.save

/**
 * `torch.save` files (zip and legacy pickle, with views sharing storages, f16/bf16) through the
 * restricted unpickler and the state-dict materialisation that `loadPretrained` runs.
 */
const pth: Target = {
  name: "pth",
  errorClass: TorchFileError,
  budget: (n) => 64 * MiB + 8 * n,
  async seeds() {
    const seeds: Seed[] = [];
    for (const f of ["views.pth", "views.legacy.pth", "resnet18_stem.f16.pth"]) {
      seeds.push({ name: f, bytes: await read(`tests/fixtures/pth/${f}`), fields: [] });
    }
    return seeds;
  },
  run(bytes) {
    torchStateDict(readTorchFile(bytes, "fuzz.pth"));
    return Promise.resolve();
  },
};

// ------------------------------------------------------------------------------ config

/** The config loader, looked up by name (its module is being reworked). */
const loadConfig = (core as unknown as {
  loadConfig: (file: string, overrides?: readonly string[]) => unknown;
}).loadConfig;
const ConfigError = (core as unknown as { ConfigError: new (...args: never[]) => Error })
  .ConfigError;

const OVERRIDES = [
  ["trainer.maxEpochs=3", "data.batchSize=16"],
  ["model.name=resnet18", "optimizer.learningRate=1e-3", "data.augment.hflip=0.5"],
  ["data.source=idx", "data.root=/nonexistent"],
  ["seed=7"],
];

/**
 * The config target's input: the YAML text, then each `key=value` override after a NUL byte,
 * so that one byte string carries both and every mutation applies to either.
 */
const config: Target = {
  name: "config",
  errorClass: ConfigError,
  budget: (n) => 64 * MiB + 1000 * n,
  async seeds() {
    const seeds: Seed[] = [];
    let k = 0;
    for await (const e of Deno.readDir(new URL("configs/", root))) {
      if (!e.name.endsWith(".yaml")) continue;
      const text = await Deno.readTextFile(new URL(`configs/${e.name}`, root));
      const ov = OVERRIDES[k++ % OVERRIDES.length];
      seeds.push({
        name: e.name,
        bytes: new TextEncoder().encode([text, ...ov].join("\0")),
        fields: [],
      });
    }
    return seeds.sort((a, b) => (a.name < b.name ? -1 : 1));
  },
  run(bytes, tmp) {
    const [text, ...overrides] = new TextDecoder().decode(bytes).split("\0");
    const path = `${tmp}/fuzz.yaml`;
    Deno.writeTextFileSync(path, text);
    loadConfig(path, overrides);
    return Promise.resolve();
  },
};

/** Every target, in a fixed order (the order seeds the per-target input streams). */
export const TARGETS: readonly Target[] = [
  safetensors,
  idxTarget("images"),
  idxTarget("labels"),
  images,
  config,
  pth,
];
