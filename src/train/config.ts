/**
 * Training configuration: the `TrainConfig` type, its defaults, and the YAML loader with
 * `key=value` dot-path overrides. Every value is validated (zod, private to this module);
 * an error names the file, line and path, e.g.
 * `configs/resnet18.yaml:12 trainer.maxEpochs: expected a positive integer, got "ten"`.
 * Unknown keys are errors.
 *
 * Optimizer and scheduler settings have their own sections (as in the issue), but they are
 * handed to the model's constructor: like Lightning's `configure_optimizers`, the model
 * owns AdamW and the warmup + cosine schedule, so they are part of its hyperparameters.
 *
 * @module
 */

import { z } from "zod";
import { isMap, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument } from "yaml";
import { stringify as stringifyYaml } from "yaml";
import { type DataConfig, DEFAULT_DATA_CONFIG } from "../data/config.ts";

/** The `model` section. */
export interface ModelConfig {
  /** Registered model name (`resnet18`, `resnet34`, `resnet50`, …). */
  name: string;
  /** CIFAR-style stem for small images: 3×3 stride-1 first conv and no max-pool. */
  smallInput: boolean;
  /** Input channels of the first conv; null takes `data.channels`. */
  inChannels: number | null;
  /** CrossEntropyLoss label smoothing ε in [0, 1). */
  labelSmoothing: number;
}

/** The `optimizer` section: AdamW (betas 0.9/0.999, eps 1e-8 as in PyTorch). */
export interface AdamWConfig {
  /** The optimizer; only AdamW exists. */
  name: "adamw";
  /** Base learning rate (the peak, reached after warmup). */
  learningRate: number;
  /** Decoupled weight decay. */
  weightDecay: number;
}

/** The `scheduler` section: LinearLR warmup then CosineAnnealingLR, stepped per epoch. */
export interface SchedulerConfig {
  /** Warmup epochs (0: no warmup — unlike PyTorch's SequentialLR, see REFERENCE.md). */
  warmupEpochs: number;
  /** LinearLR start factor of the warmup. */
  warmupStartFactor: number;
  /** Cosine floor as a fraction of the base learning rate (eta_min = lr · factor). */
  cosineEtaMinFactor: number;
}

/** How the progress of a run is shown. */
export type ProgressMode = "auto" | "bar" | "lines" | "none";

/** The `trainer` section (Lightning `Trainer` arguments, camelCase). */
export interface TrainerConfig {
  /** Epochs to train. */
  maxEpochs: number;
  /**
   * Training batches per epoch: null for all, an integer for a count, a fraction in (0, 1)
   * for a share. NOTE: unlike Lightning, `1` means one batch (JS has no 1.0 vs 1).
   */
  limitTrainBatches: number | null;
  /** Validation batches per epoch (same forms as `limitTrainBatches`). */
  limitValBatches: number | null;
  /** Test batches (same forms as `limitTrainBatches`). */
  limitTestBatches: number | null;
  /**
   * 0: off. n > 0: one epoch of n train, n val and n test batches, no checkpoints
   * (Lightning's `fast_dev_run=n`); logs are still written.
   */
  fastDevRun: number;
  /** Gradient clipping threshold; null disables clipping. */
  gradientClipVal: number | null;
  /** `norm`: scale all gradients so their global L2 norm is at most the threshold; `value`: clamp. */
  gradientClipAlgorithm: "norm" | "value";
  /** Batches whose gradients are summed (loss / k) before one optimizer step. */
  accumulateGradBatches: number;
  /** Step metrics are read back and logged every n optimizer steps (the only per-step readback). */
  logEveryNSteps: number;
  /** Run validation every n epochs (the last epoch always validates). */
  checkValEveryNEpoch: number;
  /** Progress display: auto picks `bar` on a TTY and `lines` otherwise. */
  progress: ProgressMode;
  /** Test the best checkpoint after fitting. */
  test: boolean;
}

