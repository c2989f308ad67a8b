import assert from "node:assert/strict";
import { assertClose } from "../helpers.ts";
import { ClassificationDataModule, resolveDataConfig } from "../../src/data/data_module.ts";
import type { PartialDataConfig } from "../../src/data/data_module.ts";
import { DataError } from "../../src/data/errors.ts";
import { decodeImage } from "../../src/data/image.ts";
import { collect, grayPng, rgba, withTmp, writeGrayJpeg, writeImage } from "./fixtures.ts";

/** Pixel (x, y) of class k, image i: distinct, exactly representable values. */
const px = (k: number, i: number) => (x: number, y: number) => [
  10 + 40 * k + x,
  20 + 10 * i + y,
  200 - 30 * k,
];

/** train/{ant,cat,dog} (PNG and JPEG), val/{cat,dog}; no test split. */
async function makeTree(root: string): Promise<void> {
  const classes = ["cat", "dog", "ant"]; // written unsorted on purpose
  for (const [k, cls] of classes.entries()) {
    for (let i = 0; i < 4; i++) {
      const ext = i % 2 === 0 ? "png" : "jpg";
      await writeImage(`${root}/train/${cls}/img${i}.${ext}`, rgba(4, 4, px(k, i)));
    }
  }
  await writeImage(`${root}/val/cat/v0.png`, rgba(4, 4, px(0, 9)));
  await writeImage(`${root}/val/dog/v0.jpeg`, rgba(4, 4, px(1, 9)));
}

const exact: PartialDataConfig = {
  source: "imagefolder",
  imageSize: 4,
  numWorkers: 0,
  batchSize: 4,
  augment: { mean: [0, 0, 0], std: [1, 1, 1], randomCrop: null, hflip: 0, resize: null },
};

Deno.test("imagefolder: classes sorted, splits, PNG exact and JPEG close, test carved", async () => {
  await withTmp(async (root) => {
    await makeTree(root);
    const dm = new ClassificationDataModule(
      resolveDataConfig({ ...exact, root, testFraction: 0.25 }),
      { seed: 3 },
    );
    await dm.setup();
    assert.deepEqual(dm.classNames, ["ant", "cat", "dog"]);
    assert.equal(dm.numClasses, 3);
    // 1 of 4 per class carved into test; val comes from the folder.
    assert.deepEqual(dm.sizes, { train: 9, val: 2, test: 3 });
    assert.deepEqual(Array.from(dm.labels("test")).sort(), [0, 1, 2]);
    assert.deepEqual(Array.from(dm.labels("val")), [1, 2]);
    const [vb] = await collect(dm.valLoader().hostBatches());
    assert.deepEqual(Array.from(vb.labels), [1, 2]);
    // cat/v0.png: class "cat" was written as k = 0, image 9; CHW, /255.
    const want: number[] = [];
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 4; x++) want.push(px(0, 9)(x, y)[c] / 255);
      }
    }
    assertClose(vb.images.subarray(0, 48), want, { msg: "png pixels" });
    // The JPEG (dog, k = 1) is lossy: close, not exact.
    const wantJ = want.map((_, i) => {
      const c = Math.floor(i / 16);
      const y = Math.floor((i % 16) / 4);
      return px(1, 9)(i % 4, y)[c] / 255;
    });
    assertClose(vb.images.subarray(48, 96), wantJ, { atol: 12 / 255, rtol: 0, msg: "jpeg pixels" });
    dm.dispose();
  });
});

