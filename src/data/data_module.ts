/**
 * `ClassificationDataModule`: builds train/val/test splits from the configured source and hands
 * out their loaders, class names and class weights (Lightning's LightningDataModule shape).
 *
 * @module
 */

import { BUILTIN_CLASSES, builtinLabel } from "./builtin.ts";
import { checkWith } from "../config/field.ts";
import type { DataConfig } from "./config.ts";
import { DATA_SCHEMA } from "./options.ts";
import { DataError } from "./errors.ts";
import { FASHION_MNIST_CLASSES, findIdxFile, readIdxImages, readIdxLabels } from "./idx.ts";
import { isDir, scanSplit } from "./image_folder.ts";
import { type BatchExecutor, DataLoader, InlineExecutor, WorkerPool } from "./loader.ts";
import { permutation, Rng } from "./rng.ts";
import type { ProcessorInit, SourceSpec } from "./source.ts";

/** Options of {@link ClassificationDataModule}. */
export interface DataModuleOptions {
  /** Seed of shuffling, augmentation, split carving and the built-in images (default 0). */
  seed?: number;
  /** Receives one-line warnings (default `console.warn`). */
  warn?: (message: string) => void;
}

/** Decoded-image cache capacity over all workers, in bytes. */
export const CACHE_BYTES = 1024 * 1024 * 1024;

/** A split: global sample indices and their labels. */
interface Split {
  indices: Int32Array;
  labels: Int32Array;
}

/** A deep-partial data config. */
export type PartialDataConfig = Partial<Omit<DataConfig, "builtin" | "augment">> & {
  /** Built-in dataset fields to override. */
  builtin?: Partial<DataConfig["builtin"]>;
  /** Augmentation fields to override. */
  augment?: Partial<DataConfig["augment"]>;
};

/**
 * A complete data config from `partial`: missing fields take their defaults (declared once, in
 * `options.ts`), and every field is checked; throws a {@link DataError} naming the first bad one.
 */
export function resolveDataConfig(partial: PartialDataConfig = {}): DataConfig {
  return checkWith(DATA_SCHEMA, partial, dataError);
}

function dataError(path: string, message: string): DataError {
  return new DataError(`data.${path}: ${message}`);
}

/**
 * Checks every field of a data config, and the checks across fields (the same schema as the
 * training config's `data` section); throws a {@link DataError} naming the first bad one.
 */
export function validateDataConfig(c: DataConfig): void {
  checkWith(DATA_SCHEMA, c, dataError);
}

/**
 * Stratified, seeded carving: for each class, a seeded permutation of its samples puts the first
 * `round(n_c·fraction)` of them into the carved set.
 */
function carve(split: Split, fraction: number, rng: Rng): { rest: Split; carved: Split } {
  if (fraction <= 0) {
    return { rest: split, carved: { indices: new Int32Array(0), labels: new Int32Array(0) } };
  }
  const byClass = new Map<number, number[]>();
  split.labels.forEach((l, i) => {
    if (!byClass.has(l)) byClass.set(l, []);
    byClass.get(l)!.push(i);
  });
  const take = new Uint8Array(split.indices.length);
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = byClass.get(cls)!;
    const perm = permutation(members.length, rng);
    const k = Math.round(members.length * fraction);
    for (let i = 0; i < k; i++) take[members[perm[i]]] = 1;
  }
  const pick = (want: number): Split => {
    const idx: number[] = [];
    const lab: number[] = [];
    take.forEach((t, i) => {
      if (t === want) {
        idx.push(split.indices[i]);
        lab.push(split.labels[i]);
      }
    });
    return { indices: Int32Array.from(idx), labels: Int32Array.from(lab) };
  };
  return { rest: pick(0), carved: pick(1) };
}

function range(start: number, n: number, label: (i: number) => number): Split {
  const indices = Int32Array.from({ length: n }, (_, i) => start + i);
  return { indices, labels: indices.map(label) };
}

/**
 * The class count of an IDX data set from its label files, checked: Fashion-MNIST's labels
 * must lie in 0..9; otherwise the classes are 0..max(9, largest label), and every class above
 * 9 must have a sample, so that one stray byte (say 255) cannot silently make a 256-class
 * problem. Names the file and index of the offending label.
 */
