/**
 * `deno task export`: a run folder exported as ONNX (checked by onnxruntime-node against
 * our forward of the checkpoint) and as PyTorch safetensors with config.json; refusing to
 * overwrite without --force; and bad input — a run without checkpoints, corrupt
 * checkpoints, an unknown format, an unwritable output folder — each giving a one-line error
 * and leaving no partial output.
 */
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { assertClose } from "../helpers.ts";
import { buildCase, inputBatch, type ModelCase, ownLogits } from "./fixtures.ts";
import { main } from "../../src/cli/export.ts";
import { describeError, loadTrained } from "../../src/cli/common.ts";
import { resolveConfig } from "../../src/train/config.ts";
import { writeCheckpoint } from "../../src/train/checkpoint.ts";
import { listModels } from "../../src/models/registry.ts";
import { parseSafetensors } from "../../src/io/safetensors.ts";
import { PROJECT_VERSION } from "../../src/export/mod.ts";

// The same model, input size and batch as the first ONNX and safetensors cases
// (tests/export/onnx_test.ts, torch_test.ts), so a cold suite compiles its kernels once.
const CASE: ModelCase = {
  name: "resnet18",
  smallInput: true,
  inChannels: 1,
  size: 8,
  numClasses: 3,
};
const CLASSES = ["circle", "square", "triangle"];

/** Writes a run folder with `checkpoints/best.json` of the random-BN ResNet-18 case. */
async function makeRun(dir: string): Promise<string> {
  const cfg = resolveConfig(
    `seed: 1
model: { name: resnet18, smallInput: true }
data:
  source: builtin
  imageSize: 8
  channels: 1
  augment: { mean: [0.3, 0.4, 0.5], std: [0.2, 0.25, 0.3], resize: 10 }
  builtin: { numClasses: 3, trainSize: 8, valSize: 4, testSize: 4 }
`,
    "export.yaml",
    { models: listModels() },
  );
  const model = buildCase(CASE);
  try {
    await writeCheckpoint(`${dir}/checkpoints/best`, {
      stateDict: model.stateDict(),
      optimizer: null,
      state: {
        epoch: 2,
        globalStep: 12,
        scheduler: null,
        rng: { seed: 1, nextEpoch: 3 },
        hparams: model.hparams,
        classNames: CLASSES,
        config: cfg,
        callbacks: {},
        metrics: {},
      },
    });
  } finally {
    model.dispose();
  }
  return dir;
}

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const [log, error] = [console.log, console.error];
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  try {
    let code: number;
    try {
      code = await fn();
    } catch (e) {
      const d = describeError(e);
      err += d.message + "\n";
      code = d.code;
    }
    return { code, out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Every path under `dir`, sorted (to see that nothing was left behind). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      out.push(`${d}/${e.name}`);
      if (e.isDirectory) walk(`${d}/${e.name}`);
    }
  };
  walk(dir);
  return out.sort();
}

