/**
 * Export for deployment: ONNX (opset 17, dynamic batch) and PyTorch-ready safetensors with
 * torchvision's keys. Both exporters return bytes and use no Deno APIs, so the browser can
 * use them too; `deno task export` writes them to files.
 *
 * @module
 */

export {
  checkExportOptions,
  type ExportOptions,
  PROJECT_VERSION,
  type ResNetArchitecture,
  type ResNetFacts,
  resnetFacts,
} from "./common.ts";
export {
  exportOnnx,
  type ExportOnnxOptions,
  ONNX_IR_VERSION,
  ONNX_NAMES,
  ONNX_OPSET,
  onnxMetadata,
} from "./onnx.ts";
export { exportTorchSafetensors, type TorchExportConfig, torchExportConfig } from "./torch.ts";
