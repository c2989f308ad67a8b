/**
 * ONNX export checked by an independent runtime: onnxruntime-node (npm, CPU) runs each
 * exported model on the same input as our own eval forward, and the logits must agree within
 * 1e-4 — ResNet-18/34/50, both stems, 1 and 3 input channels, batch 1 and 5 from one file,
 * with and without BN folding. The graph is also decoded with the official schema and
 * checked for opset, operators, raw initialisers, dynamic batch and metadata.
 *
 * Needs `--allow-ffi` (onnxruntime-node is a native addon).
 */
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { assertClose } from "../helpers.ts";
import { buildCase, inputBatch, type ModelCase, ownLogits } from "./fixtures.ts";
import {
  exportOnnx,
  type ExportOnnxOptions,
  ONNX_OPSET,
  PROJECT_VERSION,
} from "../../src/export/mod.ts";

const { onnx } = onnxProto;

const ALLOWED_OPS = new Set([
  "Conv",
  "BatchNormalization",
  "Relu",
  "MaxPool",
  "GlobalAveragePool",
  "Flatten",
  "Gemm",
  "Add",
  "Softmax",
]);

function optionsFor(c: ModelCase, extra: Partial<ExportOnnxOptions> = {}): ExportOnnxOptions {
  return {
    classNames: Array.from({ length: c.numClasses }, (_, i) => `class ${i}, "${i}"`),
    inputSize: c.size,
    mean: c.inChannels === 3 ? [0.485, 0.456, 0.406] : [0.5],
    std: c.inChannels === 3 ? [0.229, 0.224, 0.225] : [0.25],
    resize: null,
    ...extra,
  };
}

/** Structural checks of the decoded model; returns its metadata as a map. */
function checkGraph(bytes: Uint8Array, c: ModelCase, o: ExportOnnxOptions): Map<string, string> {
  const m = onnx.ModelProto.decode(bytes);
  assert.deepEqual(m.opsetImport.map((x) => [x.domain ?? "", Number(x.version)]), [
    ["", ONNX_OPSET],
  ]);
  const g = m.graph!;
  const ops = new Set(g.node!.map((n) => n.opType!));
  for (const op of ops) assert.ok(ALLOWED_OPS.has(op), `unexpected operator ${op}`);
  assert.equal(ops.has("BatchNormalization"), !o.foldBn);
  assert.equal(ops.has("MaxPool"), !c.smallInput);
  assert.equal(ops.has("Softmax"), !!o.softmax);
  for (const t of g.initializer!) {
    assert.equal(t.dataType, onnx.TensorProto.DataType.FLOAT, t.name!);
    assert.equal(t.floatData?.length ?? 0, 0, `${t.name} stores float_data, expected raw_data`);
    const n = t.dims!.reduce((a: number, b) => a * Number(b), 1);
    assert.equal(t.rawData?.length, 4 * n, `${t.name} raw_data size`);
  }
  const dims = (v: onnxProto.onnx.IValueInfoProto) =>
    v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
  assert.deepEqual(g.input!.map((v) => v.name), ["images"]);
  assert.deepEqual(dims(g.input![0]), ["N", c.inChannels, c.size, c.size]);
  assert.deepEqual(g.output!.map((v) => v.name), [o.softmax ? "probabilities" : "logits"]);
  assert.deepEqual(dims(g.output![0]), ["N", c.numClasses]);
  return new Map(m.metadataProps.map((p) => [p.key!, p.value!]));
}

async function runOrt(
  session: ort.InferenceSession,
  c: ModelCase,
  x: Float32Array,
): Promise<Float32Array> {
  const n = x.length / (c.inChannels * c.size * c.size);
  const r = await session.run({
    images: new ort.Tensor("float32", x, [n, c.inChannels, c.size, c.size]),
  });
  const out = r[session.outputNames[0]];
  assert.deepEqual(out.dims, [n, c.numClasses]);
  return out.data as Float32Array;
}

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const max = Math.max(...row);
    const e = Array.from(row, (v) => Math.exp(v - max));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, i) => (out[r * classes + i] = v / s));
  }
  return out;
}

const CASES: ModelCase[] = [
  { name: "resnet18", smallInput: true, inChannels: 1, size: 8, numClasses: 3 },
  { name: "resnet34", smallInput: false, inChannels: 3, size: 32, numClasses: 4 },
  { name: "resnet50", smallInput: false, inChannels: 1, size: 32, numClasses: 5 },
];

