/**
 * PyTorch-ready safetensors export: torchvision's keys and dtypes, exact weights, the
 * config.json contents, and — wherever /usr/bin/python3 has torch and torchvision, like the
 * full parity tests — torchvision itself loading the export with strict=True and matching our
 * logits within 1e-4 (tests/golden/check_torch_export.py).
 */
import assert from "node:assert/strict";
import { assertClose } from "../helpers.ts";
import { buildCase, inputBatch, type ModelCase, ownLogits } from "./fixtures.ts";
import {
  exportTorchSafetensors,
  PROJECT_VERSION,
  torchExportConfig,
} from "../../src/export/mod.ts";
import { hostToFloat32, parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.ts";
import { readBackAll } from "../../src/gpu/readback.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("../golden/check_torch_export.py", import.meta.url).pathname;

/** What the checker answers for one export: its JSON line, with the single-check exit code. */
interface CheckResult {
  code: number;
  ok: boolean;
  shape?: number[];
  max_abs_diff?: number;
  error?: string;
}

/**
 * One long-lived `check_torch_export.py --serve` for the whole file: importing torch costs
 * seconds of CPU, once instead of once per check. Null where /usr/bin/python3 lacks torch or
 * torchvision (the checker then exits before saying it is ready).
 */
class TorchChecker {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;

  private constructor(child: Deno.ChildProcess, lines: AsyncIterator<string>) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines;
  }

  static async start(): Promise<TorchChecker | null> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(PYTHON, {
        args: [SCRIPT, "--serve"],
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
    } catch {
      return null; // no /usr/bin/python3
    }
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      [Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done || !JSON.parse(first.value).ready) {
      await child.status;
      return null;
    }
    // Idle between checks, the checker must not keep a filtered run alive (it exits at EOF).
    child.unref();
    return new TorchChecker(child, lines);
  }

  /** Checks one export (paths as check_torch_export.py takes them); tests run one at a time. */
  async check(model: string, config: string, ref: string): Promise<CheckResult> {
    this.#child.ref();
    try {
      const line = JSON.stringify([model, config, ref]) + "\n";
      await this.#writer.write(new TextEncoder().encode(line));
      const answer = await this.#lines.next();
      if (answer.done) {
        throw new Error(`check_torch_export.py exited (${(await this.#child.status).code})`);
      }
      return JSON.parse(answer.value);
    } finally {
      this.#child.unref();
    }
  }

  /** Ends the checker (stdin closed) and waits for it. */
  async close(): Promise<void> {
    this.#child.ref();
    await this.#writer.close();
    await this.#child.status;
  }
}

/** Splits a text stream into lines. */
function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}

const CHECKER = await TorchChecker.start();
const TORCH = CHECKER !== null;

function optionsFor(c: ModelCase) {
  return {
    classNames: Array.from({ length: c.numClasses }, (_, i) => `c${i}`),
    inputSize: c.size,
    mean: Array(c.inChannels).fill(0.5),
    std: Array(c.inChannels).fill(0.25),
    resize: c.size + 4,
  };
}

Deno.test("safetensors export: torchvision keys and order, I64 num_batches_tracked, exact weights", async () => {
  const c: ModelCase = {
    name: "resnet18",
    smallInput: true,
    inChannels: 1,
    size: 16,
    numClasses: 3,
  };
  const model = buildCase(c);
  try {
    const bytes = await exportTorchSafetensors(model, optionsFor(c));
    const { tensors, metadata } = parseSafetensors(bytes, "export");
    const own = [...model.stateDict()].filter(([k]) => k.startsWith("model."));
    assert.deepEqual([...tensors.keys()], own.map(([k]) => k.slice("model.".length)));
    assert.ok(!tensors.has("class_weights"));
    assert.equal(tensors.get("conv1.weight")!.shape.join(","), "64,1,3,3");
    const values = await readBackAll(own.map(([, t]) => t));
    own.forEach(([k, t], i) => {
      const name = k.slice("model.".length);
      const h = tensors.get(name)!;
      assert.deepEqual(h.shape, [...t.shape], name);
      if (name.endsWith("num_batches_tracked")) {
        assert.equal(h.dtype, "I64", name);
        assert.equal(h.data.byteLength, 8, name);
      } else {
        assert.equal(h.dtype, "F32", name);
        assert.deepEqual(hostToFloat32(h, name), values[i], name);
      }
    });
    assert.equal(metadata.format, "pt");
    const cfg = torchExportConfig(model, optionsFor(c));
    assert.deepEqual(JSON.parse(metadata.config), cfg);
    assert.deepEqual(cfg, {
      format: "classifier-training-torch-export/1",
      architecture: "resnet18",
      num_classes: 3,
      small_input: true,
      in_channels: 1,
      class_names: ["c0", "c1", "c2"],
      mean: [0.5],
      std: [0.25],
      input_size: 16,
      resize: 20,
      project_version: PROJECT_VERSION,
    });
  } finally {
    model.dispose();
  }
});

const TORCH_CASES: ModelCase[] = [
  { name: "resnet18", smallInput: true, inChannels: 1, size: 8, numClasses: 3 },
  { name: "resnet34", smallInput: false, inChannels: 3, size: 32, numClasses: 4 },
  { name: "resnet50", smallInput: true, inChannels: 3, size: 8, numClasses: 5 },
];

// The last case to finish ends the checker (a filtered run leaves it to exit at EOF).
let casesLeft = TORCH_CASES.length;
for (const c of TORCH_CASES) {
  Deno.test({
    name: `safetensors export: torchvision ${c.name} (${
      c.smallInput ? "small-input" : "ImageNet"
    } stem, ${c.inChannels} ch) loads it strictly and matches our logits`,
    ignore: !TORCH,
    fn: async () => {
      const model = buildCase(c, 3);
      const dir = Deno.makeTempDirSync();
      try {
        const x = inputBatch(c, 5, 5);
        const logits = await ownLogits(model, c, x);
        const o = optionsFor(c);
        Deno.writeFileSync(`${dir}/model.safetensors`, await exportTorchSafetensors(model, o));
        Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(torchExportConfig(model, o)));
        const f32 = (a: Float32Array, shape: number[]) => ({
          dtype: "F32" as const,
          shape,
          data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
        });
        const check = async (ref: Float32Array) => {
          Deno.writeFileSync(
            `${dir}/ref.safetensors`,
            serializeSafetensors({
              images: f32(x, [5, c.inChannels, c.size, c.size]),
              logits: f32(ref, [5, c.numClasses]),
            }),
          );
          return await CHECKER!.check(
            `${dir}/model.safetensors`,
            `${dir}/config.json`,
            `${dir}/ref.safetensors`,
          );
        };
        const good = await check(logits);
        assert.equal(good.code, 0, JSON.stringify(good));
        assert.equal(good.ok, true);
        assert.deepEqual(good.shape, [5, c.numClasses]);
        assertClose([good.max_abs_diff!], [0], { atol: 1e-4 });
        if (c.name === "resnet18") {
          // The checker can fail: one logit off by 1e-3 is reported.
          const off = logits.slice();
          off[3] += 1e-3;
          const bad = await check(off);
          assert.equal(bad.code, 1, JSON.stringify(bad));
          assert.equal(bad.ok, false);
        }
      } finally {
        model.dispose();
        Deno.removeSync(dir, { recursive: true });
        if (--casesLeft === 0) await CHECKER!.close();
      }
    },
  });
}
