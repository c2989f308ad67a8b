/**
 * Run reliability: no validation (`limitValBatches: 0`), resume with another class count,
 * no run folder after a failed start, parallel runs claiming distinct folders, and a real
 * SIGINT mid-epoch followed by an exact resume.
 */
import assert from "node:assert/strict";
import "../helpers.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { Trainer, type TrainerDataModule } from "../../src/train/trainer.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { ConfigError } from "../../src/train/config.ts";
import { parseCsv } from "../../src/train/loggers.ts";
import { build, tinyConfig, tinyYaml, withTinyRun } from "./fixtures.ts";

const REPO = new URL("../../", import.meta.url).pathname;

async function weightsOf(dict: Map<string, Tensor>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [k, t] of dict) out[k] = Array.from(await t.toArray());
  return out;
}

/** Starts the `train` command (tiny model registered) on the tiny config in `root`. */
function spawnTrain(root: string, overrides: string[]): Deno.ChildProcess {
  const yaml = `${root}/tiny.yaml`;
  Deno.writeTextFileSync(yaml, tinyYaml(root));
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("./children/train_cli.ts", import.meta.url).pathname,
      yaml,
      "trainer.progress=lines",
      ...overrides,
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function dirNames(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("limitValBatches 0: no validation, callbacks after each train epoch, last saved", () =>
  withTinyRun([
    "trainer.progress=none",
    "trainer.limitValBatches=0",
    "checkpoint.monitor=train/loss_epoch",
    "checkpoint.mode=min",
  ], async ({ cfg, model, data }) => {
    const tr = new Trainer(cfg);
    const r = await tr.fit(model, data);
    tr.close();
    assert.equal(r.epochs, 2);
    const csv = parseCsv(Deno.readTextFileSync(`${r.runDir}/metrics.csv`));
    assert.ok(csv.length > 0);
    for (const row of csv) {
      assert.ok(!Object.keys(row.metrics).some((k) => k.startsWith("val/")), "no val/ metric");
    }
    const last = await loadCheckpoint(`${r.runDir}/checkpoints/last.json`);
    assert.equal(last.state.epoch, 1);
    last.dispose();
    const losses = csv.filter((x) => "train/loss_epoch" in x.metrics)
      .map((x) => x.metrics["train/loss_epoch"]);
    assert.equal(r.bestScore, Math.min(...losses));
  }));

Deno.test("limitValBatches 0 with a val/ monitor is a config error that says why", () => {
  const root = Deno.makeTempDirSync();
  assert.throws(
    () => tinyConfig(root, ["trainer.limitValBatches=0"]),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /checkpoint\.monitor: expected a metric logged without validation .* got "val\/acc_top1": trainer\.limitValBatches is 0, so validation never runs/,
      );
      return true;
    },
  );
  assert.throws(
    () =>
      tinyConfig(root, [
        "trainer.limitValBatches=0",
        "checkpoint.saveBest=false",
        "earlyStopping.monitor=val/loss",
      ]),
    /earlyStopping\.monitor: .*got "val\/loss": trainer\.limitValBatches is 0/,
  );
  // Not used, so not an error: saveBest off and no early stopping.
  tinyConfig(root, ["trainer.limitValBatches=0", "checkpoint.saveBest=false"]);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("resume with another class count: says so in the user's terms, leaves no folder", async () => {
  const root = Deno.makeTempDirSync();
  const first = tinyConfig(root, ["trainer.progress=none", "trainer.maxEpochs=1"]);
  const a = await build(first);
  await new Trainer(first).fit(a.model, a.data);
  a.model.dispose();
  a.data.dispose();
  const resumed = tinyConfig(root, [
    "trainer.progress=none",
    "data.builtin.numClasses=3",
    `resume=${root}/tiny/version_0/checkpoints/last.json`,
  ]);
  const b = await build(resumed);
  await assert.rejects(
    () => new Trainer(resumed).fit(b.model, b.data),
    (e: Error) => {
      assert.match(
        e.message,
        /^resume: checkpoint ".*last\.json" has 2 classes \(([^,]+), ([^,)]+)\), the data has 3 \(\1, \2, [^)]+\)/,
      );
      return true;
    },
  );
  assert.deepEqual(dirNames(`${root}/tiny`), ["version_0"], "the failed start left no folder");
  b.model.dispose();
  b.data.dispose();
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a failed setup creates no run folder", async () => {
  const root = Deno.makeTempDirSync();
  const cfg = tinyConfig(root, ["trainer.progress=none"]);
  const { model, data } = await build(cfg);
  const broken: TrainerDataModule = {
    setup: () => Promise.reject(new Error("data: train folder not found")),
    trainLoader: () => data.trainLoader(),
    valLoader: () => data.valLoader(),
    testLoader: () => data.testLoader(),
    numClasses: data.numClasses,
    classNames: data.classNames,
  };
  await assert.rejects(() => new Trainer(cfg).fit(model, broken), /train folder not found/);
  assert.deepEqual(dirNames(root), [], "no tiny/version_N folder");
  model.dispose();
  data.dispose();
  Deno.removeSync(root, { recursive: true });
});

