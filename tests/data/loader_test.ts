import assert from "node:assert/strict";
import "../helpers.ts"; // initialises the WebGPU device
import { memoryStats } from "../../src/gpu/tensor.ts";
import { ClassificationDataModule, resolveDataConfig } from "../../src/data/data_module.ts";
import type { PartialDataConfig } from "../../src/data/data_module.ts";
import { BUILTIN_CLASSES } from "../../src/data/builtin.ts";
import { DataError } from "../../src/data/errors.ts";
import { collect, rgba, withTmp, writeImage } from "./fixtures.ts";

const small: PartialDataConfig = {
  imageSize: 8,
  batchSize: 5,
  numWorkers: 0,
  builtin: { numClasses: 3, trainSize: 23, valSize: 7, testSize: 4 },
};

async function module(cfg: PartialDataConfig, seed = 5): Promise<ClassificationDataModule> {
  const dm = new ClassificationDataModule(resolveDataConfig(cfg), { seed });
  await dm.setup();
  return dm;
}

Deno.test("loader: lengths, dropLast on train only, balanced built-in labels", async () => {
  const dm = await module(small);
  assert.deepEqual(dm.classNames, BUILTIN_CLASSES.slice(0, 3));
  const tr = dm.trainLoader();
  assert.equal(tr.length, 4); // 23 / 5, last 3 dropped
  assert.equal(tr.batchSize, 5);
  assert.equal(tr.dropLast, true);
  const b = await collect(tr.hostBatches());
  assert.equal(b.length, 4);
  assert.ok(b.every((x) => x.labels.length === 5 && x.images.length === 5 * 3 * 64));
  const va = dm.valLoader();
  assert.equal(va.length, 2);
  assert.equal(va.dropLast, false);
  const vb = await collect(va.hostBatches());
  assert.deepEqual(vb.map((x) => x.labels.length), [5, 2]);
  // Val is in fixed order and the eval pipeline is deterministic: two passes are equal.
  assert.deepEqual(await collect(va.hostBatches()), vb);
  const counts = [0, 0, 0];
  for (const l of dm.labels("train")) counts[l]++;
  assert.deepEqual(counts, [8, 8, 7]);
  dm.dispose();
});

Deno.test("loader: same seed → same order and pixels across runs; setEpoch(k) resumes exactly", async () => {
  const a = await module(small);
  const b = await module(small);
  const e0 = await collect(a.trainLoader().hostBatches());
  const e1 = await collect(a.trainLoader().hostBatches()); // epoch advanced to 1
  assert.deepEqual(await collect(b.trainLoader().hostBatches()), e0);
  assert.notDeepEqual(e1.map((x) => x.labels), e0.map((x) => x.labels));
  // A fresh run resumed at epoch 1.
  const c = await module(small);
  c.trainLoader().setEpoch(1);
  assert.equal(c.trainLoader().epoch, 1);
  assert.deepEqual(await collect(c.trainLoader().hostBatches()), e1);
  // Going back to epoch 0 on the same loader reproduces epoch 0.
  a.trainLoader().setEpoch(0);
  assert.deepEqual(await collect(a.trainLoader().hostBatches()), e0);
  // Another seed gives another order.
  const d = await module(small, 6);
  assert.notDeepEqual(
    (await collect(d.trainLoader().hostBatches())).map((x) => x.labels),
    e0.map((x) => x.labels),
  );
  assert.throws(() => a.trainLoader().setEpoch(-1), /expected an integer >= 0, got -1/);
  for (const m of [a, b, c, d]) m.dispose();
});

Deno.test("loader: built-in data through 2 workers equals inline", async () => {
  const inline = await module({ ...small, prefetch: 2 });
  const pool = await module({ ...small, numWorkers: 2, prefetch: 2 });
  for (let epoch = 0; epoch < 2; epoch++) {
    assert.deepEqual(
      await collect(pool.trainLoader().hostBatches()),
      await collect(inline.trainLoader().hostBatches()),
    );
  }
  assert.deepEqual(
    await collect(pool.testLoader().hostBatches()),
    await collect(inline.testLoader().hostBatches()),
  );
  inline.dispose();
  pool.dispose();
});

Deno.test("loader: GPU batches are [N,C,H,W] f32 + [N] i32, equal to host batches, no leaks", async () => {
  const dm = await module(small);
  const host = await collect(dm.trainLoader().hostBatches());
  dm.trainLoader().setEpoch(0);
  const before = memoryStats().liveBuffers;
  let i = 0;
  for await (const { images, labels } of dm.trainLoader()) {
    assert.deepEqual(images.shape, [5, 3, 8, 8]);
    assert.equal(images.dtype, "f32");
    assert.deepEqual(labels.shape, [5]);
    assert.equal(labels.dtype, "i32");
    if (i === 0) {
      assert.deepEqual(new Float32Array(await images.toArray()), host[0].images);
      assert.deepEqual(Array.from(await labels.toArray()), Array.from(host[0].labels));
    }
    images.dispose();
    labels.dispose();
    i++;
  }
  assert.equal(i, 4);
  assert.equal(memoryStats().liveBuffers, before);
  dm.dispose();
});

Deno.test("loader: class weights on an imbalanced 3-class folder (1, 2, 4 images)", async () => {
  await withTmp(async (root) => {
    const n = { a: 1, b: 2, c: 4 };
    for (const [cls, k] of Object.entries(n)) {
      for (let i = 0; i < k; i++) {
        await writeImage(`${root}/train/${cls}/${i}.png`, rgba(2, 2, () => [i, i, i]));
      }
    }
    const dm = new ClassificationDataModule(
      resolveDataConfig({
        source: "imagefolder",
        root,
        numWorkers: 0,
        valFraction: 0,
        testFraction: 0,
      }),
    );
    await dm.setup();
    // w_c = (1/n_c) / mean_k(1/n_k): 1/n = [1, 0.5, 0.25], mean 7/12.
    const w = dm.getClassWeights();
    const want = [12 / 7, 6 / 7, 3 / 7];
    w.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `w[${i}] = ${v}, want ${want[i]}`));
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) / 3 - 1) < 1e-6, "mean 1");
    dm.dispose();
  });
  const bal = await module(small);
  const wb = bal.getClassWeights();
  // 8, 8, 7 → nearly ones, mean exactly 1.
  assert.ok(Math.abs(wb.reduce((a, b) => a + b, 0) / 3 - 1) < 1e-6);
  assert.ok(wb[2] > wb[0]);
  bal.dispose();
});

Deno.test("loader: invalid config fields are one-line DataErrors naming the field", () => {
  const bad = (cfg: PartialDataConfig, re: RegExp) =>
    assert.throws(() => new ClassificationDataModule(resolveDataConfig(cfg)), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, re);
      return true;
    });
  bad({ batchSize: 0 }, /data\.batchSize: expected an integer >= 1, got 0/);
  bad({ channels: 2 as 1 }, /data\.channels: expected 1 or 3, got 2/);
  bad({ valFraction: 0.6, testFraction: 0.5 }, /valFraction \+ testFraction < 1/);
  bad({ builtin: { numClasses: 11 } }, /data\.builtin\.numClasses: expected an integer in 2\.\.10/);
  bad(
    { augment: { mean: [0.5, 0.5] } },
    /^data\.augment\.mean: expected 1 or 3 values \(data\.channels is 3\), got 2$/,
  );
  bad(
    { augment: { randomResizedCrop: { scale: [0.5, 0.1], ratio: [1, 1] } } },
    /randomResizedCrop\.scale/,
  );
});
