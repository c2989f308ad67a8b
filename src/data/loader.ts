/**
 * The data loader: seeded per-epoch shuffling, batching, and decoding/augmentation either inline
 * or in a pool of Web Workers with prefetch.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import type { Batch } from "../nn/batch.ts";
import { DataError } from "./errors.ts";
import { permutation, Rng } from "./rng.ts";
import { type BatchResult, type BatchTask, type ProcessorInit, SampleProcessor } from "./source.ts";

/** Runs batch tasks: inline or in workers. */
export interface BatchExecutor {
  /** Decodes and transforms one batch. */
  run(task: BatchTask): Promise<BatchResult>;
  /** Whether tasks run off the main thread (then the loader prefetches). */
  readonly parallel: boolean;
  /** Stops workers (if any). */
  dispose(): void;
}

/** Runs tasks on the calling thread. */
export class InlineExecutor implements BatchExecutor {
  #proc: SampleProcessor;
  /** Always false. */
  readonly parallel = false;

  /** Creates an inline executor. */
  constructor(init: ProcessorInit) {
    this.#proc = new SampleProcessor(init);
  }

  /** Decodes and transforms one batch on this thread. */
  run(task: BatchTask): Promise<BatchResult> {
    return this.#proc.run(task);
  }

  /** Nothing to stop. */
  dispose(): void {}
}

interface Pending {
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

/**
 * A pool of data workers. Sample `i` always goes to worker `i mod numWorkers`, so each worker's
 * cache holds a disjoint part of the dataset.
 */
export class WorkerPool implements BatchExecutor {
  #workers: Worker[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #failed: Error | null = null;
  #sampleSize: number;
  /** Always true. */
  readonly parallel = true;

  /** Starts `numWorkers` workers and sends each the processor settings. */
  constructor(init: ProcessorInit, numWorkers: number) {
    const p = init.pipeline;
    this.#sampleSize = p.channels * p.imageSize * p.imageSize;
    const url = new URL("./worker.ts", import.meta.url).href;
    for (let w = 0; w < numWorkers; w++) {
      const worker = new Worker(url, { type: "module" });
      worker.onmessage = (e: MessageEvent) => this.#onMessage(e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(new DataError(`data worker ${w} failed: ${e.message}`));
      };
      worker.postMessage({ type: "init", init });
      this.#workers.push(worker);
    }
  }

  #onMessage(
    msg: { id: number; result?: BatchResult; error?: string; dataError?: boolean },
  ): void {
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    if (msg.result) p.resolve(msg.result);
    else p.reject(msg.dataError ? new DataError(msg.error!) : new Error(msg.error!));
  }

  #fail(err: Error): void {
    this.#failed = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #post(w: number, task: BatchTask): Promise<BatchResult> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#workers[w].postMessage({ type: "task", id, task });
    });
  }

  /** Splits the batch among the workers by sample index and merges the results in order. */
  async run(task: BatchTask): Promise<BatchResult> {
    const W = this.#workers.length;
    const parts: number[][] = Array.from({ length: W }, () => []);
    const where: number[][] = Array.from({ length: W }, () => []);
    task.indices.forEach((idx, pos) => {
      parts[idx % W].push(idx);
      where[idx % W].push(pos);
    });
    const results = await Promise.all(
      parts.map((indices, w) =>
        indices.length ? this.#post(w, { ...task, indices }) : Promise.resolve(null)
      ),
    );
    const per = this.#sampleSize;
    const n = task.indices.length;
    const images = new Float32Array(n * per);
    const ok = new Uint8Array(n);
    const corrupt: string[] = [];
    results.forEach((r, w) => {
      if (!r) return;
      where[w].forEach((pos, k) => {
        images.set(r.images.subarray(k * per, (k + 1) * per), pos * per);
        ok[pos] = r.ok[k];
      });
      corrupt.push(...r.corrupt);
    });
    return { images, ok, corrupt };
  }

  /** Terminates the workers; pending tasks reject. */
  dispose(): void {
    this.#fail(new DataError("data workers were shut down"));
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}

