/**
 * Data: image folders, IDX (MNIST / Fashion-MNIST), the built-in procedural dataset,
 * torchvision-style transforms, and a seeded, prefetching loader with Web Workers.
 *
 * @module
 */

export * from "./config.ts";
export { DataError } from "./errors.ts";
export {
  ClassificationDataModule,
  createDataModule,
  type DataModuleOptions,
  type PartialDataConfig,
  resolveDataConfig,
  validateDataConfig,
} from "./data_module.ts";
export { checkLabels, DataLoader, type HostBatch } from "./loader.ts";
export { BUILTIN_CLASSES, renderBuiltin } from "./builtin.ts";
export { decodeImage, type RawImage } from "./image.ts";
export {
  encodeIdxImages,
  encodeIdxLabels,
  FASHION_MNIST_CLASSES,
  type IdxImages,
  readIdxImages,
  readIdxLabels,
} from "./idx.ts";
export * as transforms from "./transforms.ts";
export { Rng } from "./rng.ts";
export type { Batch } from "../nn/batch.ts";
