/**
 * ONNX export of the ResNets: opset 17, input `images` `[N, C, H, W]` f32 with a dynamic
 * batch dimension `N`, output `logits` `[N, numClasses]` (or `probabilities` with a Softmax
 * appended). The graph uses only Conv, BatchNormalization (or BN folded into Conv), Relu,
 * MaxPool, GlobalAveragePool, Flatten, Gemm, Add and Softmax; initialisers are raw
 * little-endian f32 named by torchvision's state-dict keys.
 *
 * The protobuf is encoded by `onnx-proto`: the official `onnx.proto` schema (ONNX 1.10.2,
 * IR version 8, the IR of opset 17) compiled for protobufjs.
 *
 * No Deno APIs here: it runs in the browser too.
 *
 * ```ts
 * const bytes = await exportOnnx(model, {
 *   classNames: ["cat", "dog"], inputSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
 * });
 * ```
 *
 * @module
 */

import onnxProto from "onnx-proto";
import type { Module } from "../nn/module.ts";
import { BatchNorm2d, Conv2d } from "../nn/layers.ts";
import { BasicBlock, Bottleneck, type ResidualBlock } from "../nn/resnet.ts";
import { hostToFloat32, toHostTensors } from "../io/safetensors.ts";
import {
  checkExportOptions,
  type ExportOptions,
  PROJECT_VERSION,
  type ResNetFacts,
  resnetFacts,
} from "./common.ts";

const { onnx } = onnxProto;

/** The ONNX operator set the graph is written for. */
export const ONNX_OPSET = 17;
/** ONNX IR version 8 (the IR that opset 17 shipped with, ONNX 1.12). */
export const ONNX_IR_VERSION = 8;

/** Options of `exportOnnx`: the deployment facts plus graph choices. */
export interface ExportOnnxOptions extends ExportOptions {
  /** Append a Softmax over classes; the output is then named `probabilities` (default false). */
  softmax?: boolean;
  /** Fold each BatchNormalization into the Conv before it (Conv gets a bias; default false). */
  foldBn?: boolean;
}

/** Names of the graph's input and outputs. */
export const ONNX_NAMES = {
  input: "images",
  logits: "logits",
  probabilities: "probabilities",
} as const;

