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
import type { DataConfig } from "../data/config.ts";
import { DATA_SCHEMA } from "../data/options.ts";
import {
  LOSS_HPARAMS,
  type LossHparams,
  OPTIMIZER_HPARAMS,
  type OptimizerHparams,
  SCHEDULER_HPARAMS,
  type SchedulerHparams,
} from "../models/hparams.ts";
import {
  anyInt,
  bool,
  clip,
  expect,
  type Fields,
  nonNegInt,
  nonNegNum,
  num,
  obj,
  oneOf,
  parseFields,
  posInt,
  posNum,
  section,
  show,
  spelledAs,
  str,
} from "../config/field.ts";
import { checkValidationMonitors } from "./config_checks.ts";
import { host } from "../platform/host.ts";

/** The `model` section (its hyperparameters are declared in `models/hparams.ts`). */
export interface ModelConfig extends LossHparams {
  /** Registered model name (`resnet18`, `resnet34`, `resnet50`, …). */
  name: string;
  /** CIFAR-style stem for small images: 3×3 stride-1 first conv and no max-pool. */
  smallInput: boolean;
  /** Input channels of the first conv; null takes `data.channels`. */
  inChannels: number | null;
  /**
   * Weights to start from: a path (.pth, .ckpt, .safetensors, a checkpoint .json), an https
   * URL or `imagenet`/`IMAGENET1K_V1`/`IMAGENET1K_V2`; null: seeded random init.
   */
  pretrained: string | null;
  /** Missing/unexpected keys and shape mismatches of `pretrained` are errors (the head may differ). */
  pretrainedStrict: boolean;
  /** Parameter-name prefixes frozen for the whole run (`conv1`, `bn1`, `layer1`, …); frozen BN stays in eval mode. */
  freeze: string[];
}

/** One `optimizer.paramGroups` entry: parameters whose name starts with `match`. */
export interface ParamGroupConfig {
  /** Parameter-name prefix (`fc`, `layer4`, …). */
  match: string;
  /** The group's learning rate (default: `optimizer.learningRate`). */
  learningRate?: number;
  /** The group's weight decay (default: `optimizer.weightDecay`). */
  weightDecay?: number;
}

/** The `optimizer` section: AdamW (betas 0.9/0.999, eps 1e-8 as in PyTorch). */
export interface AdamWConfig extends OptimizerHparams {
  /** The optimizer; only AdamW exists. */
  name: "adamw";
  /** Parameter groups; parameters no entry matches use the base values. */
  paramGroups: ParamGroupConfig[];
}

/**
 * The `scheduler` section: LinearLR warmup then CosineAnnealingLR, stepped per epoch
 * (declared in `models/hparams.ts`).
 */
export type SchedulerConfig = SchedulerHparams;

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
  /**
   * Validation batches per epoch (same forms as `limitTrainBatches`); 0 turns validation
   * off (as in Lightning): callbacks then run after each training epoch.
   */
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
  /** Epochs at the start that train the head (`fc`) only, the backbone frozen. */
  freezeBackboneEpochs: number;
  /**
   * Measured kernel choice: after the first optimizer step, time the candidate kernels of the
   * shapes seen (per-adapter cache in the user's cache folder) and keep the fastest; the run
   * records its choices in `tuning.json`, which a resume replays. `CT_TUNE=0` in the
   * environment turns it off whatever this says; so do the tests (`tests/helpers.ts`).
   * NOTE: Deno only; the web app keeps the heuristics.
   */
  tune: boolean;
  /**
   * Lightning's `precision`: "32" (also written "32-true" or 32) trains in f32; "16-mixed"
   * runs the steps under autocast (f16 conv/matmul inputs and activations, f32 accumulation,
   * f32 master weights and AdamW state) with dynamic loss scaling (`optim/grad_scaler.ts`).
   * "16-mixed" needs the adapter feature `shader-f16`.
   */
  precision: Precision;
}

/** Training precision (`trainer.precision`), in its canonical spelling. */
export type Precision = "32" | "16-mixed";

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

// ---------------------------------------------------------------------------------------
// Ranges and defaults: one schema entry per interface field above (the model hyperparameters
// and the data options are declared in `models/hparams.ts` and `data/options.ts`). zod stays
// private here: JSR's doc lint rejects inferred zod types in public API.

