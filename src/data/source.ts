/**
 * Where samples come from and how one batch of them is decoded and transformed. The same
 * {@link SampleProcessor} runs inline (`numWorkers: 0`) and inside each Web Worker, so both paths
 * produce identical pixels: every random draw comes from `Rng.from(seed, epoch, index)`.
 *
 * @module
 */

import { renderBuiltin } from "./builtin.ts";
import { DataError, reasonOf } from "./errors.ts";
import { convertChannels, decodeImage, type RawImage } from "./image.ts";
import { Rng } from "./rng.ts";
import { evalTransform, type PipelineSpec, trainTransform } from "./transforms.ts";
import { host } from "../platform/host.ts";

/** A serialisable description of a sample source (sent to each worker once). */
export type SourceSpec =
  | {
    /** The procedural dataset; sample i is `renderBuiltin(i)`. */
    kind: "builtin";
    /** Content seed. */
    seed: number;
    /** Classes. */
    numClasses: number;
    /** Side of the rendered images. */
    size: number;
  }
  | {
    /** Already-decoded 1-channel images (IDX), `count·height·width` bytes. */
    kind: "array";
    /** The pixels; a SharedArrayBuffer view so workers do not copy them. */
    data: Uint8Array;
    /** Width. */
    width: number;
    /** Height. */
    height: number;
  }
  | {
    /** Encoded image files; sample i is `paths[i]`. */
    kind: "files";
    /** Paths. */
    paths: string[];
  };

/** Everything a processor needs; structured-cloneable. */
export interface ProcessorInit {
  /** The sample source. */
  source: SourceSpec;
  /** Output size, channels, augmentation. */
  pipeline: PipelineSpec;
  /** Augmentation seed. */
  seed: number;
  /** Cache decoded images. */
  cache: boolean;
  /** Cache capacity in bytes (decoded pixels); images past it are not cached. */
  cacheBytes: number;
  /** Corrupt image policy. */
  onCorrupt: "skip" | "fail";
}

/** One batch's work: global sample indices, the epoch, and train or eval transforms. */
export interface BatchTask {
  /** Epoch (seeds augmentation). */
  epoch: number;
  /** Train (random) or eval (deterministic) pipeline. */
  train: boolean;
  /** Global sample indices. */
  indices: number[];
}

/** A processed batch slice: CHW floats of every OK sample, in task order. */
export interface BatchResult {
  /** `ok.length` slots of C·H·W floats; a skipped sample's slot is zeros. */
  images: Float32Array;
  /** 1 where the sample was decoded, 0 where it was skipped as corrupt. */
  ok: Uint8Array;
  /** Skipped samples, `path: reason`. */
  corrupt: string[];
}

/** Decodes (with an optional cache) and transforms samples. */
export class SampleProcessor {
  #init: ProcessorInit;
  #cache = new Map<number, RawImage | string>();
  #cacheBytes = 0;

  /** Creates a processor. */
  constructor(init: ProcessorInit) {
    this.#init = init;
  }

  /** Number of floats per output image. */
  get sampleSize(): number {
    const p = this.#init.pipeline;
    return p.channels * p.imageSize * p.imageSize;
  }

  /** Decoded sample `index`, or a `path: reason` string when corrupt. */
  async load(index: number): Promise<RawImage | string> {
    const hit = this.#cache.get(index);
    if (hit !== undefined) return hit;
    const src = this.#init.source;
    const channels = this.#init.pipeline.channels;
    let img: RawImage | string;
    if (src.kind === "builtin") {
      img = renderBuiltin(index, {
        seed: src.seed,
        numClasses: src.numClasses,
        size: src.size,
        channels,
      });
    } else if (src.kind === "array") {
      const n = src.width * src.height;
      return convertChannels(
        src.data.subarray(index * n, (index + 1) * n),
        { width: src.width, height: src.height, srcChannels: 1 },
        channels,
      );
    } else {
      const path = src.paths[index];
      try {
        img = await decodeImage(await host.readFile(path), channels);
      } catch (e) {
        img = `${path}: ${reasonOf(e)}`;
      }
    }
    if (this.#init.cache) {
      const bytes = typeof img === "string" ? 64 : img.data.length;
      if (this.#cacheBytes + bytes <= this.#init.cacheBytes) {
        this.#cache.set(index, img);
        this.#cacheBytes += bytes;
      }
    }
    return img;
  }

  /** Decodes and transforms a batch; throws a {@link DataError} on a corrupt image with "fail". */
  async run(task: BatchTask): Promise<BatchResult> {
    const per = this.sampleSize;
    const n = task.indices.length;
    const images = new Float32Array(n * per);
    const ok = new Uint8Array(n);
    const corrupt: string[] = [];
    for (let i = 0; i < n; i++) {
      const index = task.indices[i];
      const img = await this.load(index);
      if (typeof img === "string") {
        if (this.#init.onCorrupt === "fail") {
          throw new DataError(`corrupt or unreadable image ${img} (data.onCorrupt is "fail")`);
        }
        corrupt.push(img);
        continue;
      }
      if (task.train) {
        trainTransform(
          img,
          this.#init.pipeline,
          Rng.from(this.#init.seed, task.epoch, index),
          images,
          i * per,
        );
      } else {
        evalTransform(img, this.#init.pipeline, images, i * per);
      }
      ok[i] = 1;
    }
    return { images, ok, corrupt };
  }
}
