/**
 * classifier-training: image-classification training on WebGPU, with its own WGSL kernels,
 * autograd tape, layers, ResNets and trainer.
 *
 * ```ts
 * import { getDevice, Tensor, scope, ops, backward } from "@classifier-training/core";
 * await getDevice();
 * const w = Tensor.fromArray([1, 2, 3], [3], { requiresGrad: true });
 * scope(() => backward(ops.sum(ops.mul(w, w))));
 * console.log(await w.grad!.toArray()); // [2, 4, 6]
 * ```
 *
 * @module
 */

export { type AdapterFacts, getDevice, type GpuContext } from "./src/gpu/device.ts";
export {
  type DType,
  type FromArrayOptions,
  type GradNode,
  keep,
  type MemoryStats,
  memoryStats,
  resetPeak,
  scope,
  Tensor,
} from "./src/gpu/tensor.ts";
export { dispatchStats, flush, sync } from "./src/gpu/dispatch.ts";
export {
  backward,
  type BackwardOptions,
  isGradEnabled,
  noGrad,
  zeroGrad,
} from "./src/autograd/tape.ts";
export { autocast, isAutocastEnabled } from "./src/autograd/autocast.ts";
export * as ops from "./src/autograd/ops.ts";
export * as F from "./src/autograd/nn_ops.ts";
export { type LoadStateDictOptions, Module, type StateDict } from "./src/nn/module.ts";
export {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  type BatchNorm2dOptions,
  Conv2d,
  type Conv2dOptions,
  Flatten,
  Identity,
  Linear,
  type LinearOptions,
  MaxPool2d,
  type MaxPool2dOptions,
  ReLU,
  Sequential,
} from "./src/nn/layers.ts";
export {
  BasicBlock,
  type BlockKind,
  type BlockOptions,
  Bottleneck,
  type ForwardFeaturesOptions,
  ResidualBlock,
  ResNet,
  resnet18,
  resnet34,
  resnet50,
  type ResNetConfig,
  type ResNetOptions,
} from "./src/nn/resnet.ts";
export {
  type HostTensor,
  loadSafetensors,
  type ParsedSafetensors,
  parseSafetensors,
  type SafetensorsDType,
  SafetensorsError,
  saveSafetensors,
  type SaveSafetensorsOptions,
  type SerializeOptions,
  serializeSafetensors,
} from "./src/nn/safetensors.ts";
export { type InitOptions, Rng as InitRng } from "./src/nn/init.ts";
export * as nn from "./src/nn/mod.ts";
export * as kernels from "./src/kernels/mod.ts";
export { crossEntropy, type CrossEntropyOptions, type LossReduction } from "./src/autograd/loss.ts";
export * from "./src/metrics/mod.ts";
export * from "./src/optim/mod.ts";
export * from "./src/models/base_classification_model.ts";
export { checkModelHparams, hparamsOf } from "./src/models/hparams.ts";
export * from "./src/models/registry.ts";
export * from "./src/models/resnet_models.ts";
export * from "./src/models/pretrained.ts";
export * from "./src/models/pretrained_names.ts";
export * from "./src/models/freeze.ts";
export {
  readTorchFile,
  type TorchFile,
  TorchFileError,
  type TorchStateDict,
  torchStateDict,
} from "./src/nn/torch_file.ts";
export type { Batch, LogOptions, LogSink } from "./src/models/types.ts";
export {
  type AugmentConfig,
  type BuiltinConfig,
  ClassificationDataModule,
  createDataModule,
  type DataConfig,
  DataError,
  DataLoader,
  type DataModuleOptions,
  type DataSource,
  DEFAULT_DATA_CONFIG,
  type HostBatch,
  type PartialDataConfig,
  resolveDataConfig,
  validateDataConfig,
} from "./src/data/mod.ts";
export * as data from "./src/data/mod.ts";
export * from "./src/train/mod.ts";
export { denoFs, type PlatformFs } from "./src/platform/fs.ts";
export { onStopSignal } from "./src/platform/signals.ts";
export * from "./src/export/mod.ts";