const limit = () =>
  num(
    "null, a batch count (integer >= 1) or a fraction in (0, 1)",
    (v) => (Number.isInteger(v) && v >= 1) || (v > 0 && v < 1),
  ).nullable();
const limitOrZero = () =>
  num(
    "null, 0 (no validation), a batch count (integer >= 1) or a fraction in (0, 1)",
    (v) => (Number.isInteger(v) && v >= 0) || (v > 0 && v < 1),
  ).nullable();

/** Lightning's spellings of the precisions we train in, mapped to the canonical ones. */
const PRECISIONS: Record<string, Precision> = {
  "32": "32",
  "32-true": "32",
  "16-mixed": "16-mixed",
};

const TRAINER_FIELDS: Fields<TrainerConfig> = {
  maxEpochs: posInt().default(100),
  limitTrainBatches: limit().default(null),
  limitValBatches: limitOrZero().default(null),
  limitTestBatches: limit().default(null),
  fastDevRun: nonNegInt().default(0),
  gradientClipVal: posNum().nullable().default(null),
  gradientClipAlgorithm: oneOf(["norm", "value"] as const).default("norm"),
  accumulateGradBatches: posInt().default(1),
  logEveryNSteps: posInt().default(50),
  checkValEveryNEpoch: posInt().default(1),
  progress: oneOf(["auto", "bar", "lines", "none"] as const).default("auto"),
  test: bool().default(true),
  freezeBackboneEpochs: nonNegInt().default(0),
  tune: bool().default(true),
  precision: spelledAs(PRECISIONS).default("32"),
};

const LOGGING_FIELDS: Fields<LoggingConfig> = {
  rootDir: str().default("runs"),
  name: str().default("default"),
  version: str().nullable().default(null),
  tensorboard: bool().default(true),
  csv: bool().default(true),
  jsonl: bool().default(true),
  report: bool().default(true),
};

const CHECKPOINT_FIELDS: Fields<CheckpointConfig> = {
  monitor: str().default("val/acc_top1"),
  mode: oneOf(["max", "min"] as const).default("max"),
  saveLast: bool().default(true),
  saveBest: bool().default(true),
};

const EARLY_STOPPING_FIELDS: Fields<EarlyStoppingConfig> = {
  monitor: str().default("val/acc_top1"),
  patience: nonNegInt().default(3),
  minDelta: nonNegNum().default(0),
  mode: oneOf(["max", "min"] as const).default("max"),
};

/** The whole config; `models` (registered names), when given, restricts `model.name`. */
function schema(models: readonly string[] | undefined): z.ZodType<TrainConfig> {
  const fields: Fields<TrainConfig> = {
    seed: anyInt().default(42),
    model: section<ModelConfig>({
      name: (models?.length ? oneOf(models) : str()).default("resnet18"),
      smallInput: bool().default(true),
      inChannels: posInt().nullable().default(null),
      ...LOSS_HPARAMS,
      pretrained: str().nullable().default(null),
      pretrainedStrict: bool().default(true),
      freeze: z.array(str(), { error: expect("a list of name prefixes") }).default([]),
    }),
    data: DATA_SCHEMA.prefault({}),
    optimizer: section<AdamWConfig>({
      name: oneOf(["adamw"] as const).default("adamw"),
      paramGroups: z.array(
        obj<ParamGroupConfig>({
          match: str(),
          learningRate: nonNegNum().optional(),
          weightDecay: nonNegNum().optional(),
        }),
        { error: expect("a list of {match, learningRate?, weightDecay?}") },
      ).default([]),
      ...OPTIMIZER_HPARAMS,
    }),
    scheduler: section(SCHEDULER_HPARAMS),
    trainer: section(TRAINER_FIELDS),
    logging: section(LOGGING_FIELDS),
    checkpoint: section(CHECKPOINT_FIELDS),
    // Absent or null disables early stopping; a mapping gets the defaults of its fields.
    earlyStopping: obj(EARLY_STOPPING_FIELDS).nullable().default(null),
    resume: str().nullable().default(null),
  };
  return obj(fields);
}