/** A batch on the host, before upload. */
export interface HostBatch {
  /** `[n, C, H, W]` floats. */
  images: Float32Array;
  /** `[n]` class indices. */
  labels: Int32Array;
  /** `[n, C, H, W]`. */
  shape: [number, number, number, number];
}

/** Settings of one loader. */
export interface DataLoaderOptions {
  /** Global sample indices of this split. */
  indices: Int32Array;
  /** Label of each entry of `indices`; each must be in `[0, numClasses)` (checked here). */
  labels: Int32Array;
  /**
   * Number of classes. When given, every label must be below it; labels must be >= 0 in any
   * case. A bad label is a {@link DataError} at construction, naming the sample (`sampleName`).
   */
  numClasses?: number;
  /** Names global sample `index` in errors (a file path, say); default `sample <index>`. */
  sampleName?: (index: number) => string;
  /** Images per batch. */
  batchSize: number;
  /** Drop the last incomplete batch. */
  dropLast: boolean;
  /** Shuffle each epoch. */
  shuffle: boolean;
  /** Apply the random train pipeline (else the eval pipeline). */
  train: boolean;
  /** Shuffle seed. */
  seed: number;
  /** Batches submitted ahead of the one being consumed (worker path only). */
  prefetch: number;
  /** Per-sample `[C, H, W]`. */
  sampleShape: [number, number, number];
  /** The executor, created on first use (so loaders that are never iterated start no workers). */
  executor: () => BatchExecutor;
  /** Receives `path: reason` of samples skipped as corrupt. */
  onCorrupt?: (entries: string[]) => void;
  /** Called when an iteration over the loader ends. */
  onEnd?: () => void;
}

/**
 * Throws a {@link DataError} naming the first sample whose label is negative or, when
 * `numClasses` is given, not below it. Checked on the host once, so training never sees a label
 * that the cross-entropy kernel would turn into a NaN loss.
 */
export function checkLabels(o: {
  /** Global sample index of each label (for the error message). */
  indices: ArrayLike<number>;
  /** The labels. */
  labels: ArrayLike<number>;
  /** Number of classes (labels must be below it); omitted: only negatives are refused. */
  numClasses?: number;
  /** Names a global sample index in the error; default `sample <index>`. */
  sampleName?: (index: number) => string;
}): void {
  const C = o.numClasses;
  if (C !== undefined && !(Number.isInteger(C) && C >= 1)) {
    throw new RangeError(`DataLoader: numClasses must be an integer >= 1, got ${C}`);
  }
  const hi = C ?? 0x7fffffff;
  for (let i = 0; i < o.labels.length; i++) {
    const l = o.labels[i];
    if (Number.isInteger(l) && l >= 0 && l < hi) continue;
    const idx = o.indices[i];
    const name = o.sampleName ? o.sampleName(idx) : `sample ${idx}`;
    const why = C === undefined ? "is negative" : `is outside [0, ${C}) (${C} classes)`;
    throw new DataError(`${name}: label ${l} ${why} (position ${i} of the split)`);
  }
}

/**
 * Batches of one split: `for await (const { images, labels } of loader)`. Each iteration is one
 * epoch; the order is a permutation derived from `(seed, epoch)` only, so the same seed and
 * epoch give the same order in any run, including one resumed at epoch k after `setEpoch(k)`.
 * Each iteration uses the current epoch and then advances it by one. Batches are uploaded with
 * `Tensor.fromArray` and belong to the consumer, who disposes them.
 */
export class DataLoader implements AsyncIterable<Batch> {
  #o: DataLoaderOptions;
  #epoch = 0;
  #startBatch = 0;