/** The `logging` section: where the run folder is and what is written there. */
export interface LoggingConfig {
  /** Root of all runs. */
  rootDir: string;
  /** Experiment name: runs go to `rootDir/name/version_N`. */
  name: string;
  /** Fixed version folder name; null picks the next free `version_N`. */
  version: string | null;
  /** Write TensorBoard event files. */
  tensorboard: boolean;
  /** Write `metrics.csv` (Lightning CSVLogger layout). */
  csv: boolean;
  /** Write `metrics.jsonl`, one JSON object per logging event. */
  jsonl: boolean;
  /** Write `report.html` at the end. */
  report: boolean;
}

/** The `checkpoint` section (Lightning `ModelCheckpoint`). */
export interface CheckpointConfig {
  /** Metric that decides the best checkpoint. */
  monitor: string;
  /** Whether larger (`max`) or smaller (`min`) values of `monitor` are better. */
  mode: "max" | "min";
  /** Keep `last` (written after every validated epoch). */
  saveLast: boolean;
  /** Keep `best`. */
  saveBest: boolean;
}

/** The `earlyStopping` section (Lightning `EarlyStopping`). */
export interface EarlyStoppingConfig {
  /** Metric to watch. */
  monitor: string;
  /** Validations without improvement before stopping. */
  patience: number;
  /** Smallest change that counts as an improvement. */
  minDelta: number;
  /** Whether larger (`max`) or smaller (`min`) is better. */
  mode: "max" | "min";
}

/** A complete, validated training configuration. */
export interface TrainConfig {
  /** One seed for everything: weight init, shuffling, augmentation. */
  seed: number;
  /** The model. */
  model: ModelConfig;
  /** The data. */
  data: DataConfig;
  /** AdamW settings (passed to the model, which owns the optimizer). */
  optimizer: AdamWConfig;
  /** LR schedule settings (passed to the model). */
  scheduler: SchedulerConfig;
  /** The training loop. */
  trainer: TrainerConfig;
  /** The run folder and its files. */
  logging: LoggingConfig;
  /** Checkpoints. */
  checkpoint: CheckpointConfig;
  /** Early stopping; null disables it. */
  earlyStopping: EarlyStoppingConfig | null;
  /** Checkpoint (its `.json` state file or folder) to resume from; null starts afresh. */
  resume: string | null;
}

/** Defaults of every field. */
export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  seed: 42,
  model: { name: "resnet18", smallInput: true, inChannels: null, labelSmoothing: 0.1 },
  data: DEFAULT_DATA_CONFIG,
  optimizer: { name: "adamw", learningRate: 1e-4, weightDecay: 1e-4 },
  scheduler: { warmupEpochs: 5, warmupStartFactor: 1e-3, cosineEtaMinFactor: 0.05 },
  trainer: {
    maxEpochs: 100,
    limitTrainBatches: null,
    limitValBatches: null,
    limitTestBatches: null,
    fastDevRun: 0,
    gradientClipVal: null,
    gradientClipAlgorithm: "norm",
    accumulateGradBatches: 1,
    logEveryNSteps: 50,
    checkValEveryNEpoch: 1,
    progress: "auto",
    test: true,
  },
  logging: {
    rootDir: "runs",
    name: "default",
    version: null,
    tensorboard: true,
    csv: true,
    jsonl: true,
    report: true,
  },
  checkpoint: { monitor: "val/acc_top1", mode: "max", saveLast: true, saveBest: true },
  earlyStopping: null,
  resume: null,
};

/** Defaults of an `earlyStopping` section given in a config. */
export const DEFAULT_EARLY_STOPPING: EarlyStoppingConfig = {
  monitor: "val/acc_top1",
  patience: 3,
  minDelta: 0,
  mode: "max",
};

