/**
 * The `data` options, each declared once: its type and doc in an interface, its range and
 * default in the schema entry typed against that interface, and the checks that involve
 * several fields. The training config embeds {@link DATA_SCHEMA} as its `data` section (adding
 * file:line to errors); `ClassificationDataModule` runs the same schema on what API users pass.
 *
 * @module
 */

import { z } from "zod";
import {
  bool,
  crossFieldIssue,
  expect,
  type Fields,
  nonNegInt,
  num,
  obj,
  oneOf,
  posInt,
  section,
  show,
  str,
  unit,
  unitOpen,
} from "../config/field.ts";
import { BUILTIN_CLASSES } from "./builtin.ts";

/** Where images come from. */
export type DataSource = "builtin" | "imagefolder" | "idx";

/** Augmentation and normalisation settings (torchvision semantics). */
export interface AugmentConfig {
  /** RandomResizedCrop(imageSize, scale) for training; overrides `randomCrop` when set. */
  randomResizedCrop: { scale: [number, number]; ratio: [number, number] } | null;
  /** RandomCrop(imageSize, padding) for training; null disables it. */
  randomCrop: { padding: number } | null;
  /** RandomHorizontalFlip probability for training (0 disables). */
  hflip: number;
  /** Eval pipeline: Resize(resize) then CenterCrop(imageSize); null resizes straight to imageSize. */
  resize: number | null;
  /** Normalize mean per channel (ImageNet's by default). */
  mean: number[];
  /** Normalize std per channel (ImageNet's by default). */
  std: number[];
}

/** Settings of the built-in procedural dataset. */
export interface BuiltinConfig {
  /** Number of classes. */
  numClasses: number;
  /** Training images. */
  trainSize: number;
  /** Validation images. */
  valSize: number;
  /** Test images. */
  testSize: number;
}

/** The `data` section of a training config. */
export interface DataConfig {
  /** Image source. */
  source: DataSource;
  /** Root folder (imagefolder: `root/{train,val,test}/<class>/*`; idx: folder of IDX files). */
  root: string | null;
  /** Side of the square images fed to the model. */
  imageSize: number;
  /** Channels fed to the model (grayscale is repeated to 3 when 3). */
  channels: 1 | 3;
  /** Images per batch. */
  batchSize: number;
  /** Drop the last incomplete training batch. */
  dropLast: boolean;
  /** Decode/augment workers (0 = main thread). */
  numWorkers: number;
  /** Batches prepared ahead of the GPU. */
  prefetch: number;
  /** Fraction of train carved out as val when there is no val split. */
  valFraction: number;
  /** Fraction of train carved out as test when there is no test split. */
  testFraction: number;
  /** A corrupt image: skip it (counted and reported) or fail the run. */
  onCorrupt: "skip" | "fail";
  /** Keep decoded images in memory. */
  cache: boolean;
  /** Built-in dataset settings (source "builtin"). */
  builtin: BuiltinConfig;
  /** Augmentation. */
  augment: AugmentConfig;
}

// ---------------------------------------------------------------------------------------
// Ranges and defaults (one entry per interface field; the type checker keeps them in step).

const int1 = () => posInt("an integer >= 1");

/** A list of finite numbers, each passing `check`. */
function numList(what: string, check: (v: number) => boolean): z.ZodType<number[]> {
  return z.any().superRefine((v, ctx) => {
    const ok = Array.isArray(v) && v.length > 0 &&
      v.every((x) => typeof x === "number" && Number.isFinite(x) && check(x));
    if (!ok) {
      ctx.addIssue({
        code: "custom",
        message: `expected ${what}, got ${show(v)}`,
        continue: false,
      });
    }
  }) as unknown as z.ZodType<number[]>;
}

/** `[lo, hi]`: two finite numbers passing `check`. */
function pair(
  what: string,
  check: (lo: number, hi: number) => boolean,
): z.ZodType<[number, number]> {
  return z.any().superRefine((v, ctx) => {
    const ok = Array.isArray(v) && v.length === 2 &&
      v.every((x) => typeof x === "number" && Number.isFinite(x)) && check(v[0], v[1]);
    if (!ok) {
      ctx.addIssue({
        code: "custom",
        message: `expected ${what}, got ${show(v)}`,
        continue: false,
      });
    }
  }) as unknown as z.ZodType<[number, number]>;
}