  /** Creates a loader. */
  constructor(options: DataLoaderOptions) {
    if (options.indices.length !== options.labels.length) {
      throw new RangeError(
        `DataLoader: ${options.indices.length} indices but ${options.labels.length} labels`,
      );
    }
    checkLabels(options);
    this.#o = options;
  }

  /** Images per batch. */
  get batchSize(): number {
    return this.#o.batchSize;
  }

  /** Whether the last incomplete batch is dropped. */
  get dropLast(): boolean {
    return this.#o.dropLast;
  }

  /** Samples in the split. */
  get size(): number {
    return this.#o.indices.length;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.size;
    const b = this.#o.batchSize;
    return this.#o.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** The epoch the next iteration uses. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Sets the epoch of the next iteration (shuffle order and augmentation derive from it)
   * and the batch it starts at (a resume inside an epoch; the batches before it are not
   * decoded). Later iterations start at batch 0 again.
   */
  setEpoch(epoch: number, startBatch = 0): void {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`DataLoader.setEpoch: expected an integer >= 0, got ${epoch}`);
    }
    if (!Number.isInteger(startBatch) || startBatch < 0) {
      throw new RangeError(
        `DataLoader.setEpoch: expected a start batch >= 0, got ${startBatch}`,
      );
    }
    this.#epoch = epoch;
    this.#startBatch = startBatch;
  }

  /** The sample order of `epoch` (positions into the split). */
  order(epoch: number): Int32Array {
    const n = this.size;
    if (!this.#o.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return permutation(n, Rng.from(this.#o.seed, epoch, 0x5eed));
  }

  /** Iterates one epoch of host batches (no GPU); advances the epoch. */
  async *hostBatches(): AsyncGenerator<HostBatch> {
    const epoch = this.#epoch++;
    const first = this.#startBatch;
    this.#startBatch = 0;
    const o = this.#o;
    const order = this.order(epoch);
    const nb = this.length;
    const tasks: BatchTask[] = [];
    const labels: Int32Array[] = [];
    for (let b = 0; b < nb; b++) {
      const pos = order.subarray(b * o.batchSize, Math.min(order.length, (b + 1) * o.batchSize));
      tasks.push({ epoch, train: o.train, indices: Array.from(pos, (p) => o.indices[p]) });
      labels.push(Int32Array.from(pos, (p) => o.labels[p]));
    }
    if (first >= nb) {
      o.onEnd?.();
      return;
    }
    const exec = o.executor();
    const ahead = exec.parallel ? Math.max(0, o.prefetch) : 0;
    const inflight: Promise<BatchResult>[] = [];
    let next = first;
    const submit = (): void => {
      const p = exec.run(tasks[next++]);
      p.catch(() => {}); // rejections surface when awaited; silence abandoned ones
      inflight.push(p);
    };
    const [C, H, W] = o.sampleShape;
    const per = C * H * W;
    try {
      for (let b = first; b < nb; b++) {
        while (next < nb && next <= b + ahead) submit();
        const r = await inflight.shift()!;
        if (r.corrupt.length) o.onCorrupt?.(r.corrupt);
        let n = 0;
        for (const v of r.ok) n += v;
        let images = r.images;
        let lab = labels[b];
        if (n < r.ok.length) {
          images = new Float32Array(n * per);
          lab = new Int32Array(n);
          let k = 0;
          r.ok.forEach((v, i) => {
            if (!v) return;
            images.set(r.images.subarray(i * per, (i + 1) * per), k * per);
            lab[k++] = labels[b][i];
          });
        }
        if (n === 0) continue;
        yield { images, labels: lab, shape: [n, C, H, W] };
      }
    } finally {
      o.onEnd?.();
    }
  }

  /** Iterates one epoch of GPU batches; advances the epoch. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    for await (const hb of this.hostBatches()) {
      const images = Tensor.fromArray(hb.images, hb.shape);
      const labels = Tensor.fromArray(hb.labels, [hb.shape[0]], { dtype: "i32" });
      yield { images, labels };
    }
  }
}