Deno.test("imagefolder: grayscale PNG/JPEG become 3 equal channels; RGB → 1 channel is PIL luma", async () => {
  const png = await grayPng(3, 2, (x, y) => 50 * y + 10 * x);
  const g3 = await decodeImage(png, 3);
  assert.deepEqual(
    Array.from(g3.data),
    [0, 10, 20, 50, 60, 70].flatMap((v) => [v, v, v]),
  );
  // A hostile header (100000×100000) is refused before decoding.
  const huge = png.slice();
  new DataView(huge.buffer).setUint32(16, 100000);
  new DataView(huge.buffer).setUint32(20, 100000);
  await assert.rejects(() => decodeImage(huge, 3), /image size 100000x100000 outside/);
  await assert.rejects(() => decodeImage(Uint8Array.of(1, 2, 3, 4), 3), /not a PNG or JPEG/);
  const g1 = await decodeImage(png, 1);
  assert.deepEqual(Array.from(g1.data), [0, 10, 20, 50, 60, 70]);
  await withTmp(async (dir) => {
    await writeGrayJpeg(`${dir}/g.jpg`, rgba(8, 8, () => [90, 90, 90]));
    const j = await decodeImage(await Deno.readFile(`${dir}/g.jpg`), 3);
    for (let i = 0; i < 64; i++) {
      assert.equal(j.data[3 * i], j.data[3 * i + 1]);
      assert.equal(j.data[3 * i], j.data[3 * i + 2]);
      assert.ok(Math.abs(j.data[3 * i] - 90) <= 2, `gray jpeg value ${j.data[3 * i]}`);
    }
    await writeImage(`${dir}/c.png`, rgba(1, 1, () => [200, 100, 50]));
    const l = await decodeImage(await Deno.readFile(`${dir}/c.png`), 1);
    assert.equal(l.data[0], (19595 * 200 + 38470 * 100 + 7471 * 50 + 32768) >>> 16); // 124
  });
});