for (const c of CASES) {
  const stem = c.smallInput ? "small-input" : "ImageNet";
  Deno.test(`onnx: ${c.name}, ${stem} stem, ${c.inChannels} channel(s): onnxruntime agrees within 1e-4`, async () => {
    const model = buildCase(c);
    try {
      const x5 = inputBatch(c, 5);
      const x1 = x5.slice(0, x5.length / 5);
      const ref5 = await ownLogits(model, c, x5);
      // Batch 1 is checked against the first row of our batch-5 forward (eval mode treats
      // images independently): a second forward at batch 1 would only compile more kernels.
      const ref1 = ref5.slice(0, c.numClasses);
      // The reference must be informative: O(1) logits that differ between images.
      const maxAbs = Math.max(...ref5.map(Math.abs));
      assert.ok(maxAbs > 0.5 && maxAbs < 50, `logit scale ${maxAbs}`);
      for (const foldBn of [false, true]) {
        const o = optionsFor(c, { foldBn });
        const bytes = await exportOnnx(model, o);
        const meta = checkGraph(bytes, c, o);
        assert.equal(meta.get("model_name"), c.name);
        assert.deepEqual(JSON.parse(meta.get("class_names")!), o.classNames);
        assert.equal(meta.get("input_size"), String(c.size));
        assert.equal(meta.get("in_channels"), String(c.inChannels));
        assert.deepEqual(JSON.parse(meta.get("mean")!), o.mean);
        assert.deepEqual(JSON.parse(meta.get("std")!), o.std);
        assert.equal(meta.get("project_version"), PROJECT_VERSION);
        const session = await ort.InferenceSession.create(bytes);
        try {
          assert.deepEqual(session.inputNames, ["images"]);
          assert.deepEqual(session.outputNames, ["logits"]);
          const msg = `${c.name} foldBn=${foldBn}`;
          assertClose(await runOrt(session, c, x5), ref5, {
            atol: 1e-4,
            rtol: 1e-4,
            msg: `${msg} batch 5`,
          });
          assertClose(await runOrt(session, c, x1), ref1, {
            atol: 1e-4,
            rtol: 1e-4,
            msg: `${msg} batch 1`,
          });
        } finally {
          await session.release();
        }
      }
    } finally {
      model.dispose();
    }
  });
}

Deno.test("onnx: --softmax appends a Softmax and names the output probabilities", async () => {
  const c = CASES[0];
  const model = buildCase(c, 2);
  try {
    const x = inputBatch(c, 5, 11);
    const ref = softmaxRows(await ownLogits(model, c, x), c.numClasses);
    const o = optionsFor(c, { softmax: true, foldBn: true });
    const bytes = await exportOnnx(model, o);
    assert.equal(checkGraph(bytes, c, o).get("output"), "probabilities");
    const session = await ort.InferenceSession.create(bytes);
    try {
      assert.deepEqual(session.outputNames, ["probabilities"]);
      assertClose(await runOrt(session, c, x), ref, { atol: 1e-5, msg: "probabilities" });
    } finally {
      await session.release();
    }
  } finally {
    model.dispose();
  }
});

Deno.test("onnx: options that do not fit the model are errors naming the field", async () => {
  const c = CASES[0];
  const model = buildCase(c);
  try {
    const bad: [Partial<ExportOnnxOptions>, RegExp][] = [
      [{ classNames: ["a"] }, /export: classNames: expected 3 names \(one per logit\), got 1$/],
      [{ mean: [0.5, 0.5, 0.5] }, /export: mean: expected 1 values .*, got 3$/],
      [{ std: [0] }, /export: std: expected finite positive numbers, got \[0\]$/],
      [{ inputSize: 0 }, /export: inputSize: expected a positive integer, got 0$/],
    ];
    for (const [patch, re] of bad) {
      await assert.rejects(() => exportOnnx(model, optionsFor(c, patch)), re);
    }
    await assert.rejects(
      () => exportOnnx(model.model.namedChildren()[0][1], optionsFor(c)),
      /export: expected a ResNet or a classification model with a ResNet backbone, got Conv2d$/,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("export: the exporters use no Deno APIs (they must run in a browser)", () => {
  for (const f of ["common.ts", "onnx.ts", "torch.ts", "mod.ts"]) {
    const src = Deno.readTextFileSync(new URL(`../../src/export/${f}`, import.meta.url));
    const code = src.replaceAll(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ""); // comments may say "Deno"
    assert.doesNotMatch(code, /\bDeno\b/, `src/export/${f} uses Deno`);
  }
});
