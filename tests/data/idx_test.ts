import assert from "node:assert/strict";
import {
  encodeIdxImages,
  encodeIdxLabels,
  FASHION_MNIST_CLASSES,
  gzip,
  readIdxImages,
  readIdxLabels,
} from "../../src/data/idx.ts";
import { ClassificationDataModule, resolveDataConfig } from "../../src/data/data_module.ts";
import { DataError } from "../../src/data/errors.ts";

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ct_idx_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** n images 3×2 (pixel = 10·i + k) and labels i mod 3. */
function sample(n: number): { images: Uint8Array; labels: Uint8Array } {
  const images = encodeIdxImages({
    count: n,
    height: 3,
    width: 2,
    data: Uint8Array.from({ length: n * 6 }, (_, j) => (10 * Math.floor(j / 6) + (j % 6)) % 256),
  });
  const labels = encodeIdxLabels(Uint8Array.from({ length: n }, (_, i) => i % 3));
  return { images, labels };
}

for (const gz of [false, true]) {
  Deno.test(`idx: round trip (${gz ? "gzip" : "raw"})`, async () => {
    await withTmp(async (dir) => {
      const { images, labels } = sample(12);
      const ext = gz ? ".gz" : "";
      await Deno.writeFile(
        `${dir}/train-images-idx3-ubyte${ext}`,
        gz ? await gzip(images) : images,
      );
      await Deno.writeFile(
        `${dir}/train-labels-idx1-ubyte${ext}`,
        gz ? await gzip(labels) : labels,
      );
      const img = await readIdxImages(`${dir}/train-images-idx3-ubyte${ext}`);
      assert.deepEqual([img.count, img.height, img.width], [12, 3, 2]);
      assert.deepEqual(Array.from(img.data.subarray(6, 12)), [10, 11, 12, 13, 14, 15]);
      const lab = await readIdxLabels(`${dir}/train-labels-idx1-ubyte${ext}`);
      assert.deepEqual(Array.from(lab), Array.from({ length: 12 }, (_, i) => i % 3));
      // Through the data module: no t10k → test and val carved from train (stratified).
      const dm = new ClassificationDataModule(
        resolveDataConfig({
          source: "idx",
          root: dir,
          imageSize: 2,
          channels: 1,
          numWorkers: 0,
          valFraction: 0.25,
          testFraction: 0.25,
          augment: { mean: [0], std: [1], randomCrop: null, hflip: 0 },
        }),
        { seed: 1 },
      );
      await dm.setup();
      assert.deepEqual(dm.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
      assert.deepEqual(dm.sizes, { train: 6, val: 3, test: 3 });
      assert.deepEqual(Array.from(dm.labels("val")).sort(), [0, 1, 2]);
      // Eval pipeline resizes 3×2 → 2×2; check against the raw pixels of the first val sample.
      const vb = await dm.valLoader().hostBatches().next();
      assert.ok(!vb.done);
      assert.deepEqual(vb.value.shape, [3, 1, 2, 2]);
      dm.dispose();
    });
  });
}

Deno.test("idx: bad files give one-line errors naming the file", async () => {
  await withTmp(async (dir) => {
    const { images, labels } = sample(4);
    const p = `${dir}/x-ubyte`;
    const expectErr = async (
      bytes: Uint8Array,
      re: RegExp,
      read: (p: string) => Promise<unknown> = readIdxImages,
    ) => {
      await Deno.writeFile(p, bytes);
      await assert.rejects(() => read(p), (e: Error) => {
        assert.ok(e instanceof DataError, String(e));
        assert.match(e.message, re);
        assert.ok(e.message.includes(p) && !e.message.includes("\n"), e.message);
        return true;
      });
    };
    await expectErr(labels, /wrong magic number 0x00000801 \(expected 0x00000803/);
    await expectErr(images, /wrong magic number 0x00000803 \(expected 0x00000801/, readIdxLabels);
    await expectErr(
      images.subarray(0, images.length - 5),
      /truncated \(header says 40 bytes, file has 35\)/,
    );
    await expectErr(await gzip(images.subarray(0, 30)), /truncated/);
    await expectErr(images.subarray(0, 10), /truncated header/);
    const long = new Uint8Array(images.length + 3);
    long.set(images);
    await expectErr(long, /too long/);
    // A hostile header promising 2^32−1 images of 4096×4096: refused before any allocation.
    const hostile = images.slice(0, 16);
    new DataView(hostile.buffer).setUint32(4, 0xffffffff);
    new DataView(hostile.buffer).setUint32(8, 4096);
    new DataView(hostile.buffer).setUint32(12, 4096);
    await expectErr(hostile, /header promises \d+ bytes/);
    await expectErr(await gzip(hostile), /header promises/);
    const zeroDim = images.slice();
    new DataView(zeroDim.buffer).setUint32(8, 0);
    await expectErr(zeroDim, /image size 0x2 outside/);
    await expectErr(Uint8Array.of(0x1f, 0x8b, 1, 2, 3, 4, 5), /corrupt gzip|truncated/);
  });
});

Deno.test("idx: labels/images count mismatch and a missing folder", async () => {
  await withTmp(async (dir) => {
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, sample(4).images);
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, sample(5).labels);
    const dm = new ClassificationDataModule(resolveDataConfig({ source: "idx", root: dir }));
    await assert.rejects(() => dm.setup(), /5 labels but .*train-images-idx3-ubyte has 4 images/);
    const none = new ClassificationDataModule(
      resolveDataConfig({ source: "idx", root: `${dir}/nope` }),
    );
    await assert.rejects(() => none.setup(), /no train-images-idx3-ubyte\[\.gz\]/);
  });
});

Deno.test("idx: a stray label byte is an error naming the file and index, not 256 classes", async () => {
  await withTmp(async (dir) => {
    const labels = Uint8Array.from({ length: 30 }, (_, i) => i % 12);
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, sample(30).images);
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, encodeIdxLabels(labels));
    // Twelve contiguous classes are fine, and so are fewer than ten (MNIST-style folders).
    const ok = new ClassificationDataModule(resolveDataConfig({ source: "idx", root: dir }));
    await ok.setup();
    assert.equal(ok.numClasses, 12);
    ok.dispose();
    labels[17] = 255;
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, encodeIdxLabels(labels));
    const bad = new ClassificationDataModule(resolveDataConfig({ source: "idx", root: dir }));
    await assert.rejects(
      () => bad.setup(),
      (e: Error) =>
        e instanceof DataError && !e.message.includes("\n") &&
        /train-labels-idx1-ubyte: label 255 at index 17 leaves class 12 without any sample/
          .test(e.message),
    );
  });
});

const FASHION = "/usr/share/datasets/fashion-mnist";
const hasFashion = (() => {
  try {
    return Deno.statSync(`${FASHION}/t10k-labels-idx1-ubyte.gz`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "idx: Debian's Fashion-MNIST (test split only read)",
  ignore: !hasFashion,
  fn: async () => {
    const img = await readIdxImages(`${FASHION}/t10k-images-idx3-ubyte.gz`);
    const lab = await readIdxLabels(`${FASHION}/t10k-labels-idx1-ubyte.gz`);
    assert.deepEqual([img.count, img.height, img.width, lab.length], [10000, 28, 28, 10000]);
    const counts = new Array(10).fill(0);
    for (const l of lab) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
    assert.equal(FASHION_MNIST_CLASSES[9], "Ankle boot");
  },
});
