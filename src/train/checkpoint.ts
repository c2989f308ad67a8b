/**
 * Checkpoints: model weights (safetensors), optimizer tensors (safetensors) and a JSON state
 * file that commits them. Layout in the checkpoint folder, for a checkpoint named `best`:
 *
 * - `best-epoch=3-step=120.safetensors`: the model's state dict (PyTorch key names);
 * - `best-epoch=3-step=120.optim.safetensors`: optimizer tensors (AdamW moments);
 * - `best.json`: epoch, global step, scheduler and optimizer state (tensors referenced by
 *   name), RNG state, hparams, class names, the resolved config, and the two file names.
 *
 * Every file is written atomically (temp file, fsync, rename) and the JSON last, so it is
 * the commit record: a crash at any point leaves the previous JSON pointing at files that
 * still exist. Files no longer referenced are removed after the commit.
 *
 * @module
 */

import type { SinkEpochState } from "./metric_sink.ts";
import { Tensor } from "../gpu/tensor.ts";
import {
  loadSafetensors,
  type SafetensorsChunks,
  serializeTensorChunks,
} from "../io/safetensors.ts";
import type { AtomicWriteOptions } from "../io/atomic.ts";
import { denoFs, type PlatformFs } from "../platform/fs.ts";
import { host } from "../platform/host.ts";
import type { GradScalerState } from "../optim/grad_scaler.ts";

export { type HostValues, readBackAll } from "../gpu/readback.ts";
export type { SafetensorsChunks } from "../io/safetensors.ts";

/** The JSON state of a checkpoint (`<name>.json`). */
export interface CheckpointState {
  /** Format tag. */
  format: "classifier-training-checkpoint/1";
  /** Checkpoint name (`last`, `best`). */
  name: string;
  /** Last completed epoch (0-based); the interrupted one when `rng.nextBatch` > 0. */
  epoch: number;
  /** Optimizer steps taken so far. */
  globalStep: number;
  /** Weights file name (in the same folder). */
  weights: string;
  /** Optimizer tensors file name (in the same folder), null when not saved. */
  optimizerTensors: string | null;
  /** Optimizer state with tensors replaced by `{"$tensor": key}` references. */
  optimizer: unknown;
  /** LR scheduler state. */
  scheduler: unknown;
  /**
   * RNG state and loader position. Every random stream (init, shuffle, augmentation) is
   * derived from the seed and the epoch, so the seed, the next epoch and the batch to
   * continue at within it (absent or 0 at an epoch boundary) are the whole state.
   */
  rng: { seed: number; nextEpoch: number; nextBatch?: number };
  /** Model hyperparameters (its constructor options). */
  hparams: Record<string, unknown>;
  /** Class names, index order. */
  classNames: string[];
  /** The resolved training config. */
  config: unknown;
  /** Callback states (checkpoint monitor best, early stopping counters). */
  callbacks: Record<string, unknown>;
  /** Epoch metrics at save time. */
  metrics: Record<string, number | string>;
  /**
   * Saved inside an epoch (`rng.nextBatch` > 0) only: the epoch's metric accumulators so far
   * (the trainer's sink and the model's training metrics), so the resumed epoch reports means
   * over all of its batches.
   */
  epochProgress?: EpochProgress;
  /** ISO time of writing. */
  savedAt: string;
  /**
   * The loss scaler of a "16-mixed" run (scale, growth tracker, skipped steps), so a resumed
   * run scales exactly as an uninterrupted one; absent or null in f32 runs.
   */
  ampScaler?: GradScalerState | null;
}

/** A mid-epoch checkpoint's metric state (see `CheckpointState.epochProgress`). */
export interface EpochProgress {
  /** The metric sink's accumulators. */
  sink: SinkEpochState;
  /** The model's training-metric counters (`trainEpochState()`). */
  model: Record<string, number[]>;
}

/** What `writeCheckpoint` saves. */
export interface CheckpointContents {
  /** Model state dict (GPU tensors, read back here). */
  stateDict: Map<string, Tensor>;
  /** Optimizer state dict; its Tensor leaves go to the `.optim.safetensors` file. */
  optimizer: unknown;
  /** Everything else of the JSON state. */
  state: Omit<
    CheckpointState,
    "format" | "name" | "weights" | "optimizerTensors" | "optimizer" | "savedAt"
  >;
}

/** Options of `writeCheckpoint`. */
export interface WriteCheckpointOptions {
  /** Test hook forwarded to every atomic write (throw to simulate a crash). */
  atomic?: AtomicWriteOptions;
  /** File access (default: Deno's). */
  fs?: PlatformFs;
}

/** Replaces Tensor leaves by `{"$tensor": key}` and collects them into `tensors`. */
export function extractTensors(value: unknown, tensors: Map<string, Tensor>): unknown {
  return extract(value, tensors, "t");
}

