import assert from "node:assert/strict";
import "../helpers.ts";
import { build, tinyConfig } from "../train/fixtures.ts";

Deno.test("loader: setEpoch(e, k) yields batches k.. of epoch e, equal to a full pass", async () => {
  const root = Deno.makeTempDirSync();
  const { model, data } = await build(tinyConfig(root, ["data.augment.hflip=0.5"]));
  const loader = data.trainLoader();
  const full: { images: Float32Array; labels: Int32Array }[] = [];
  loader.setEpoch(2);
  for await (const b of loader.hostBatches()) full.push({ images: b.images, labels: b.labels });
  assert.equal(full.length, loader.length);
  loader.setEpoch(2, 5);
  const rest: { images: Float32Array; labels: Int32Array }[] = [];
  for await (const b of loader.hostBatches()) rest.push({ images: b.images, labels: b.labels });
  assert.equal(rest.length, full.length - 5);
  rest.forEach((b, i) => {
    assert.deepEqual(b.labels, full[i + 5].labels, `labels of batch ${i + 5}`);
    assert.deepEqual(b.images, full[i + 5].images, `pixels of batch ${i + 5}`);
  });
  // The start applies to one iteration only; the next one is a whole epoch (epoch 3).
  let n = 0;
  for await (const _ of loader.hostBatches()) n++;
  assert.equal(n, loader.length);
  assert.throws(() => loader.setEpoch(0, -1), /expected a start batch >= 0, got -1/);
  model.dispose();
  data.dispose();
  Deno.removeSync(root, { recursive: true });
});