function checkIdxLabels(files: [string, Uint8Array][], fashionRoot: string | null): number {
  let max = 0;
  let [file, index] = ["", 0];
  const counts = new Array<number>(256).fill(0);
  for (const [path, labels] of files) {
    for (let i = 0; i < labels.length; i++) {
      counts[labels[i]]++;
      if (labels[i] > max) [max, file, index] = [labels[i], path, i];
    }
  }
  if (fashionRoot !== null && max >= 10) {
    throw new DataError(
      `IDX labels in ${fashionRoot}: label ${max} (${file} index ${index}) outside Fashion-MNIST's 0..9`,
    );
  }
  const empty = counts.findIndex((c, k) => k >= 10 && k < max && c === 0);
  if (empty >= 0) {
    throw new DataError(
      `IDX label file ${file}: label ${max} at index ${index} leaves class ${empty} without any sample; expected labels 0..C-1 with every class above 9 present`,
    );
  }
  return Math.max(10, max + 1);
}

/**
 * The data of a classification run: splits, loaders, class names and class weights.
 *
 * ```ts
 * const dm = new ClassificationDataModule(resolveDataConfig({ numWorkers: 0 }), { seed: 1 });
 * await dm.setup();
 * for await (const { images, labels } of dm.trainLoader()) { images.dispose(); labels.dispose(); }
 * dm.dispose();
 * ```
 */
export class ClassificationDataModule {
  /** The (validated) config. */
  readonly config: DataConfig;
  /** The seed of everything random here. */
  readonly seed: number;
  #warn: (message: string) => void;
  #classNames: string[] | null = null;
  #splits: { train: Split; val: Split; test: Split } | null = null;
  #source: SourceSpec | null = null;
  #executor: BatchExecutor | null = null;
  #loaders = new Map<string, DataLoader>();
  #corrupt = new Set<string>();
  #reported = 0;

  /** Creates the module; nothing is read until {@link setup}. */
  constructor(config: DataConfig, opts: DataModuleOptions = {}) {
    validateDataConfig(config);
    this.config = config;
    this.seed = opts.seed ?? 0;
    this.#warn = opts.warn ?? ((m) => console.warn(m));
  }

  /** Reads the source (folder scan, IDX files or the built-in generator) and builds the splits. */
  async setup(): Promise<void> {
    if (this.#splits) return;
    const c = this.config;
    if (c.source === "builtin") this.#setupBuiltin();
    else if (c.source === "idx") await this.#setupIdx(c.root!);
    else await this.#setupFolder(c.root!);
    const n = this.#splits!.train.indices.length;
    if (c.dropLast && n < c.batchSize) {
      this.#warn(
        `data: the train split has ${n} images, fewer than data.batchSize ${c.batchSize} with ` +
          `data.dropLast: an epoch has no training batches`,
      );
    }
  }