type Attr = number | number[];

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Accumulates nodes and initialisers; values are named after the module that makes them. */
class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  #used = new Map<string, number>();

  constructor(readonly weights: Map<string, Float32Array>, readonly foldBn: boolean) {}

  /** A fresh value name based on `base` (a repeated module, like a shared ReLU, gets `_1`, …). */
  name(base: string): string {
    const n = this.#used.get(base) ?? 0;
    this.#used.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  /** The f32 data of state-dict key `key` (a missing key is a bug, not bad input). */
  weight(key: string): Float32Array {
    const w = this.weights.get(key);
    if (!w) throw new Error(`exportOnnx: the model has no tensor "${key}"`);
    return w;
  }

  /** Adds an f32 initialiser stored as raw little-endian bytes. */
  init(name: string, dims: readonly number[], data: Float32Array): string {
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!LITTLE_ENDIAN) {
      bytes = new Uint8Array(data.length * 4);
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
    }
    this.initializers.push(onnx.TensorProto.create({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: bytes,
    }));
    return name;
  }

  /** Adds a node; returns its single output's name. */
  node(opType: string, name: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const out = this.name(name);
    const attribute = Object.entries(attrs).map(([k, v]) =>
      Array.isArray(v)
        ? { name: k, ints: v, type: onnx.AttributeProto.AttributeType.INTS }
        : Number.isInteger(v)
        ? { name: k, i: v, type: onnx.AttributeProto.AttributeType.INT }
        : { name: k, f: v, type: onnx.AttributeProto.AttributeType.FLOAT }
    );
    this.nodes.push(
      onnx.NodeProto.create({ opType, name: out, input: inputs, output: [out], attribute }),
    );
    return out;
  }

  /** Conv (`convKey`) then BN (`bnKey`): two nodes, or one Conv with the BN folded in. */
  convBn(convKey: string, conv: Conv2d, bnKey: string, bn: BatchNorm2d, x: string): string {
    const w = this.weight(`${convKey}.weight`);
    const dims = conv.weight.shape;
    const k = dims[2];
    const attrs = {
      kernel_shape: [k, k],
      strides: [conv.stride, conv.stride],
      pads: [conv.padding, conv.padding, conv.padding, conv.padding],
      dilations: [conv.dilation, conv.dilation],
      group: 1,
    };
    const g = this.weight(`${bnKey}.weight`);
    const b = this.weight(`${bnKey}.bias`);
    const mean = this.weight(`${bnKey}.running_mean`);
    const variance = this.weight(`${bnKey}.running_var`);
    if (!this.foldBn) {
      const y = this.node("Conv", convKey, [x, this.init(`${convKey}.weight`, dims, w)], attrs);
      return this.node("BatchNormalization", bnKey, [
        y,
        this.init(`${bnKey}.weight`, [g.length], g),
        this.init(`${bnKey}.bias`, [b.length], b),
        this.init(`${bnKey}.running_mean`, [mean.length], mean),
        this.init(`${bnKey}.running_var`, [variance.length], variance),
      ], { epsilon: bn.eps });
    }
    // y = γ (conv(x) − μ) / √(σ² + ε) + β = conv(x)·s + (β − μ s), s = γ / √(σ² + ε), in f64.
    const outC = dims[0];
    const per = w.length / outC;
    const wf = new Float32Array(w.length);
    const bf = new Float32Array(outC);
    for (let c = 0; c < outC; c++) {
      const s = g[c] / Math.sqrt(variance[c] + bn.eps);
      for (let i = c * per; i < (c + 1) * per; i++) wf[i] = w[i] * s;
      bf[c] = b[c] - mean[c] * s;
    }
    return this.node("Conv", convKey, [
      x,
      this.init(`${convKey}.weight`, dims, wf),
      this.init(`${convKey}.bias`, [outC], bf),
    ], attrs);
  }

  /** One residual block (`prefix` like `layer1.0`). */
  block(prefix: string, m: ResidualBlock, x: string): string {
    const relu = (y: string) => this.node("Relu", `${prefix}.relu`, [y]);
    let y: string;
    if (m instanceof BasicBlock) {
      y = relu(this.convBn(`${prefix}.conv1`, m.conv1, `${prefix}.bn1`, m.bn1, x));
      y = this.convBn(`${prefix}.conv2`, m.conv2, `${prefix}.bn2`, m.bn2, y);
    } else if (m instanceof Bottleneck) {
      const b = m;
      y = relu(this.convBn(`${prefix}.conv1`, b.conv1, `${prefix}.bn1`, b.bn1, x));
      y = relu(this.convBn(`${prefix}.conv2`, b.conv2, `${prefix}.bn2`, b.bn2, y));
      y = this.convBn(`${prefix}.conv3`, b.conv3, `${prefix}.bn3`, b.bn3, y);
    } else {
      throw new TypeError(`exportOnnx: ${prefix}: unknown block ${m.constructor.name}`);
    }
    let identity = x;
    if (m.downsample) {
      const d = `${prefix}.downsample`;
      const [conv, bn] = [m.downsample.at(0), m.downsample.at(1)];
      if (!(conv instanceof Conv2d && bn instanceof BatchNorm2d)) {
        throw new TypeError(`exportOnnx: ${d}: expected Conv2d then BatchNorm2d`);
      }
      identity = this.convBn(`${d}.0`, conv, `${d}.1`, bn, x);
    }
    return relu(this.node("Add", `${prefix}.add`, [y, identity]));
  }

  /** The whole network from `images` to logits. */
  resnet(facts: ResNetFacts, x: string): string {
    const r = facts.resnet;
    let y = this.node("Relu", "relu", [this.convBn("conv1", r.conv1, "bn1", r.bn1, x)]);
    if (r.maxpool) {
      const p = r.maxpool;
      y = this.node("MaxPool", "maxpool", [y], {
        kernel_shape: [p.kernelSize, p.kernelSize],
        strides: [p.stride, p.stride],
        pads: [p.padding, p.padding, p.padding, p.padding],
      });
    }
    r.stages.forEach((stage, i) => {
      for (let j = 0; j < stage.length; j++) {
        y = this.block(`layer${i + 1}.${j}`, stage.at(j) as ResidualBlock, y);
      }
    });
    y = this.node("GlobalAveragePool", "avgpool", [y]);
    y = this.node("Flatten", "flatten", [y], { axis: 1 });
    const fw = this.weight("fc.weight");
    const fb = this.weight("fc.bias");
    return this.node("Gemm", "fc", [
      y,
      this.init("fc.weight", r.fc.weight.shape, fw),
      this.init("fc.bias", [fb.length], fb),
    ], { transB: 1 });
  }
}