function extract(value: unknown, tensors: Map<string, Tensor>, path: string): unknown {
  if (value instanceof Tensor) {
    let key = path;
    for (let n = 1; tensors.has(key); n++) key = `${path}#${n}`;
    tensors.set(key, value);
    return { $tensor: key };
  }
  if (value instanceof Map) {
    return {
      $map: [...value].map(([k, v], i) => [k, extract(v, tensors, `${path}.${i}`)]),
    };
  }
  if (ArrayBuffer.isView(value)) {
    return { $array: Array.from(value as Float32Array), type: value.constructor.name };
  }
  if (Array.isArray(value)) return value.map((v, i) => extract(v, tensors, `${path}.${i}`));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = extract(v, tensors, `${path}.${k}`);
    return out;
  }
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

/** The inverse of `extractTensors`: references become the given (loaded) tensors. */
export function restoreTensors(value: unknown, tensors: Map<string, Tensor>): unknown {
  if (Array.isArray(value)) return value.map((v) => restoreTensors(v, tensors));
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.$tensor === "string") {
      const t = tensors.get(o.$tensor);
      if (!t) throw new Error(`checkpoint: optimizer tensor "${o.$tensor}" is missing`);
      return t;
    }
    if (Array.isArray(o.$map)) {
      return new Map(
        (o.$map as [unknown, unknown][]).map(([k, v]) => [k, restoreTensors(v, tensors)]),
      );
    }
    if (Array.isArray(o.$array)) {
      return o.type === "Int32Array"
        ? Int32Array.from(o.$array as number[])
        : Float32Array.from(o.$array as number[]);
    }
    if (typeof o.$number === "string") return Number(o.$number);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = restoreTensors(v, tensors);
    return out;
  }
  return value;
}

function jsonNumbers(m: Record<string, number>): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(m)) out[k] = Number.isFinite(v) ? v : String(v);
  return out;
}

/**
 * A checkpoint's tensors as file pieces (`serializeCheckpoint`): what `writeCheckpoint` reads
 * back from the GPU. Serialize once to write several names (`best` and `last` of one epoch),
 * then `release()` the readback memory the pieces view.
 */
export interface SerializedCheckpoint {
  /** What was serialized. */
  contents: CheckpointContents;
  /** The weights file. */
  weights: SafetensorsChunks;
  /** The optimizer tensors file, null when the optimizer state has no tensors. */
  optimizerTensors: SafetensorsChunks | null;
  /** The optimizer state with its tensors replaced by references into that file. */
  optimizerJson: unknown;
  /** Releases the readback memory of both files (idempotent). */
  release(): void;
}

/**
 * Reads a checkpoint's tensors back as safetensors pieces: the weights (with the epoch, step,
 * class names and hparams as metadata) and the optimizer tensors. The pieces view the mapped
 * readback memory, so writing them makes no host copy.
 */
export async function serializeCheckpoint(
  contents: CheckpointContents,
): Promise<SerializedCheckpoint> {
  const { epoch, globalStep } = contents.state;
  const optTensors = new Map<string, Tensor>();
  const optimizerJson = extractTensors(contents.optimizer, optTensors);
  const metadata = {
    format: "pt",
    epoch: String(epoch),
    global_step: String(globalStep),
    class_names: JSON.stringify(contents.state.classNames),
    hparams: JSON.stringify(contents.state.hparams),
  };
  const weights = await serializeTensorChunks(contents.stateDict, { metadata });
  let optimizerTensors: SafetensorsChunks | null = null;
  try {
    if (optTensors.size) optimizerTensors = await serializeTensorChunks(optTensors);
  } catch (e) {
    weights.release();
    throw e;
  }
  return {
    contents,
    weights,
    optimizerTensors,
    optimizerJson,
    release() {
      weights.release();
      optimizerTensors?.release();
    },
  };
}

/**
 * Writes the checkpoint `path` = `<folder>/<name>` (e.g. `runs/x/checkpoints/best`; see the
 * module doc for the layout and the commit protocol) from its contents, or from what
 * `serializeCheckpoint` made of them (which the caller still releases). Returns the JSON
 * state path.
 */
