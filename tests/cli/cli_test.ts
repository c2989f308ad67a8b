import assert from "node:assert/strict";
import "../helpers.ts";
import { encode as encodePng } from "@jsquash/png";
import { BUILTIN_CLASSES, builtinLabel, renderBuiltin } from "../../src/data/builtin.ts";
import { main as train } from "../../src/cli/train.ts";
import { main as evaluate } from "../../src/cli/evaluate.ts";
import { main as predict, topK } from "../../src/cli/predict.ts";
import { describeError } from "../../src/cli/common.ts";
import { ConfigError } from "../../src/train/config.ts";
import { tinyYaml } from "../train/fixtures.ts"; // registers tiny_mlp

async function captureLog(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const orig = console.log;
  let out = "";
  console.log = (...a: unknown[]) => {
    out += a.join(" ") + "\n";
  };
  try {
    const code = await fn();
    return { code, out };
  } finally {
    console.log = orig;
  }
}

Deno.test("cli: --help of every command", async () => {
  for (
    const [name, m] of [["train", train], ["evaluate", evaluate], ["predict", predict]] as const
  ) {
    const { code, out } = await captureLog(() => m(["--help"]));
    assert.equal(code, 0);
    assert.ok(out.startsWith(`Usage: deno task ${name} `), out);
  }
});

Deno.test("cli: bad configs give one-line messages and exit codes", async () => {
  const dir = Deno.makeTempDirSync();
  const cfg = `${dir}/c.yaml`;
  Deno.writeTextFileSync(cfg, tinyYaml(dir));
  const cases: [string[], string][] = [
    [
      ["trainer.maxEpochs=ten"],
      `override trainer.maxEpochs=ten: trainer.maxEpochs: expected a positive integer, got "ten"`,
    ],
    [["trainer.maxEpoch=1"], "override trainer.maxEpoch=1: trainer.maxEpoch: unknown key (known: "],
    [["model.name=resnet19"], `override model.name=resnet19: model.name: expected one of `],
    [
      ["data.source=imagefolder", `data.root=${dir}/missing`],
      `override data.root=${dir}/missing: data.root: expected an existing folder, got "${dir}/missing" (not found)`,
    ],
  ];
  for (const [ov, msg] of cases) {
    const e = await train([cfg, ...ov]).then(() => null, (e) => e);
    assert.ok(e instanceof ConfigError, String(e));
    const d = describeError(e);
    assert.equal(d.code, 2);
    assert.ok(d.message.startsWith(`config error: ${msg}`), d.message);
    assert.ok(!d.message.includes("\n"));
  }
  const unknownModel = describeError(await train([cfg, "model.name=resnet19"]).catch((e) => e));
  assert.match(unknownModel.message, /expected one of .*"resnet18".*"tiny_mlp".*, got "resnet19"$/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("cli: train, evaluate and predict a tiny model end to end", async () => {
  const dir = Deno.makeTempDirSync();
  const cfg = `${dir}/c.yaml`;
  Deno.writeTextFileSync(cfg, tinyYaml(dir));
  const run = `${dir}/run`;
  const t = await captureLog(() =>
    train([cfg, "trainer.maxEpochs=1", "trainer.progress=none", "--run-dir", run])
  );
  assert.equal(t.code, 0);
  assert.match(
    t.out,
    /^done in \d+s: 1 epochs, [\d.]+ train img\/s, best val\/acc_top1 [\d.]+, test\/acc_top1 [\d.]+$/m,
  );
  for (
    const f of [
      "config.yaml",
      "metrics.csv",
      "metrics.jsonl",
      "report.html",
      "checkpoints/best.json",
      "checkpoints/last.json",
    ]
  ) {
    assert.ok(Deno.statSync(`${run}/${f}`).isFile, f);
  }

  const e = await captureLog(() => evaluate([run, "--format", "json"]));
  assert.equal(e.code, 0);
  const r = JSON.parse(e.out);
  assert.equal(r.checkpoint, `${run}/checkpoints/best.json`);
  const names = BUILTIN_CLASSES.slice(0, 2);
  assert.deepEqual(r.classNames, names);
  assert.equal(r.images, 128);
  assert.equal(r.confusion.flat().reduce((a: number, b: number) => a + b), 128);
  const correct = r.confusion[0][0] + r.confusion[1][1];
  assert.equal(r.metrics["test/acc_top1"], correct / 128);
  const text = await captureLog(() => evaluate([`${run}/checkpoints/best.json`]));
  assert.match(text.out, /^test\/acc_top1: [\d.]+$/m);
  assert.ok(text.out.includes(`\n  ${names[0].padEnd(5)}  `), text.out);
  assert.match(text.out, / {2}\(64 images\)$/m);

  // The test split as PNG files: predict must agree with evaluate's confusion matrix.
  const imgs = `${dir}/imgs`;
  Deno.mkdirSync(imgs);
  const labels: number[] = [];
  for (let i = 0; i < 128; i++) {
    const index = 512 + 128 + i;
    const raw = renderBuiltin(index, { seed: 3, numClasses: 2, size: 8, channels: 3 });
    const rgba = new Uint8ClampedArray(64 * 4);
    for (let p = 0; p < 64; p++) rgba.set([...raw.data.subarray(p * 3, p * 3 + 3), 255], p * 4);
    const png = await encodePng(new ImageData(rgba, 8, 8));
    Deno.writeFileSync(`${imgs}/${String(i).padStart(3, "0")}.png`, new Uint8Array(png));
    labels.push(builtinLabel(index, 2));
  }
  let csv = "";
  assert.equal(await predict([run, imgs], { write: (s) => (csv += s) }), 0);
  const rows = csv.trim().split("\n");
  assert.equal(rows[0], "path,top1,p1,top2,p2");
  assert.equal(rows.length, 129);
  let agree = 0;
  rows.slice(1).forEach((row, i) => {
    const [path, top1, p1, top2, p2] = row.split(",");
    assert.equal(path, `${imgs}/${String(i).padStart(3, "0")}.png`);
    assert.ok(Math.abs(Number(p1) + Number(p2) - 1) < 1e-5);
    assert.ok(Number(p1) >= Number(p2));
    assert.notEqual(top1, top2);
    if (names.indexOf(top1) === labels[i]) agree++;
  });
  assert.equal(agree, correct, "predict on PNGs agrees with evaluate on the loader");
  let json = "";
  assert.equal(
    await predict([run, `${imgs}/000.png`, "--format", "json"], { write: (s) => (json += s) }),
    0,
  );
  const pj = JSON.parse(json);
  assert.equal(pj.predictions.length, 1);
  assert.deepEqual(
    pj.predictions[0].top.map((x: { name: string }) => x.name).sort(),
    [...names].sort(),
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("predict: softmax top-k, lower index wins ties", () => {
  const r = topK(Float32Array.of(0, 0, Math.log(2), 5, 5, 5), { rows: 2, k: 2 });
  assert.deepEqual(r[0].map(([i]) => i), [2, 0]);
  assert.ok(Math.abs(r[0][0][1] - 0.5) < 1e-7);
  assert.deepEqual(r[1].map(([i]) => i), [0, 1]);
});