/** Defaults of every field (built by the schema from an empty config). */
export const DEFAULT_TRAIN_CONFIG: TrainConfig = schema(undefined).parse({});

/** Defaults of an `earlyStopping` section given in a config. */
export const DEFAULT_EARLY_STOPPING: EarlyStoppingConfig = obj(EARLY_STOPPING_FIELDS).parse({});

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

/** Where a problem is: the first of its paths that an override set, else one in the file. */
type LocateAny = (paths: readonly (readonly (string | number)[])[]) => string;

function pathStr(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

function validate(raw: unknown, locate: LocateAny, opts: LoadConfigOptions): TrainConfig {
  const r = parseFields(schema(opts.models), raw);
  if (!r.ok) {
    const { path, related, message } = r.problem;
    throw new ConfigError(
      `${locate([path, ...related])} ${pathStr(path)}: ${message}`,
      pathStr(path),
    );
  }
  const cfg = r.value;
  const issue = checkValidationMonitors(cfg);
  if (issue) {
    throw new ConfigError(
      `${locate([issue.path])} ${pathStr(issue.path)}: ${issue.message}`,
      pathStr(issue.path),
    );
  }
  const d = cfg.data;
  if (d.source !== "builtin" && d.root !== null && (opts.checkPaths ?? true)) {
    let ok = false;
    try {
      ok = host.statSync(d.root).isDirectory;
    } catch { /* reported below */ }
    if (!ok) {
      const p = ["data", "root"];
      throw new ConfigError(
        `${locate([p])} data.root: expected an existing folder, got ${show(d.root)} (not found)`,
        "data.root",
      );
    }
  }
  return cfg;
}

/** Parses a `key=value` override: the value is YAML (`3`, `true`, `null`, `[1, 2]`, text). */
export function parseOverride(arg: string): { path: string[]; value: unknown } {
  const eq = arg.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError(
      `override ${show(arg)}: expected key=value (e.g. trainer.maxEpochs=3)`,
      "",
    );
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
    throw new ConfigError(`override ${show(arg)}: expected a dotted key, got ${show(key)}`, key);
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
  let raw: unknown;
  try {
    // Aliases resolve here: one before its anchor, or more than the package's limit (a
    // billion-laughs guard), throws a ReferenceError that names no file.
    raw = doc.toJS() ?? {};
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message.split("\n")[0]}`, "");
  }
  if (!isPlain(raw)) {
    throw new ConfigError(`${file}:1 expected a mapping at the top level, got ${show(raw)}`, "");
  }
  // Override text by dotted path, with the order it was applied in.
  const overridden = new Map<string, { arg: string; order: number }>();
  (options.overrides ?? []).forEach((arg, order) => {
    const { path, value } = parseOverride(arg);
    setPath(raw, path, value);
    overridden.set(path.join("."), { arg, order });
  });
  const overrideOf = (path: readonly (string | number)[]) => {
    for (let n = path.length; n > 0; n--) {
      const o = overridden.get(path.slice(0, n).join("."));
      if (o !== undefined) return o;
    }
    return null;
  };
  const lineOf = (path: readonly (string | number)[]) => {
    const node = doc.getIn(path, true) as unknown;
    return nodeRange(node) ?? pairKeyRange(doc.contents, path);
  };
  // A problem has one path, or several for a check across fields (the first is its own).
  const locate: LocateAny = (paths) => {
    // The override applied last among those that set one of the paths wins.
    const o = paths.map(overrideOf).filter((x) => x !== null)
      .sort((a, b) => b.order - a.order)[0];
    if (o) return `override ${clip(o.arg)}:`;
    // Else the first path present in the file, else the deepest present node of the first.
    for (const p of paths) {
      const range = lineOf(p);
      if (range) return `${file}:${lc.linePos(range).line}`;
    }
    // Else the deepest mapping around the first path that an override or the file wrote.
    const path = paths[0];
    for (let n = path.length - 1; n > 0; n--) {
      const under = path.slice(0, n).join(".") + ".";
      const o = [...overridden].filter(([k]) => k.startsWith(under))
        .sort((a, b) => b[1].order - a[1].order)[0];
      if (o) return `override ${clip(o[1].arg)}:`;
      const range = lineOf(path.slice(0, n));
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
    text = host.readTextFileSync(file);
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