export async function writeCheckpoint(
  path: string,
  contents: CheckpointContents | SerializedCheckpoint,
  options: WriteCheckpointOptions = {},
): Promise<string> {
  if (!("release" in contents)) {
    const ser = await serializeCheckpoint(contents);
    try {
      return await writeCheckpoint(path, ser, options);
    } finally {
      ser.release();
    }
  }
  const ser = contents;
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const fs = options.fs ?? denoFs;
  const atomicWrite = (p: string, data: readonly Uint8Array[] | string) =>
    fs.writeAtomic(p, data, options.atomic);
  fs.mkdirp(dir);
  const { epoch, globalStep } = ser.contents.state;
  // Never overwrite a file the committed JSON points at; orphans of a crash may be reused.
  const committed = new Set<string>();
  try {
    const prev = JSON.parse(fs.readText(`${dir}/${name}.json`) ?? "null") as CheckpointState;
    committed.add(prev.weights);
    if (prev.optimizerTensors) committed.add(prev.optimizerTensors);
  } catch { /* no committed checkpoint yet */ }
  let tag = `${name}-epoch=${epoch}-step=${globalStep}`;
  for (let v = 1; committed.has(`${tag}.safetensors`); v++) {
    tag = `${name}-epoch=${epoch}-step=${globalStep}-v${v}`;
  }
  const weights = `${tag}.safetensors`;
  atomicWrite(`${dir}/${weights}`, ser.weights.chunks);
  const optimizerTensors = ser.optimizerTensors ? `${tag}.optim.safetensors` : null;
  if (ser.optimizerTensors && optimizerTensors) {
    atomicWrite(`${dir}/${optimizerTensors}`, ser.optimizerTensors.chunks);
  }
  const state: CheckpointState = {
    format: "classifier-training-checkpoint/1",
    name,
    ...ser.contents.state,
    metrics: jsonNumbers(ser.contents.state.metrics as Record<string, number>),
    weights,
    optimizerTensors,
    optimizer: ser.optimizerJson,
    savedAt: new Date().toISOString(),
  };
  const jsonPath = `${dir}/${name}.json`;
  atomicWrite(jsonPath, JSON.stringify(state, null, 1) + "\n");
  // The JSON is committed: files of this name it does not reference are garbage.
  for (const f of fs.listFiles(dir)) {
    const ours = f.startsWith(`${name}-`) || f.startsWith(`.${name}-`);
    if (!ours || f === weights || f === optimizerTensors) continue;
    try {
      fs.removeFile(`${dir}/${f}`);
    } catch { /* best effort: a later write retries */ }
  }
  return jsonPath;
}

function existsSync(p: string): boolean {
  try {
    host.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds a checkpoint's JSON state: `path` may be the `.json` itself, a checkpoint name
 * without extension, a `checkpoints` folder or a run folder (then `best.json`, else
 * `last.json`).
 */
export function resolveCheckpointPath(path: string): string {
  const p = path.replace(/\/+$/, "");
  if (p.endsWith(".json") && existsSync(p)) return p;
  if (existsSync(`${p}.json`)) return `${p}.json`;
  for (const dir of [p, `${p}/checkpoints`]) {
    for (const n of ["best", "last"]) if (existsSync(`${dir}/${n}.json`)) return `${dir}/${n}.json`;
  }
  throw new Error(
    `checkpoint: expected a checkpoint .json, a checkpoints folder or a run folder, got "${path}" (no best.json or last.json found)`,
  );
}

/** A loaded checkpoint: its state and the GPU tensors (owned by the caller). */
export interface LoadedCheckpoint {
  /** The JSON state path. */
  path: string;
  /** The JSON state. */
  state: CheckpointState;
  /** The model's state dict (new GPU tensors). */
  weights: Map<string, Tensor>;
  /** The optimizer state with its tensors restored (new GPU tensors), or null. */
  optimizer: unknown;
  /** Frees every tensor of this checkpoint. */
  dispose(): void;
}

/** Options of `loadCheckpoint`. */
export interface LoadCheckpointOptions {
  /** Also load the optimizer tensors (default true). */
  optimizer?: boolean;
}

/** Loads a checkpoint (see `resolveCheckpointPath` for what `path` may be). */
export async function loadCheckpoint(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  const jsonPath = resolveCheckpointPath(path);
  let state: CheckpointState;
  try {
    state = JSON.parse(host.readTextFileSync(jsonPath));
  } catch (e) {
    throw new Error(
      `checkpoint "${jsonPath}": cannot read its JSON state (${(e as Error).message})`,
    );
  }
  if (state.format !== "classifier-training-checkpoint/1") {
    throw new Error(
      `checkpoint "${jsonPath}": expected format "classifier-training-checkpoint/1", got ${
        JSON.stringify(state.format)
      }`,
    );
  }
  const dir = jsonPath.includes("/") ? jsonPath.slice(0, jsonPath.lastIndexOf("/")) : ".";
  const weights = await loadSafetensors(`${dir}/${state.weights}`);
  let optimizer: unknown = null;
  let optTensors = new Map<string, Tensor>();
  if ((options.optimizer ?? true) && state.optimizerTensors) {
    optTensors = await loadSafetensors(`${dir}/${state.optimizerTensors}`);
    optimizer = restoreTensors(state.optimizer, optTensors);
  } else if (options.optimizer ?? true) {
    optimizer = restoreTensors(state.optimizer, optTensors);
  }
  return {
    path: jsonPath,
    state,
    weights,
    optimizer,
    dispose() {
      for (const t of weights.values()) t.dispose();
      for (const t of optTensors.values()) t.dispose();
    },
  };
}
