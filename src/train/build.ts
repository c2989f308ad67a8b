/**
 * Building the model and the data module of a config: shared by the command-line tools and
 * the web app.
 *
 * @module
 */

import { ClassificationDataModule } from "../data/data_module.ts";
import { createModel, listModels } from "../models/mod.ts";
import { hparamsOf } from "../models/hparams.ts";
import type {
  BaseClassificationModel,
  BaseClassificationModelOptions,
} from "../models/base_classification_model.ts";
import type { TrainConfig } from "./config.ts";

/** Registered model names (for config validation). */
export function modelNames(): string[] {
  return listModels();
}

/** The data module of a config (seeded with `config.seed`). */
export function buildData(
  cfg: TrainConfig,
  options: { warn?: (m: string) => void } = {},
): ClassificationDataModule {
  return new ClassificationDataModule(cfg.data, { seed: cfg.seed, warn: options.warn });
}

/**
 * The options every model takes from a config: optimizer and scheduler settings (its
 * hyperparameters), label smoothing and the seed.
 */
export function modelOptions(
  cfg: TrainConfig,
  numClasses: number,
): BaseClassificationModelOptions & { seed: number } {
  return { numClasses, ...hparamsOf(cfg), seed: cfg.seed };
}

/** The model of a config: optimizer and scheduler settings become its hyperparameters. */
export function buildModel(cfg: TrainConfig, numClasses: number): BaseClassificationModel {
  return createModel(cfg.model.name, {
    ...modelOptions(cfg, numClasses),
    smallInput: cfg.model.smallInput,
    inChannels: cfg.model.inChannels ?? cfg.data.channels,
  });
}