Deno.test("export cli: a run folder as ONNX, checked by onnxruntime; --force to overwrite", async () => {
  const dir = await makeRun(Deno.makeTempDirSync());
  try {
    const r = await capture(() => main([dir, "--format", "onnx", "--fold-bn"]));
    assert.equal(r.code, 0, r.err);
    const path = `${dir}/export/model.onnx`;
    const size = Deno.statSync(path).size;
    assert.match(r.out, new RegExp(`^wrote ${path} \\(\\d+\\.\\d MiB\\)$`, "m"));
    assert.match(
      r.out,
      /^resnet18 from .*best\.json \(epoch 2\): input images \[N, 1, 8, 8\] f32 -> logits \[N, 3\]$/m,
    );
    const bytes = Deno.readFileSync(path);
    assert.equal(bytes.length, size);
    const meta = new Map(
      onnxProto.onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key!, p.value!]),
    );
    assert.deepEqual(JSON.parse(meta.get("class_names")!), CLASSES);
    assert.equal(meta.get("model_name"), "resnet18");
    assert.equal(meta.get("input_size"), "8");
    assert.equal(meta.get("in_channels"), "1");
    assert.equal(meta.get("resize"), "10");
    // The config's 3-value mean/std are averaged for 1 channel, as the data pipeline does.
    assertClose(JSON.parse(meta.get("mean")!), [0.4], { atol: 1e-6 });
    assertClose(JSON.parse(meta.get("std")!), [0.25], { atol: 1e-6 });
    assert.equal(meta.get("bn_folded"), "true");
    assert.equal(meta.get("project_version"), PROJECT_VERSION);

    const t = await loadTrained(dir);
    try {
      const x = inputBatch(CASE, 5, 21);
      const ref = await ownLogits(t.model, CASE, x);
      const session = await ort.InferenceSession.create(bytes);
      try {
        const y = await session.run({ images: new ort.Tensor("float32", x, [5, 1, 8, 8]) });
        assertClose(y.logits.data as Float32Array, ref, { atol: 1e-4, rtol: 1e-4 });
      } finally {
        await session.release();
      }
    } finally {
      t.model.dispose();
    }

    const again = await capture(() => main([dir, "--format", "onnx"]));
    assert.equal(again.code, 1);
    assert.equal(again.err, `error: "${path}" already exists (use --force to overwrite)\n`);
    assert.deepEqual(Deno.readFileSync(path), bytes);
    const forced = await capture(() => main([dir, "--format", "onnx", "--softmax", "--force"]));
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /-> probabilities \[N, 3\]$/m);
    assert.notDeepEqual(Deno.readFileSync(path), bytes);
    assert.deepEqual(tree(`${dir}/export`), [path]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("export cli: safetensors with config.json; all or nothing", async () => {
  const dir = await makeRun(Deno.makeTempDirSync());
  try {
    const out = `${dir}/torch/weights.safetensors`;
    const r = await capture(() =>
      main([`${dir}/checkpoints/best.json`, "--format", "safetensors", "--out", out])
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^wrote ${out} \\(`, "m"));
    assert.match(r.out, new RegExp(`^wrote ${dir}/torch/config.json \\(`, "m"));
    const { tensors } = parseSafetensors(Deno.readFileSync(out), out);
    assert.ok(tensors.has("conv1.weight") && tensors.has("fc.bias"));
    assert.ok(![...tensors.keys()].some((k) => k.startsWith("model.") || k === "class_weights"));
    const cfg = JSON.parse(Deno.readTextFileSync(`${dir}/torch/config.json`));
    assert.equal(cfg.architecture, "resnet18");
    assert.equal(cfg.num_classes, 3);
    assert.equal(cfg.small_input, true);
    assert.equal(cfg.in_channels, 1);
    assert.equal(cfg.input_size, 8);
    assert.deepEqual(cfg.class_names, CLASSES);

    // config.json cannot be replaced (a folder is in the way): the weights must not appear.
    const out2 = `${dir}/torch2/model.safetensors`;
    Deno.mkdirSync(`${dir}/torch2/config.json/x`, { recursive: true });
    const bad = await capture(() =>
      main([dir, "--format", "safetensors", "--out", out2, "--force"])
    );
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^error: cannot write ".*\/torch2\/config\.json": .+\n$/);
    assert.deepEqual(tree(`${dir}/torch2`), [
      `${dir}/torch2/config.json`,
      `${dir}/torch2/config.json/x`,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("export cli: --help", async () => {
  const r = await capture(() => main(["--help"]));
  assert.equal(r.code, 0);
  assert.ok(r.out.startsWith("Usage: deno task export <checkpoint> --format onnx|safetensors"));
});

Deno.test("export cli: bad input gives a one-line error and leaves no output", async () => {
  const root = Deno.makeTempDirSync();
  try {
    const run = await makeRun(`${root}/run`);
    const before = tree(root);
    const oneLine = (r: { code: number; err: string }, code: number, re: RegExp) => {
      assert.equal(r.code, code, r.err);
      assert.equal(r.err.split("\n").length, 2, `one line expected: ${JSON.stringify(r.err)}`);
      assert.match(r.err, re);
      assert.deepEqual(tree(root), before, "no output may be left behind");
    };

    // A run without checkpoints.
    Deno.mkdirSync(`${root}/empty_run`);
    before.push(`${root}/empty_run`);
    before.sort();
    oneLine(
      await capture(() => main([`${root}/empty_run`, "--format", "onnx"])),
      1,
      /^error: checkpoint: expected a checkpoint \.json, a checkpoints folder or a run folder, got ".*empty_run" \(no best\.json or last\.json found\)$/m,
    );

    // An unknown format (checked before anything is loaded).
    oneLine(
      await capture(() => main([run, "--format", "pth"])),
      2,
      /^error: --format: expected "onnx" or "safetensors", got "pth"$/m,
    );
    oneLine(
      await capture(() => main([run])),
      2,
      /^error: --format: expected "onnx" or "safetensors", got nothing$/m,
    );

    // An output folder that cannot be written: its parent is a file.
    oneLine(
      await capture(() =>
        main([run, "--format", "onnx", "--out", `${run}/checkpoints/best.json/m.onnx`])
      ),
      1,
      /^error: cannot write ".*best\.json\/m\.onnx": .+$/m,
    );
    // A read-only folder (permission bits do not stop root: then this case cannot be made).
    Deno.mkdirSync(`${root}/ro`, { mode: 0o555 });
    before.push(`${root}/ro`);
    before.sort();
    let bitsHold = false;
    try {
      Deno.writeFileSync(`${root}/ro/probe`, new Uint8Array(1));
      Deno.removeSync(`${root}/ro/probe`);
    } catch {
      bitsHold = true;
    }
    if (bitsHold) {
      oneLine(
        await capture(() => main([run, "--format", "onnx", "--out", `${root}/ro/m.onnx`])),
        1,
        /^error: cannot write ".*ro\/m\.onnx": .+$/m,
      );
    }

    // A corrupt checkpoint: truncated weights, then an unreadable JSON state.
    const state = JSON.parse(Deno.readTextFileSync(`${run}/checkpoints/best.json`));
    const weights = `${run}/checkpoints/${state.weights}`;
    const bytes = Deno.readFileSync(weights);
    Deno.writeFileSync(weights, bytes.subarray(0, 1000));
    oneLine(
      await capture(() => main([run, "--format", "safetensors"])),
      1,
      new RegExp(`^error: .*${state.weights.replaceAll(/[.=]/g, "\\$&")}.*$`, "m"),
    );
    Deno.writeFileSync(weights, bytes);
    Deno.writeTextFileSync(`${run}/checkpoints/best.json`, "{ not json");
    oneLine(
      await capture(() => main([run, "--format", "onnx"])),
      1,
      /^error: checkpoint ".*best\.json": cannot read its JSON state \(.+\)$/m,
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
