/**
 * Loading pretrained weights into a classification model: `torch.save` files (zip and legacy,
 * read by `nn/torch_file.ts`), Lightning `.ckpt`, safetensors (torchvision/timm names, with or
 * without the `model.` prefix) and the project's own checkpoints; names like `imagenet` map to
 * torchvision's URLs (`pretrained_names.ts`).
 *
 * Rules (the report says what happened to every key):
 * - file keys may carry `model.` (Lightning, our checkpoints) or `module.` (DataParallel);
 *   `class_weights` is ignored (the data module sets it);
 * - when `fc` differs only in its class count, the head is re-initialised with torchvision's
 *   init (U(±1/√in) for weight and bias) — "fc: 1000 → 43 classes, re-initialised";
 * - 3-channel `conv1` weights into a model with `inChannels: 1` are summed over the input
 *   channels (timm's `adapt_input_conv`); other channel counts repeat the RGB filters cyclically
 *   and scale by 3/C;
 * - a file without `num_batches_tracked` (old torchvision files) sets them to 0, as PyTorch does;
 * - missing or unexpected keys and shape mismatches are errors naming the first few keys,
 *   unless `strict: false` (then mismatched and missing tensors keep their values and
 *   unexpected ones are ignored, all listed in the report).
 *
 * Everything is decoded and checked on the host before the model is touched, so a bad file
 * leaves an already-loaded model unchanged.
 *
 * Reading paths and URLs is platform code: it lives in `pretrained_source_deno.ts`, imported
 * only when a string source is given without a `read` function, so this module stays
 * browser-safe (pass bytes or your own `read` there).
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { defaultUniform, Rng } from "../nn/init.ts";
import type { Module } from "../nn/module.ts";
import {
  type HostTensor,
  hostToFloat32,
  hostToInt32,
  parseSafetensors,
} from "../nn/safetensors.ts";
import { readTorchFile, torchStateDict } from "../nn/torch_file.ts";
import { isZip } from "../nn/zip_reader.ts";
import { isWeightsName, weightsUrl } from "./pretrained_names.ts";

/** Bytes of a weights file and the name to show for it. */
export interface PretrainedBytes {
  /** The file's bytes. */
  bytes: Uint8Array;
  /** File name or URL, for messages. */
  name: string;
}

/** Options of a `ReadPretrained` function. */
export interface ReadPretrainedOptions {
  /** Cache folder for downloads (default `$XDG_CACHE_HOME` or `~/.cache`, + `classifier-training/pretrained`). */
  cacheDir?: string;
  /** Show a download progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** Reads a path or URL (the platform seam; the Deno one downloads into a cache). */
export type ReadPretrained = (
  source: string,
  opts: ReadPretrainedOptions,
) => Promise<PretrainedBytes>;

/** Options of `loadPretrained`. */
export interface LoadPretrainedOptions extends ReadPretrainedOptions {
  /** Missing/unexpected keys and shape mismatches are errors (default true). */
  strict?: boolean;
  /** Reads string sources (default: the Deno reader, loaded on first use). */
  read?: ReadPretrained;
}

/** What `loadPretrained` did. */
export interface PretrainedReport {
  /** The file (path or URL) the weights came from. */
  source: string;
  /** File format: "torch zip", "torch legacy", "safetensors". */
  format: string;
  /** Keys copied from the file (model key names). */
  loaded: string[];
  /** Model keys given fresh values (the head when its class count differs). */
  reinitialized: string[];
  /** Model keys the file lacks or mis-shapes, left as they were (only with `strict: false`). */
  kept: string[];
  /** File keys not used. */
  ignored: string[];
  /** Human-readable notes (head, channels, `num_batches_tracked`). */
  notes: string[];
}

/** What a model must offer to receive weights. */
export interface PretrainedTarget extends Module {
  /** Its hyper-parameters: `name` selects the published weights, `seed` the head init. */
  readonly hparams: { name: string; seed?: unknown; [k: string]: unknown };
}

/** A malformed, mismatched or unreadable weights file (one line). */
export class PretrainedError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PretrainedError";
  }
}

/** The report in one or two lines, as the trainer prints it. */
export function formatPretrainedReport(r: PretrainedReport): string {
  const head = `pretrained ${r.source} (${r.format}): ${r.loaded.length} tensors loaded, ` +
    `${r.reinitialized.length} re-initialised, ${r.ignored.length} keys ignored` +
    (r.kept.length ? `, ${r.kept.length} kept` : "");
  return r.notes.length ? `${head}\n  ${r.notes.join("; ")}` : head;
}

