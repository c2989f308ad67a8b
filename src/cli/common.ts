/**
 * Shared pieces of the command-line tools: building the model and the data module from a
 * config, and turning errors into one-line messages with exit codes.
 *
 * @module
 */

import { createModel, type ModelOptions } from "../models/mod.ts";
import type { BaseClassificationModel } from "../models/base_classification_model.ts";
import { ConfigError, configToYaml, resolveConfig, type TrainConfig } from "../train/config.ts";
import { loadCheckpoint, resolveCheckpointPath } from "../train/checkpoint.ts";
import { NonFiniteLossError } from "../train/trainer.ts";
import { modelNames } from "../train/build.ts";

export { buildData, buildModel, modelNames, modelOptions } from "../train/build.ts";

/** The exit code and one-line message for an error raised by a command. */
export function describeError(e: unknown): { code: number; message: string } {
  if (e instanceof ConfigError) return { code: 2, message: `config error: ${e.message}` };
  if (e instanceof NonFiniteLossError) return { code: 3, message: `error: ${e.message}` };
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.NotCapable && /write access/.test(msg)) {
    return {
      code: 1,
      message: `error: ${msg.split("\n")[0]} (the train task may write only under runs/: ` +
        "keep logging.rootDir there, or run deno run --allow-write=<dir> ... src/cli/train.ts)",
    };
  }
  return { code: 1, message: `error: ${msg.split("\n")[0]}` };
}

/** Runs a command's main function: prints a one-line error and exits non-zero on failure. */
export async function runMain(main: () => Promise<number | void>): Promise<void> {
  let code = 0;
  try {
    code = (await main()) ?? 0;
  } catch (e) {
    const d = describeError(e);
    console.error(d.message);
    code = d.code;
  }
  Deno.exit(code);
}

/** A trained model restored from a checkpoint, with the config it was trained with. */
export interface TrainedModel {
  /** The checkpoint's config with the command-line overrides applied. */
  config: TrainConfig;
  /** The model with the checkpoint's weights, in eval mode. */
  model: BaseClassificationModel;
  /** Class names from the checkpoint. */
  classNames: string[];
  /** The checkpoint's JSON state path. */
  path: string;
  /** Epoch of the checkpoint (0-based). */
  epoch: number;
}

/**
 * Restores the model of a checkpoint (see `resolveCheckpointPath` for what `path` may be)
 * and its config with `key=value` overrides applied (e.g. `data.root=/elsewhere`).
 */
export async function loadTrained(
  path: string,
  overrides: readonly string[] = [],
): Promise<TrainedModel> {
  const jsonPath = resolveCheckpointPath(path);
  const ck = await loadCheckpoint(jsonPath, { optimizer: false });
  try {
    const config = resolveConfig(
      configToYaml(ck.state.config as TrainConfig),
      `${jsonPath} (config)`,
      {
        overrides,
        models: modelNames(),
      },
    );
    const h = ck.state.hparams as ModelOptions & { name: string };
    const model = createModel(h.name, h);
    model.loadStateDict(ck.weights);
    model.eval();
    return {
      config,
      model,
      classNames: ck.state.classNames,
      path: jsonPath,
      epoch: ck.state.epoch,
    };
  } finally {
    ck.dispose();
  }
}
