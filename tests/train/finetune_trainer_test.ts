/**
 * The trainer with the fine-tuning fields: `model.pretrained` (loaded and reported),
 * `model.freeze` (frozen parameters end bit-equal to the pretrained file's) and
 * `optimizer.paramGroups`; 1 epoch + resume 1 epoch equals 2 epochs straight.
 */
import assert from "node:assert/strict";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { saveSafetensors } from "../../src/nn/safetensors.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { build, captureOut, tinyConfig } from "./fixtures.ts";

async function weightsOf(dict: Map<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of dict) out[k] = Array.from(await t.toArray());
  return out;
}

Deno.test("fit: pretrained + freeze + param groups; resume equals a straight run", async () => {
  const root = Deno.makeTempDirSync();
  // "Pretrained" weights: a tiny model with another seed, saved with torchvision-style keys.
  const src = await build(tinyConfig(root, ["seed=99"]));
  const pre = new Map([...src.model.stateDict()].filter(([k]) => k.startsWith("model.")));
  const file = `${root}/pre.safetensors`;
  await saveSafetensors(file, new Map([...pre].map(([k, t]) => [k.slice(6), t])));
  const preW = await weightsOf(pre);
  src.model.dispose();
  src.data.dispose();
  const ft = [
    "trainer.progress=lines",
    `model.pretrained=${file}`,
    "model.freeze=[fc1_bias]",
    "optimizer.paramGroups=[{match: fc2_weight, learningRate: 0.05}]",
  ];

  const straight = tinyConfig(root, [...ft, "logging.version=straight"]);
  const a = await build(straight);
  const out = captureOut();
  const ra = await new Trainer(straight, { out }).fit(a.model, a.data);
  assert.match(out.text, /pretrained .*pre\.safetensors \(safetensors\): 4 tensors loaded/);
  const wa = await weightsOf(a.model.stateDict());
  assert.deepEqual(wa["model.fc1_bias"], preW["model.fc1_bias"], "frozen: bit-equal to the file");
  assert.notDeepEqual(wa["model.fc1_weight"], preW["model.fc1_weight"], "trained");
  assert.equal(ra.lrs.length, 2);

  const cut = tinyConfig(root, [...ft, "logging.version=cut"]);
  const b = await build(cut);
  const interrupted = new Trainer(cut, {
    out: captureOut(),
    lossHook: (loss, epoch) => {
      if (epoch === 1) throw new Error("simulated interruption");
      return loss;
    },
  });
  await assert.rejects(() => interrupted.fit(b.model, b.data), /simulated interruption/);
  b.model.dispose();
  b.data.dispose();

  const resumed = tinyConfig(root, [
    ...ft,
    "logging.version=resumed",
    `resume=${root}/tiny/cut/checkpoints/last.json`,
  ]);
  const c = await build(resumed);
  const rc = await new Trainer(resumed, { out: captureOut() }).fit(c.model, c.data);
  const wc = await weightsOf(c.model.stateDict());
  assert.deepEqual(rc.lrs, ra.lrs.slice(1));
  for (const k of Object.keys(wa)) assert.deepEqual(wc[k], wa[k], `${k} identical after resume`);
  const ck = JSON.parse(Deno.readTextFileSync(`${root}/tiny/resumed/checkpoints/last.json`));
  assert.equal(ck.optimizer.paramGroups.length, 2, "both groups saved");
  assert.equal(ck.optimizer.paramGroups[1].initialLr, 0.05);
  for (const m of [a, c]) {
    m.model.dispose();
    m.data.dispose();
  }
  Deno.removeSync(root, { recursive: true });
});