/** The `metadata_props` of an export, as key → string (lists and names as JSON). */
export function onnxMetadata(
  facts: ResNetFacts,
  options: ExportOnnxOptions,
): Record<string, string> {
  return {
    model_name: facts.architecture,
    class_names: JSON.stringify(options.classNames),
    num_classes: String(facts.numClasses),
    in_channels: String(facts.inChannels),
    input_size: String(options.inputSize),
    input_shape: JSON.stringify(["N", facts.inChannels, options.inputSize, options.inputSize]),
    resize: options.resize == null ? "" : String(options.resize),
    mean: JSON.stringify(options.mean),
    std: JSON.stringify(options.std),
    small_input: String(facts.smallInput),
    output: options.softmax ? ONNX_NAMES.probabilities : ONNX_NAMES.logits,
    bn_folded: String(options.foldBn ?? false),
    project_version: PROJECT_VERSION,
  };
}

/**
 * Exports a ResNet (or a classification model with a ResNet backbone) as an ONNX model and
 * returns its bytes. Weights are read back from the GPU; the model is not changed.
 */
export async function exportOnnx(model: Module, options: ExportOnnxOptions): Promise<Uint8Array> {
  const facts = resnetFacts(model);
  checkExportOptions(facts, options);
  const host = await toHostTensors(facts.resnet.stateDict());
  const weights = new Map<string, Float32Array>();
  for (const [k, t] of host) if (t.dtype === "F32") weights.set(k, hostToFloat32(t, k));
  const g = new GraphBuilder(weights, options.foldBn ?? false);
  const logits = g.resnet(facts, ONNX_NAMES.input);
  if (options.softmax) g.node("Softmax", "softmax", [logits], { axis: 1 });
  // The graph's output gets its public name: rename the last node's output.
  const outName = options.softmax ? ONNX_NAMES.probabilities : ONNX_NAMES.logits;
  g.nodes[g.nodes.length - 1].output = [outName];
  const tensorType = (dims: (number | string)[]) => ({
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: {
        dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })),
      },
    },
  });
  const s = options.inputSize;
  const proto = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    producerName: "classifier-training",
    producerVersion: PROJECT_VERSION,
    docString:
      `${facts.architecture} image classifier: input ${ONNX_NAMES.input} [N, ${facts.inChannels}, ${s}, ${s}] normalised with the metadata's mean and std, output ${outName} [N, ${facts.numClasses}]`,
    graph: {
      name: facts.architecture,
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: ONNX_NAMES.input, type: tensorType(["N", facts.inChannels, s, s]) }],
      output: [{ name: outName, type: tensorType(["N", facts.numClasses]) }],
    },
    metadataProps: Object.entries(onnxMetadata(facts, options)).map(([key, value]) => ({
      key,
      value,
    })),
  });
  const bytes = onnx.ModelProto.encode(proto).finish();
  // protobufjs returns a Node Buffer where one exists; hand back a plain Uint8Array view.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