  #setupBuiltin(): void {
    const b = this.config.builtin;
    const lab = (i: number): number => builtinLabel(i, b.numClasses);
    this.#classNames = BUILTIN_CLASSES.slice(0, b.numClasses);
    this.#source = {
      kind: "builtin",
      seed: this.seed,
      numClasses: b.numClasses,
      size: this.config.imageSize,
    };
    this.#splits = {
      train: range(0, b.trainSize, lab),
      val: range(b.trainSize, b.valSize, lab),
      test: range(b.trainSize + b.valSize, b.testSize, lab),
    };
  }

  async #setupIdx(root: string): Promise<void> {
    const need = async (prefix: "train" | "t10k", kind: "images-idx3" | "labels-idx1") => {
      const p = await findIdxFile(root, prefix, kind);
      if (p === null && prefix === "train") {
        throw new DataError(
          `IDX folder ${root}: no ${prefix}-${kind}-ubyte[.gz] (expected MNIST-style file names)`,
        );
      }
      return p;
    };
    const trImgPath = (await need("train", "images-idx3"))!;
    const trLabPath = (await need("train", "labels-idx1"))!;
    const teImgPath = await need("t10k", "images-idx3");
    const teLabPath = await need("t10k", "labels-idx1");
    if ((teImgPath === null) !== (teLabPath === null)) {
      throw new DataError(
        `IDX folder ${root}: found ${teImgPath ?? teLabPath} without its ${
          teImgPath ? "labels" : "images"
        } file`,
      );
    }
    const trImg = await readIdxImages(trImgPath);
    const trLab = await readIdxLabels(trLabPath);
    if (trImg.count !== trLab.length) {
      throw new DataError(
        `IDX file ${trLabPath}: ${trLab.length} labels but ${trImgPath} has ${trImg.count} images`,
      );
    }
    let teImg = null;
    let teLab: Uint8Array = new Uint8Array(0);
    if (teImgPath && teLabPath) {
      teImg = await readIdxImages(teImgPath);
      teLab = await readIdxLabels(teLabPath);
      if (teImg.count !== teLab.length) {
        throw new DataError(
          `IDX file ${teLabPath}: ${teLab.length} labels but ${teImgPath} has ${teImg.count} images`,
        );
      }
      if (teImg.width !== trImg.width || teImg.height !== trImg.height) {
        throw new DataError(
          `IDX file ${teImgPath}: images are ${teImg.height}x${teImg.width}, train's are ${trImg.height}x${trImg.width}`,
        );
      }
    }
    const fashion = /fashion/i.test(root);
    const numClasses = checkIdxLabels(
      [[trLabPath, trLab], [teLabPath ?? "", teLab]],
      fashion ? root : null,
    );
    this.#classNames = fashion
      ? [...FASHION_MNIST_CLASSES]
      : Array.from({ length: numClasses }, (_, i) => String(i));
    const total = trImg.count + (teImg?.count ?? 0);
    const n = trImg.width * trImg.height;
    // Shared so workers read the pixels without a copy (a page that is not cross-origin
    // isolated has no SharedArrayBuffer; it decodes inline anyway).
    const data = new Uint8Array(
      typeof SharedArrayBuffer === "function"
        ? new SharedArrayBuffer(total * n)
        : new ArrayBuffer(total * n),
    );
    data.set(trImg.data);
    if (teImg) data.set(teImg.data, trImg.count * n);
    this.#source = { kind: "array", data, width: trImg.width, height: trImg.height };
    const all = new Int32Array(total);
    all.set(trLab);
    all.set(teLab, trImg.count);
    let train = range(0, trImg.count, (i) => all[i]);
    let test: Split;
    if (teImg) {
      test = range(trImg.count, teImg.count, (i) => all[i]);
    } else {
      const t = carve(train, this.config.testFraction, Rng.from(this.seed, 0x7e57));
      train = t.rest;
      test = t.carved;
    }
    const v = carve(train, this.config.valFraction, Rng.from(this.seed, 0x5a1));
    this.#splits = { train: v.rest, val: v.carved, test };
  }

  async #setupFolder(root: string): Promise<void> {
    const r = root.replace(/\/+$/, "");
    if (!(await isDir(`${r}/train`))) {
      throw new DataError(
        `imagefolder root ${r}: no train folder (expected ${r}/train/<class>/*.png|jpg|jpeg)`,
      );
    }
    const train = await scanSplit(`${r}/train`, this.#warn);
    if (train.classes.size === 0) {
      throw new DataError(`imagefolder ${r}/train: no class folders`);
    }
    const names = [...train.classes.keys()].sort();
    const classOf = new Map(names.map((n, i) => [n, i]));
    const paths: string[] = [];
    const build = (classes: Map<string, string[]>, dir: string): Split => {
      const idx: number[] = [];
      const lab: number[] = [];
      for (const name of [...classes.keys()].sort()) {
        const label = classOf.get(name);
        if (label === undefined) {
          throw new DataError(
            `class folder ${dir}/${name} is not a class of ${r}/train (train classes: ${
              names.join(", ")
            })`,
          );
        }
        for (const p of classes.get(name)!) {
          idx.push(paths.length);
          lab.push(label);
          paths.push(p);
        }
      }
      return { indices: Int32Array.from(idx), labels: Int32Array.from(lab) };
    };
    let trainSplit = build(train.classes, `${r}/train`);
    const optional = async (name: "val" | "test"): Promise<Split | null> => {
      const dir = `${r}/${name}`;
      if (!(await isDir(dir))) return null;
      const s = await scanSplit(dir, this.#warn);
      if (s.classes.size === 0) throw new DataError(`imagefolder ${dir}: no class folders`);
      return build(s.classes, dir);
    };
    let val = await optional("val");
    let test = await optional("test");
    if (test === null) {
      const t = carve(trainSplit, this.config.testFraction, Rng.from(this.seed, 0x7e57));
      trainSplit = t.rest;
      test = t.carved;
    }
    if (val === null) {
      const v = carve(trainSplit, this.config.valFraction, Rng.from(this.seed, 0x5a1));
      trainSplit = v.rest;
      val = v.carved;
    }
    this.#classNames = names;
    this.#source = { kind: "files", paths };
    this.#splits = { train: trainSplit, val, test };
  }

  #ready(): { train: Split; val: Split; test: Split } {
    if (!this.#splits) throw new Error("ClassificationDataModule: call setup() first");
    return this.#splits;
  }

  /** Number of classes. */
  get numClasses(): number {
    this.#ready();
    return this.#classNames!.length;
  }

  /** Class names in label order (image folders: sorted folder names). */
  get classNames(): string[] {
    this.#ready();
    return [...this.#classNames!];
  }

  /** Samples per split. */
  get sizes(): { train: number; val: number; test: number } {
    const s = this.#ready();
    return {
      train: s.train.indices.length,
      val: s.val.indices.length,
      test: s.test.indices.length,
    };
  }

  /** Labels of a split, in split order (for checks and statistics). */
  labels(split: "train" | "val" | "test"): Int32Array {
    return this.#ready()[split].labels.slice();
  }

  /** `path: reason` of every image skipped as corrupt so far. */
  get corrupt(): string[] {
    return [...this.#corrupt];
  }

  /**
   * Inverse class frequency over the train split, normalised to mean 1 over the classes present:
   * with n_c the train samples of class c and P the set of classes with n_c > 0,
   * w_c = (1/n_c) / ((1/|P|) · Σ_{k∈P} 1/n_k). Balanced data gives all ones. A class with
   * n_c = 0 gets w_c = 0 (it cannot be learned; a zero weight keeps the loss finite and makes its
   * samples not count in a weighted loss). This equals sklearn's "balanced" N/(C·n_c) up to one
   * constant factor, which a weighted-mean cross-entropy cancels.
   */
  getClassWeights(): Float32Array {
    const labels = this.#ready().train.labels;
    const C = this.numClasses;
    const counts = new Float64Array(C);
    for (const l of labels) counts[l]++;
    let sumInv = 0;
    let present = 0;
    for (const n of counts) {
      if (n > 0) {
        sumInv += 1 / n;
        present++;
      }
    }
    const w = new Float32Array(C);
    if (present === 0) return w;
    counts.forEach((n, c) => {
      w[c] = n > 0 ? 1 / n / (sumInv / present) : 0;
    });
    return w;
  }

  #exec(): BatchExecutor {
    if (this.#executor) return this.#executor;
    const c = this.config;
    const workers = c.numWorkers;
    const init: ProcessorInit = {
      source: this.#source!,
      pipeline: { imageSize: c.imageSize, channels: c.channels, augment: c.augment },
      seed: this.seed,
      cache: c.cache,
      cacheBytes: Math.floor(CACHE_BYTES / Math.max(1, workers)),
      onCorrupt: c.onCorrupt,
    };
    this.#executor = workers === 0 ? new InlineExecutor(init) : new WorkerPool(init, workers);
    return this.#executor;
  }

  #loader(name: "train" | "val" | "test"): DataLoader {
    const existing = this.#loaders.get(name);
    if (existing) return existing;
    const split = this.#ready()[name];
    const c = this.config;
    const train = name === "train";
    const loader = new DataLoader({
      indices: split.indices,
      labels: split.labels,
      batchSize: c.batchSize,
      dropLast: train ? c.dropLast : false,
      shuffle: train,
      train,
      seed: this.seed,
      prefetch: c.prefetch,
      sampleShape: [c.channels, c.imageSize, c.imageSize],
      executor: () => this.#exec(),
      numClasses: this.numClasses,
      sampleName: (i) => this.#sampleName(i),
      onCorrupt: (e) => e.forEach((x) => this.#corrupt.add(x)),
      onEnd: () => this.#reportCorrupt(),
    });
    this.#loaders.set(name, loader);
    return loader;
  }

  /** Names global sample `index` in errors: its file, or its place in the IDX/built-in data. */
  #sampleName(index: number): string {
    const src = this.#source;
    if (src?.kind === "files") return src.paths[index];
    if (src?.kind === "array") return `IDX image ${index} in ${this.config.root}`;
    return `built-in sample ${index}`;
  }

  #reportCorrupt(): void {
    if (this.#corrupt.size === this.#reported) return;
    this.#reported = this.#corrupt.size;
    const list = [...this.#corrupt];
    this.#warn(
      `data: skipped ${list.length} corrupt or unreadable image(s) (data.onCorrupt "skip"); first: ` +
        list.slice(0, 3).join("; ") + (list.length > 3 ? "; …" : ""),
    );
  }

  /** The train loader: shuffled per epoch, train augmentation, `dropLast` from the config. */
  trainLoader(): DataLoader {
    return this.#loader("train");
  }

  /** The validation loader: fixed order, eval pipeline, keeps the last batch. */
  valLoader(): DataLoader {
    return this.#loader("val");
  }

  /** The test loader: fixed order, eval pipeline, keeps the last batch. */
  testLoader(): DataLoader {
    return this.#loader("test");
  }

  /** Stops the data workers (idempotent). Loaders started afterwards start new ones. */
  dispose(): void {
    this.#executor?.dispose();
    this.#executor = null;
  }
}

/** Creates a {@link ClassificationDataModule}. */
export function createDataModule(
  config: DataConfig,
  opts: DataModuleOptions = {},
): ClassificationDataModule {
  return new ClassificationDataModule(config, opts);
}