// ---------------------------------------------------------------------------------------
// Validation (zod stays private: JSR's doc lint rejects inferred zod types in public API).

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list (${JSON.stringify(v)})`;
  if (typeof v === "object") return "a mapping";
  return String(v);
}

const expect = (what: string) => (iss: { input?: unknown }) =>
  `expected ${what}, got ${show(iss.input)}`;

function num(what: string, check: (v: number) => boolean): z.ZodType<number> {
  return z.any().superRefine((v, ctx) => {
    if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) {
      ctx.addIssue({ code: "custom", message: `expected ${what}, got ${show(v)}` });
    }
  }) as unknown as z.ZodType<number>;
}

const posInt = () => num("a positive integer", (v) => Number.isInteger(v) && v > 0);
const nonNegInt = () => num("an integer >= 0", (v) => Number.isInteger(v) && v >= 0);
const anyInt = () => num("an integer", (v) => Number.isInteger(v));
const posNum = () => num("a positive number", (v) => v > 0);
const nonNegNum = () => num("a number >= 0", (v) => v >= 0);
const unit = () => num("a number in [0, 1]", (v) => v >= 0 && v <= 1);
const unitOpen = () => num("a number in [0, 1)", (v) => v >= 0 && v < 1);
const bool = () => z.boolean({ error: expect("true or false") });
const str = () =>
  z.string({ error: expect("a string") }).min(1, { error: expect("a non-empty string") });
const oneOf = <T extends string>(vals: readonly T[]) =>
  z.enum(vals as unknown as [T, ...T[]], {
    error: expect(`one of ${vals.map((v) => JSON.stringify(v)).join(", ")}`),
  });
const limit = () =>
  num(
    "null, a batch count (integer >= 1) or a fraction in (0, 1)",
    (v) => (Number.isInteger(v) && v >= 1) || (v > 0 && v < 1),
  ).nullable();
const obj = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(shape, { error: expect("a mapping") });
const pair = () => z.tuple([z.number(), z.number()], { error: expect("a list of two numbers") });

function schema(models: readonly string[] | undefined) {
  const modelName = models?.length ? oneOf(models) : str();
  return obj({
    seed: anyInt(),
    model: obj({
      name: modelName,
      smallInput: bool(),
      inChannels: posInt().nullable(),
      labelSmoothing: unitOpen(),
    }),
    data: obj({
      source: oneOf(["builtin", "imagefolder", "idx"] as const),
      root: str().nullable(),
      imageSize: posInt(),
      channels: z.union([z.literal(1), z.literal(3)], { error: expect("1 or 3") }),
      batchSize: posInt(),
      dropLast: bool(),
      numWorkers: nonNegInt(),
      prefetch: nonNegInt(),
      valFraction: unitOpen(),
      testFraction: unitOpen(),
      onCorrupt: oneOf(["skip", "fail"] as const),
      cache: bool(),
      builtin: obj({
        numClasses: num("an integer >= 2", (v) => Number.isInteger(v) && v >= 2),
        trainSize: posInt(),
        valSize: posInt(),
        testSize: posInt(),
      }),
      augment: obj({
        randomResizedCrop: obj({ scale: pair(), ratio: pair() }).nullable(),
        randomCrop: obj({ padding: nonNegInt() }).nullable(),
        hflip: unit(),
        resize: posInt().nullable(),
        mean: z.array(z.number(), { error: expect("a list of numbers") }).min(1),
        std: z.array(posNum(), { error: expect("a list of positive numbers") }).min(1),
      }),
    }),
    optimizer: obj({
      name: oneOf(["adamw"] as const),
      learningRate: posNum(),
      weightDecay: nonNegNum(),
    }),
    scheduler: obj({
      warmupEpochs: nonNegInt(),
      warmupStartFactor: num("a number in (0, 1]", (v) => v > 0 && v <= 1),
      cosineEtaMinFactor: unit(),
    }),
    trainer: obj({
      maxEpochs: posInt(),
      limitTrainBatches: limit(),
      limitValBatches: limit(),
      limitTestBatches: limit(),
      fastDevRun: nonNegInt(),
      gradientClipVal: posNum().nullable(),
      gradientClipAlgorithm: oneOf(["norm", "value"] as const),
      accumulateGradBatches: posInt(),
      logEveryNSteps: posInt(),
      checkValEveryNEpoch: posInt(),
      progress: oneOf(["auto", "bar", "lines", "none"] as const),
      test: bool(),
    }),
    logging: obj({
      rootDir: str(),
      name: str(),
      version: str().nullable(),
      tensorboard: bool(),
      csv: bool(),
      jsonl: bool(),
      report: bool(),
    }),
    checkpoint: obj({
      monitor: str(),
      mode: oneOf(["max", "min"] as const),
      saveLast: bool(),
      saveBest: bool(),
    }),
    earlyStopping: obj({
      monitor: str(),
      patience: nonNegInt(),
      minDelta: nonNegNum(),
      mode: oneOf(["max", "min"] as const),
    }).nullable(),
    resume: str().nullable(),
  });
}

/** Raised for an invalid config; `message` is the one-line `file:line path: problem` form. */
export class ConfigError extends Error {
  /** The dotted path of the offending value ("" for the whole file). */
  readonly path: string;
  /** Creates the error. */
  constructor(message: string, path: string) {
    // One line even when a key or an override quoted in it spans lines.
    super(message.replace(/\s*\n\s*/g, " "));
    this.name = "ConfigError";
    this.path = path;
  }
}

/** Options of `loadConfig` / `resolveConfig`. */
export interface LoadConfigOptions {
  /** Registered model names; when given, `model.name` must be one of them. */
  models?: readonly string[];
  /** Check that `data.root` exists when the source needs it (default true). */
  checkPaths?: boolean;
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep-merges `over` onto `base` (mappings merge, everything else replaces). */
function merge(base: unknown, over: unknown): unknown {
  if (isPlain(base) && isPlain(over)) {
    const out: Plain = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  return structuredClone(over);
}

/** Where a value came from: a file position or an override. */
type Locate = (path: readonly (string | number)[]) => string;

function pathStr(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

function validate(raw: unknown, locate: Locate, opts: LoadConfigOptions): TrainConfig {
  // A present `earlyStopping` mapping gets its defaults; `null`/absent disables it.
  const withDefaults = merge(DEFAULT_TRAIN_CONFIG, raw) as Plain;
  if (isPlain(raw) && isPlain(raw.earlyStopping)) {
    withDefaults.earlyStopping = merge(DEFAULT_EARLY_STOPPING, raw.earlyStopping);
  }
  const r = schema(opts.models).safeParse(withDefaults);
  if (!r.success) {
    const iss = r.error.issues[0];
    let path = iss.path as PropertyKey[];
    let msg = iss.message;
    if (iss.code === "unrecognized_keys") {
      const key = iss.keys[0];
      path = [...path, key];
      const parent = iss.path.reduce<unknown>(
        (o, k) => (isPlain(o) ? o[k as string] : undefined),
        DEFAULT_TRAIN_CONFIG,
      );
      const known = isPlain(parent) ? Object.keys(parent) : [];
      msg = `unknown key${known.length ? ` (known: ${known.join(", ")})` : ""}`;
    }
    const p = path.filter((k) => typeof k === "string" || typeof k === "number") as (
      | string
      | number
    )[];
    throw new ConfigError(`${locate(p)} ${pathStr(p)}: ${msg}`, pathStr(p));
  }
  const cfg = r.data as TrainConfig;
  const d = cfg.data;
  // As the data module: one value per channel, one for all, or 3 averaged for grayscale.
  for (const f of ["mean", "std"] as const) {
    const n = d.augment[f].length;
    if (n !== d.channels && n !== 1 && d.channels !== 1) {
      const p = ["data", "augment", f];
      throw new ConfigError(
        `${locate(p)} ${
          pathStr(p)
        }: expected 1 or ${d.channels} values (data.channels is ${d.channels}), got ${n}`,
        pathStr(p),
      );
    }
  }
  if (d.source !== "builtin") {
    const p = ["data", "root"];
    if (d.root === null) {
      throw new ConfigError(
        `${
          locate(["data", "source"])
        } data.root: expected a folder for source "${d.source}", got null`,
        "data.root",
      );
    }
    if (opts.checkPaths ?? true) {
      let ok = false;
      try {
        ok = Deno.statSync(d.root).isDirectory;
      } catch { /* reported below */ }
      if (!ok) {
        throw new ConfigError(
          `${locate(p)} data.root: expected an existing folder, got "${d.root}" (not found)`,
          "data.root",
        );
      }
    }
  }
  return cfg;
}

/** Parses a `key=value` override: the value is YAML (`3`, `true`, `null`, `[1, 2]`, text). */
export function parseOverride(arg: string): { path: string[]; value: unknown } {
  const eq = arg.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError(`override "${arg}": expected key=value (e.g. trainer.maxEpochs=3)`, "");
  }
  const key = arg.slice(0, eq).trim();
  const text = arg.slice(eq + 1);
  let value: unknown;
  try {
    value = text === "" ? "" : parseYaml(text, { logLevel: "error" });
  } catch {
    value = text;
  }
  const path = key.split(".");
  if (path.some((k) => k === "")) {
    throw new ConfigError(`override "${arg}": expected a dotted key, got "${key}"`, key);
  }
  return { path, value };
}

function setPath(obj: Plain, path: readonly string[], value: unknown): void {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    if (!isPlain(o[k])) o[k] = {};
    o = o[k] as Plain;
  }
  o[path[path.length - 1]] = value;
}

/**
 * Validates a config given as YAML text (with `file` naming it in errors) plus
 * `key=value` overrides applied in order.
 */
export function resolveConfig(
  text: string,
  file: string,
  options: LoadConfigOptions & { overrides?: readonly string[] } = {},
): TrainConfig {
  const lc = new LineCounter();
  // logLevel "error": the yaml package would print its warnings (an unresolved `!tag`, say)
  // to stderr; here they are errors that name the line.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, logLevel: "error" });
  if (doc.errors.length || doc.warnings.length) {
    const e = doc.errors[0] ?? doc.warnings[0];
    const line = lc.linePos(e.pos[0]).line;
    throw new ConfigError(`${file}:${line} ${e.message.split("\n")[0]}`, "");
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  if (!isPlain(raw)) {
    throw new ConfigError(`${file}:1 expected a mapping at the top level, got ${show(raw)}`, "");
  }
  const overridden = new Map<string, string>();
  for (const arg of options.overrides ?? []) {
    const { path, value } = parseOverride(arg);
    setPath(raw, path, value);
    overridden.set(path.join("."), arg);
  }
  const locate: Locate = (path) => {
    for (let n = path.length; n > 0; n--) {
      const o = overridden.get(path.slice(0, n).join("."));
      if (o !== undefined) return `override ${o}:`;
    }
    // The deepest node of the path present in the file gives the line.
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as unknown;
      const range = nodeRange(node) ?? pairKeyRange(doc.contents, path.slice(0, n));
      if (range) return `${file}:${lc.linePos(range).line}`;
    }
    return `${file}:`;
  };
  return validate(raw, locate, options);
}

function nodeRange(node: unknown): number | null {
  if (isScalar(node) || isMap(node) || isSeq(node)) return node.range?.[0] ?? null;
  return null;
}

/** The position of the key of `path` (for a value that is null or a collection). */
function pairKeyRange(root: unknown, path: readonly (string | number)[]): number | null {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    if (!isMap(node)) return null;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[i]));
    if (!pair) return null;
    if (i === path.length - 1) return isScalar(pair.key) ? pair.key.range?.[0] ?? null : null;
    node = pair.value;
  }
  return null;
}

/** Reads and validates a YAML config file with overrides (see `resolveConfig`). */
export function loadConfig(
  file: string,
  overrides: readonly string[] = [],
  options: LoadConfigOptions = {},
): TrainConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new ConfigError(
      `${file}: cannot read the config (${e instanceof Error ? e.message : e})`,
      "",
    );
  }
  return resolveConfig(text, file, { ...options, overrides });
}

/** The config as YAML (written into the run folder as `config.yaml`). */
export function configToYaml(cfg: TrainConfig): string {
  return stringifyYaml(cfg, { lineWidth: 0 });
}
