/**
 * Data configuration: the `data` section of a training config, with its defaults.
 *
 * @module
 */

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

/** Defaults of every data field. */
export const DEFAULT_DATA_CONFIG: DataConfig = {
  source: "builtin",
  root: null,
  imageSize: 32,
  channels: 3,
  batchSize: 32,
  dropLast: true,
  numWorkers: 2,
  prefetch: 2,
  valFraction: 0.1,
  testFraction: 0.1,
  onCorrupt: "fail",
  cache: true,
  builtin: { numClasses: 4, trainSize: 1024, valSize: 256, testSize: 256 },
  augment: {
    randomResizedCrop: null,
    randomCrop: { padding: 4 },
    hflip: 0.5,
    resize: null,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  },
};