Deno.test("runs started at the same moment claim distinct version folders", async () => {
  const root = Deno.makeTempDirSync();
  const n = 6;
  const script = new URL("./children/claim_run_dir.ts", import.meta.url).pathname;
  // Every child spins until the same instant, then claims (after its start-up).
  const start = Date.now() + 3000;
  const children = Array.from({ length: n }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", script, root, String(start)],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).output());
  const outs = await Promise.all(children);
  const claimed = outs.map((o) => {
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    return new TextDecoder().decode(o.stdout).trim();
  });
  assert.equal(new Set(claimed).size, n, `distinct folders: ${claimed.join(", ")}`);
  assert.deepEqual(
    dirNames(`${root}/race`),
    Array.from({ length: n }, (_, i) => `version_${i}`).sort(),
  );
  Deno.removeSync(root, { recursive: true });
});

Deno.test("SIGINT mid-epoch: last saved at the step, exit 130, resume equals an uninterrupted run", async () => {
  const root = Deno.makeTempDirSync();
  const yaml = `${root}/tiny.yaml`;
  const common = ["trainer.logEveryNSteps=1", "trainer.test=false", "logging.report=false"];
  const child = spawnTrain(root, common);
  // Send the signal once the child reports its third training step of epoch 1.
  let out = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let signalled = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    if (!signalled && /^train epoch 1\/2 step 3\/16 /m.test(out)) {
      child.kill("SIGINT");
      signalled = true;
    }
  }
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assert.ok(signalled, `the child never reached step 3: ${out}\n${stderr}`);
  assert.equal(status.code, 130, `exit code (stdout: ${out}\nstderr: ${stderr})`);
  const lastPath = `${root}/tiny/version_0/checkpoints/last.json`;
  assert.match(out, /^SIGINT: stopping after this step/m);
  assert.ok(
    out.includes(`interrupted; resume with:\n  deno task train ${yaml} `) &&
      out.includes(` resume=${lastPath}\n`),
    out,
  );
  const ck = await loadCheckpoint(lastPath);
  const { nextEpoch, nextBatch } = ck.state.rng;
  ck.dispose();
  assert.equal(nextEpoch, 0, "stopped inside epoch 0");
  assert.ok(nextBatch !== undefined && nextBatch >= 3 && nextBatch < 16, `batch ${nextBatch}`);

  // The resumed run ends with the weights of an uninterrupted one.
  const straight = tinyConfig(root, ["trainer.progress=none", "logging.version=straight"]);
  const a = await build(straight);
  const ra = await new Trainer(straight).fit(a.model, a.data);
  const wa = await weightsOf(a.model.stateDict());
  const resumed = tinyConfig(root, [
    "trainer.progress=none",
    ...common,
    `resume=${lastPath}`,
  ]);
  const c = await build(resumed);
  const rc = await new Trainer(resumed).fit(c.model, c.data);
  const wc = await weightsOf(c.model.stateDict());
  assert.equal(rc.globalStep, ra.globalStep);
  assert.deepEqual(Object.keys(wc), Object.keys(wa));
  for (const k of Object.keys(wa)) assert.deepEqual(wc[k], wa[k], `${k} identical after resume`);
  // The interrupted epoch's means cover all of its batches (the checkpoint kept the sums so
  // far), not only those after the resume: equal up to the order of f32 additions.
  const epochMetrics = (dir: string) =>
    parseCsv(Deno.readTextFileSync(`${dir}/metrics.csv`))
      .filter((x) => "train/loss_epoch" in x.metrics)
      .map((x) => [x.metrics["train/loss_epoch"], x.metrics["train/acc_top1"]] as number[]);
  const [ea, ec] = [epochMetrics(ra.runDir), epochMetrics(rc.runDir)];
  assert.equal(ec.length, 2, "both epochs' metrics are in the resumed run's metrics.csv");
  for (const [e, row] of ea.entries()) {
    assert.ok(
      Math.abs(ec[e][0] - row[0]) <= 1e-6 * Math.abs(row[0]),
      `epoch ${e} loss ${ec[e][0]} vs ${row[0]}`,
    );
    assert.equal(ec[e][1], row[1], `epoch ${e} train/acc_top1`);
  }
  for (const m of [a, c]) {
    m.model.dispose();
    m.data.dispose();
  }
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a second SIGINT exits at once with 130; the previous last checkpoint stays intact", async () => {
  const root = Deno.makeTempDirSync();
  // 128 batches an epoch and one optimizer step per 32: the first SIGINT waits for a step
  // that takes 32 batches, so the second one lands while the step still runs (with 8, a
  // loaded machine could finish the step before the parent saw the first message).
  const child = spawnTrain(root, [
    "trainer.logEveryNSteps=1",
    "trainer.accumulateGradBatches=32",
    "data.builtin.trainSize=4096",
    "trainer.test=false",
    "logging.report=false",
  ]);
  let out = "";
  let sent = 0;
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    if (sent === 0 && /^train epoch 2\/2 step 32\/128 /m.test(out)) {
      child.kill("SIGINT");
      sent = 1;
    } else if (sent === 1 && /^SIGINT: stopping after this step/m.test(out)) {
      child.kill("SIGINT");
      sent = 2;
    }
  }
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assert.equal(sent, 2, `both signals sent (stdout: ${out}\nstderr: ${stderr})`);
  assert.equal(status.code, 130);
  assert.ok(!out.includes("resume with"), `exited at once, without saving: ${out}`);
  const ck = await loadCheckpoint(`${root}/tiny/version_0/checkpoints/last.json`);
  assert.equal(ck.state.epoch, 0, "the end-of-epoch-0 checkpoint is intact");
  assert.equal(ck.state.rng.nextEpoch, 1);
  assert.equal(ck.weights.size, 5);
  ck.dispose();
  Deno.removeSync(root, { recursive: true });
});