/** Ranges and defaults of {@link BuiltinConfig}. */
export const BUILTIN_FIELDS: Fields<BuiltinConfig> = {
  numClasses: num(
    `an integer in 2..${BUILTIN_CLASSES.length}`,
    (v) => Number.isInteger(v) && v >= 2 && v <= BUILTIN_CLASSES.length,
  ).default(4),
  trainSize: int1().default(1024),
  valSize: nonNegInt().default(256),
  testSize: nonNegInt().default(256),
};

/** Ranges and defaults of {@link AugmentConfig}. */
export const AUGMENT_FIELDS: Fields<AugmentConfig> = {
  randomResizedCrop: obj<{ scale: [number, number]; ratio: [number, number] }>({
    scale: pair("[lo, hi] with 0 < lo <= hi <= 1", (lo, hi) => lo > 0 && lo <= hi && hi <= 1),
    ratio: pair("[lo, hi] with 0 < lo <= hi", (lo, hi) => lo > 0 && lo <= hi),
  }).nullable().default(null),
  randomCrop: obj<{ padding: number }>({ padding: nonNegInt() }).nullable()
    .default(() => ({ padding: 4 })),
  hflip: unit("a probability in [0, 1]").default(0.5),
  resize: int1().nullable().default(null),
  // ImageNet's statistics, as torchvision's pretrained ResNets.
  mean: numList("a list of numbers", () => true).default(() => [0.485, 0.456, 0.406]),
  std: numList("a list of positive numbers", (v) => v > 0).default(() => [0.229, 0.224, 0.225]),
};

/** Ranges and defaults of {@link DataConfig}. */
export const DATA_FIELDS: Fields<DataConfig> = {
  source: oneOf(["builtin", "imagefolder", "idx"] as const).default("builtin"),
  root: str().nullable().default(null),
  imageSize: int1().default(32),
  channels: z.union([z.literal(1), z.literal(3)], { error: expect("1 or 3") }).default(3),
  batchSize: int1().default(32),
  dropLast: bool().default(true),
  numWorkers: nonNegInt().default(2),
  prefetch: nonNegInt().default(2),
  valFraction: unitOpen().default(0.1),
  testFraction: unitOpen().default(0.1),
  onCorrupt: oneOf(["skip", "fail"] as const).default("fail"),
  cache: bool().default(true),
  builtin: section(BUILTIN_FIELDS),
  augment: section(AUGMENT_FIELDS),
};

/** The checks that involve several fields (run after every field passed its own). */
function crossFieldChecks(c: DataConfig, ctx: z.RefinementCtx): void {
  if (c.source !== "builtin" && c.root === null) {
    crossFieldIssue(
      ctx,
      ["root"],
      [["source"]],
      `expected a folder for source "${c.source}", got null`,
    );
  }
  if (c.valFraction + c.testFraction >= 1) {
    crossFieldIssue(
      ctx,
      ["testFraction"],
      [["valFraction"]],
      `expected valFraction + testFraction < 1, got ${c.valFraction} + ${c.testFraction}`,
    );
  }
  // As `channelNorm`: one value per channel, one for all, or any number averaged for grayscale.
  for (const f of ["mean", "std"] as const) {
    const n = c.augment[f].length;
    if (n !== c.channels && n !== 1 && c.channels !== 1) {
      crossFieldIssue(
        ctx,
        ["augment", f],
        [["channels"]],
        `expected 1 or ${c.channels} values (data.channels is ${c.channels}), got ${n}`,
      );
    }
  }
}

/** The whole `data` section: fields with defaults, then the cross-field checks. */
export const DATA_SCHEMA: z.ZodType<DataConfig> = (obj(DATA_FIELDS) as z.ZodType<DataConfig>)
  .superRefine((c, ctx) => crossFieldChecks(c, ctx));