Deno.test("imagefolder: CMYK JPEG (which MozJPEG's wasm rejects) decodes through jpeg-js", async () => {
  // Written by PIL: 8×8, left half RGB (20, 120, 220), right half (200, 60, 30), saved as CMYK.
  const bytes = await Deno.readFile(new URL("./fixtures/cmyk.jpg", import.meta.url));
  const img = await decodeImage(bytes, 3);
  assert.deepEqual([img.width, img.height, img.channels], [8, 8, 3]);
  const at = (x: number, y: number) =>
    Array.from(img.data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
  assertClose(at(1, 1), [20, 120, 220], { atol: 4, rtol: 0 });
  assertClose(at(6, 6), [200, 60, 30], { atol: 4, rtol: 0 });
});

function expectDataError(re: RegExp): (e: Error) => boolean {
  return (e: Error) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

Deno.test("imagefolder: corrupt image fails naming the file, or is skipped, counted and warned once", async () => {
  await withTmp(async (root) => {
    await makeTree(root);
    const bad = `${root}/train/ant/broken.png`;
    await Deno.writeFile(
      bad,
      Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3),
    );
    const trunc = `${root}/train/cat/cut.png`;
    const full = await Deno.readFile(`${root}/train/cat/img0.png`);
    await Deno.writeFile(trunc, full.subarray(0, 40));
    const fail = new ClassificationDataModule(
      resolveDataConfig({ ...exact, root, testFraction: 0 }),
    );
    await fail.setup();
    await assert.rejects(
      () => collect(fail.trainLoader().hostBatches()),
      expectDataError(/corrupt or unreadable image .*(broken|cut)\.png: .*"fail"/),
    );
    fail.dispose();
    // The same error crosses the worker boundary as a DataError.
    const failW = new ClassificationDataModule(
      resolveDataConfig({ ...exact, root, testFraction: 0, numWorkers: 2 }),
    );
    await failW.setup();
    await assert.rejects(
      () => collect(failW.trainLoader().hostBatches()),
      expectDataError(/corrupt or unreadable image .*(broken|cut)\.png: .*"fail"/),
    );
    failW.dispose();
    const warnings: string[] = [];
    const skip = new ClassificationDataModule(
      resolveDataConfig({ ...exact, root, testFraction: 0, onCorrupt: "skip", dropLast: false }),
      { warn: (m) => warnings.push(m) },
    );
    await skip.setup();
    assert.equal(skip.sizes.train, 14);
    for (let epoch = 0; epoch < 2; epoch++) {
      const batches = await collect(skip.trainLoader().hostBatches());
      const n = batches.reduce((a, b) => a + b.labels.length, 0);
      assert.equal(n, 12, "two corrupt images skipped");
      for (const b of batches) assert.equal(b.images.length, b.labels.length * 48);
    }
    assert.equal(skip.corrupt.length, 2);
    assert.equal(warnings.length, 1, warnings.join(" | "));
    assert.match(warnings[0], /skipped 2 corrupt or unreadable image\(s\).*(broken|cut)\.png/);
    skip.dispose();
  });
});

Deno.test("imagefolder: empty class folder, unknown val class, non-image files, missing train", async () => {
  await withTmp(async (root) => {
    await makeTree(root);
    await Deno.mkdir(`${root}/train/empty`);
    const dm = () => new ClassificationDataModule(resolveDataConfig({ ...exact, root }));
    await assert.rejects(() => dm().setup(), expectDataError(/empty class folder .*train\/empty/));
    await Deno.remove(`${root}/train/empty`);
    await writeImage(`${root}/val/zebra/z.png`, rgba(4, 4, px(0, 0)));
    await assert.rejects(
      () => dm().setup(),
      expectDataError(
        /class folder .*val\/zebra is not a class of .*train \(train classes: ant, cat, dog\)/,
      ),
    );
    await Deno.remove(`${root}/val/zebra`, { recursive: true });
    await Deno.writeTextFile(`${root}/train/cat/notes.txt`, "hello");
    await Deno.writeTextFile(`${root}/train/README`, "hello");
    await Deno.writeTextFile(`${root}/train/dog/.DS_Store`, "");
    const warnings: string[] = [];
    const ok = new ClassificationDataModule(resolveDataConfig({ ...exact, root }), {
      warn: (m) => warnings.push(m),
    });
    await ok.setup();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /ignoring 2 non-image file\(s\) in .*train.*README.*notes\.txt/);
    assert.equal(ok.sizes.train + ok.sizes.test, 12);
    const none = new ClassificationDataModule(resolveDataConfig({ ...exact, root: `${root}/val` }));
    await assert.rejects(() => none.setup(), expectDataError(/no train folder/));
    assert.throws(
      () => new ClassificationDataModule(resolveDataConfig({ source: "imagefolder" })),
      expectDataError(/data\.root: expected a folder for source "imagefolder", got null/),
    );
  });
});

Deno.test("imagefolder: 2 workers give the same batches as inline, over 2 augmented epochs", async () => {
  await withTmp(async (root) => {
    await makeTree(root);
    const cfg = (numWorkers: number) =>
      resolveDataConfig({
        source: "imagefolder",
        root,
        imageSize: 8,
        batchSize: 3,
        numWorkers,
        augment: { randomResizedCrop: { scale: [0.3, 1], ratio: [0.75, 1.333] }, hflip: 0.5 },
      });
    const run = async (w: number) => {
      const dm = new ClassificationDataModule(cfg(w), { seed: 11 });
      await dm.setup();
      const out = [
        ...(await collect(dm.trainLoader().hostBatches())),
        ...(await collect(dm.trainLoader().hostBatches())),
        ...(await collect(dm.valLoader().hostBatches())),
      ];
      dm.dispose();
      return out;
    };
    const inline = await run(0);
    const workers = await run(2);
    assert.equal(workers.length, inline.length);
    assert.ok(inline.length >= 5);
    workers.forEach((b, i) => {
      assert.deepEqual(b.labels, inline[i].labels, `labels of batch ${i}`);
      assert.deepEqual(b.images, inline[i].images, `images of batch ${i}`);
    });
    // Epochs 0 and 1 differ (shuffle and augmentation both depend on the epoch).
    assert.notDeepEqual(inline[0].images, inline[3].images);
  });
});
