/**
 * PyTorch-ready export: a safetensors file with torchvision's state-dict keys (no `model.`
 * prefix, no `class_weights`; `num_batches_tracked` as I64) and the `config.json` that goes
 * beside it. `torchvision.models.resnet18(num_classes=C).load_state_dict(load_file(path),
 * strict=True)` accepts it (with `small_input` or `in_channels` ≠ 3, swap the stem first:
 * see the README).
 *
 * No Deno APIs here: it runs in the browser too.
 *
 * @module
 */

import type { Module } from "../nn/module.ts";
import { serializeSafetensors, toHostTensors } from "../io/safetensors.ts";
import {
  checkExportOptions,
  type ExportOptions,
  PROJECT_VERSION,
  type ResNetArchitecture,
  resnetFacts,
} from "./common.ts";

/** The `config.json` written beside a PyTorch safetensors export (snake_case, like torchvision). */
export interface TorchExportConfig {
  /** Format tag of this file. */
  format: "classifier-training-torch-export/1";
  /** torchvision builder name. */
  architecture: ResNetArchitecture;
  /** Number of logits. */
  num_classes: number;
  /** CIFAR-style stem (3×3 stride-1 `conv1`, no max-pool). */
  small_input: boolean;
  /** Input channels of `conv1`. */
  in_channels: number;
  /** Class names in logit order. */
  class_names: string[];
  /** Normalisation mean per channel (pixels in [0, 1]). */
  mean: number[];
  /** Normalisation std per channel. */
  std: number[];
  /** Side of the square input, in pixels. */
  input_size: number;
  /** Resize before the center crop in evaluation (null: resize straight to `input_size`). */
  resize: number | null;
  /** The project version that wrote the export. */
  project_version: string;
}

/** The `config.json` contents for `model` (validated like the export). */
export function torchExportConfig(model: Module, options: ExportOptions): TorchExportConfig {
  const facts = resnetFacts(model);
  checkExportOptions(facts, options);
  return {
    format: "classifier-training-torch-export/1",
    architecture: facts.architecture,
    num_classes: facts.numClasses,
    small_input: facts.smallInput,
    in_channels: facts.inChannels,
    class_names: [...options.classNames],
    mean: [...options.mean],
    std: [...options.std],
    input_size: options.inputSize,
    resize: options.resize ?? null,
    project_version: PROJECT_VERSION,
  };
}

/**
 * The ResNet's weights as safetensors bytes with torchvision's keys, in torchvision's
 * state-dict order. The safetensors metadata carries `format: pt` and the `config.json`
 * contents (as JSON under `config`).
 */
export async function exportTorchSafetensors(
  model: Module,
  options: ExportOptions,
): Promise<Uint8Array> {
  const config = torchExportConfig(model, options);
  const { resnet } = resnetFacts(model);
  const host = await toHostTensors(resnet.stateDict());
  return serializeSafetensors(host, {
    metadata: { format: "pt", config: JSON.stringify(config) },
  });
}