const FIRST = 5;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function firstKeys(keys: string[]): string {
  const shown = keys.slice(0, FIRST).map((k) => `"${k}"`).join(", ");
  return keys.length > FIRST ? `${shown} and ${keys.length - FIRST} more` : shown;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

/** Decodes a weights file of any supported format into host tensors. */
export function parseWeightsFile(
  bytes: Uint8Array,
  name: string,
): { format: string; tensors: Map<string, HostTensor>; skipped: string[] } {
  if (isZip(bytes) || bytes[0] === 0x80) {
    const file = readTorchFile(bytes, name);
    const sd = torchStateDict(file);
    return {
      format: `torch ${file.format}${sd.container ? `, under "${sd.container}"` : ""}`,
      tensors: sd.tensors,
      skipped: sd.skipped,
    };
  }
  if (bytes.length >= 9 && bytes[8] === 0x7b) { // "{" after the 8-byte header length
    return { format: "safetensors", tensors: parseSafetensors(bytes, name).tensors, skipped: [] };
  }
  throw new PretrainedError(
    `pretrained "${name}": not a torch.save file (zip or pickle) nor safetensors`,
  );
}

/** Maps a file key to the model's naming (`module.` dropped, `model.` added when needed). */
function modelKey(fileKey: string, own: Map<string, unknown>): string | null {
  const k = fileKey.startsWith("module.") ? fileKey.slice("module.".length) : fileKey;
  if (own.has(k)) return k;
  if (own.has(`model.${k}`)) return `model.${k}`;
  return null;
}

interface Planned {
  key: string;
  values: Float32Array | Int32Array;
  shape: readonly number[];
}

function isHeadKey(k: string): boolean {
  return /(^|\.)fc\.(weight|bias)$/.test(k);
}

function seedOf(model: PretrainedTarget): number {
  const s = model.hparams.seed;
  return typeof s === "number" && Number.isFinite(s) ? s : 0;
}

/** timm's `adapt_input_conv`: RGB filters to `c` input channels. */
function adaptInputConv(w: Float32Array, fileShape: number[], c: number): Float32Array {
  const [o, ci, kh, kw] = fileShape;
  const k = kh * kw;
  const out = new Float32Array(o * c * k);
  for (let oc = 0; oc < o; oc++) {
    for (let j = 0; j < c; j++) {
      for (let q = 0; q < k; q++) {
        let v = 0;
        if (c === 1) {
          for (let i = 0; i < ci; i++) v = Math.fround(v + w[(oc * ci + i) * k + q]); // f32, as torch sums
        } else {
          v = Math.fround(w[(oc * ci + (j % ci)) * k + q] * Math.fround(ci / c));
        }
        out[(oc * c + j) * k + q] = v;
      }
    }
  }
  return out;
}

/**
 * Loads pretrained weights into `model` (see the module doc for the rules) and returns the
 * report. `source` is a path, an http(s) URL, a weights name (`imagenet`, `IMAGENET1K_V1`,
 * `IMAGENET1K_V2`) or the file's bytes.
 */
export async function loadPretrained(
  model: PretrainedTarget,
  source: string | Uint8Array,
  opts: LoadPretrainedOptions = {},
): Promise<PretrainedReport> {
  const strict = opts.strict ?? true;
  let file: PretrainedBytes;
  if (typeof source === "string") {
    const src = isWeightsName(source) ? weightsUrl(model.hparams.name, source) : source;
    const read = opts.read ??
      (await import("./pretrained_source_deno.ts")).readPretrainedSource;
    file = await read(src, { cacheDir: opts.cacheDir, progress: opts.progress });
  } else {
    file = { bytes: source, name: "<bytes>" };
  }
  const name = file.name;
  const fail = (msg: string): never => {
    throw new PretrainedError(`pretrained "${name}": ${msg}`);
  };
  const parsed = parseWeightsFile(file.bytes, name);
  const own = model.stateDict();
  const report: PretrainedReport = {
    source: name,
    format: parsed.format,
    loaded: [],
    reinitialized: [],
    kept: [],
    ignored: [...parsed.skipped],
    notes: [],
  };
  const plan: Planned[] = [];
  const seen = new Set<string>();
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  let headNoted = false;
  for (const [fk, t] of parsed.tensors) {
    if (fk === "class_weights" || fk.endsWith(".class_weights")) {
      report.ignored.push(fk);
      continue;
    }
    const key = modelKey(fk, own);
    if (!key) {
      unexpected.push(fk);
      continue;
    }
    if (seen.has(key)) fail(`keys "${fk}" and another both map to "${key}"`);
    seen.add(key);
    const target = own.get(key)!;
    const isInt = t.dtype === "I64" || t.dtype === "I32";
    if (isInt !== (target.dtype === "i32")) {
      fail(`"${fk}" has dtype ${t.dtype}, the model's "${key}" is ${target.dtype}`);
    }
    const same = t.shape.length === target.shape.length &&
      t.shape.every((d, i) => d === target.shape[i]);
    const sameNumelScalar = t.shape.length === 0 && target.size === 1 ||
      target.shape.length === 0 && t.shape.reduce((a, b) => a * b, 1) === 1;
    if (same || sameNumelScalar) {
      // Aligned little-endian f32 (torch's zip entries are 64-byte aligned) uploads as a view.
      const values = isInt
        ? hostToInt32(t, fk)
        : t.dtype === "F32" && LITTLE_ENDIAN && t.data.byteOffset % 4 === 0
        ? new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)
        : hostToFloat32(t, fk);
      plan.push({ key, values, shape: target.shape });
      report.loaded.push(key);
      continue;
    }
    // The head: same features, another class count.
    if (
      isHeadKey(key) && t.shape.length === target.shape.length &&
      t.shape.slice(1).every((d, i) => d === target.shape[i + 1])
    ) {
      if (!headNoted) {
        report.notes.push(`fc: ${t.shape[0]} → ${target.shape[0]} classes, re-initialised`);
        headNoted = true;
      }
      continue; // filled below, with both fc tensors
    }
    // conv1 from RGB weights into another channel count.
    if (
      /(^|\.)conv1\.weight$/.test(key) && !key.includes("layer") && t.shape.length === 4 &&
      target.shape.length === 4 && t.shape[0] === target.shape[0] &&
      t.shape[2] === target.shape[2] && t.shape[3] === target.shape[3]
    ) {
      const c = target.shape[1];
      plan.push({
        key,
        values: adaptInputConv(hostToFloat32(t, fk), t.shape, c),
        shape: target.shape,
      });
      report.loaded.push(key);
      report.notes.push(
        c === 1
          ? `conv1: ${t.shape[1]} → 1 input channel, summed over the input channels (as timm does)`
          : `conv1: ${t.shape[1]} → ${c} input channels, filters repeated and scaled by ${
            t.shape[1]
          }/${c} (as timm does)`,
      );
      continue;
    }
    mismatched.push(`${key} ${shapeStr(t.shape)} vs ${shapeStr(target.shape)}`);
  }
  // Head re-initialisation: both fc tensors together, torchvision's init.
  if (headNoted) {
    const w = [...own.keys()].find((k) => /(^|\.)fc\.weight$/.test(k))!;
    const b = [...own.keys()].find((k) => /(^|\.)fc\.bias$/.test(k));
    const ws = own.get(w)!.shape;
    const rng = new Rng(seedOf(model));
    plan.push({ key: w, values: defaultUniform(ws, ws[1], rng), shape: ws });
    report.reinitialized.push(w);
    seen.add(w);
    if (b) {
      const bs = own.get(b)!.shape;
      plan.push({ key: b, values: defaultUniform(bs, ws[1], rng), shape: bs });
      report.reinitialized.push(b);
      seen.add(b);
    }
  }
  const missing: string[] = [];
  for (const [k, t] of own) {
    if (seen.has(k) || k === "class_weights") continue;
    // Old torchvision files predate num_batches_tracked: 0 where the rest of the BN loaded.
    if (
      k.endsWith("num_batches_tracked") &&
      seen.has(k.replace(/num_batches_tracked$/, "running_mean"))
    ) {
      plan.push({ key: k, values: new Int32Array(t.size), shape: t.shape });
      report.reinitialized.push(k);
      continue;
    }
    missing.push(k);
  }
  if (report.reinitialized.some((k) => k.endsWith("num_batches_tracked"))) {
    report.notes.push("num_batches_tracked absent from the file: set to 0 (as PyTorch does)");
  }
  if (strict) {
    const problems: string[] = [];
    if (missing.length) problems.push(`missing keys ${firstKeys(missing)}`);
    if (unexpected.length) problems.push(`unexpected keys ${firstKeys(unexpected)}`);
    if (mismatched.length) {
      problems.push(
        `shape mismatches ${firstKeys(mismatched).replaceAll('"', "")}`,
      );
    }
    if (problems.length) {
      fail(`${problems.join("; ")} (set model.pretrainedStrict: false to load the rest)`);
    }
  }
  report.kept.push(...missing, ...mismatched.map((m) => m.split(" ")[0]));
  report.ignored.push(...unexpected);
  if (report.loaded.length === 0) fail("no tensor of the file matches the model");
  // Upload, then copy into the model: nothing above touched it.
  const fresh = new Map<string, Tensor>();
  try {
    for (const p of plan) {
      fresh.set(
        p.key,
        Tensor.fromArray(p.values, p.shape, {
          dtype: p.values instanceof Int32Array ? "i32" : "f32",
        }),
      );
    }
    model.loadStateDict(fresh, { strict: false });
  } finally {
    for (const t of fresh.values()) t.dispose();
  }
  return report;
}
