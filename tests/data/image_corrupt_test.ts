import assert from "node:assert/strict";
import { ClassificationDataModule, resolveDataConfig } from "../../src/data/data_module.ts";
import { DataError } from "../../src/data/errors.ts";
import { decodeImage, decoderInstances } from "../../src/data/image.ts";
import { checkLabels, DataLoader, type InlineExecutor } from "../../src/data/loader.ts";
import { Rng } from "../../src/data/rng.ts";
import { mutate } from "../../tools/fuzz/mutate.ts";
import { collect, grayPng, rgba, withTmp, writeImage } from "./fixtures.ts";

const golden = JSON.parse(
  await Deno.readTextFile(new URL("./image_golden.json", import.meta.url)),
) as Record<string, { width: number; height: number; rgb: string }>;
const fixture = (name: string): Promise<Uint8Array> =>
  Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
const pilRgb = (name: string): Uint8Array =>
  Uint8Array.from(atob(golden[name].rgb), (c) => c.charCodeAt(0));

function expectDataError(re: RegExp): (e: Error) => boolean {
  return (e: Error) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

/** Runs `fn` with console output captured; returns what was printed. */
async function silent(fn: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const saved = { ...console };
  for (const k of ["log", "error", "warn", "info", "debug"] as const) {
    console[k] = (...a: unknown[]) => void printed.push(a.join(" "));
  }
  try {
    await fn();
  } finally {
    Object.assign(console, saved);
  }
  return printed;
}

/** Offsets of the payload of every DQT, DHT and SOF segment (not their length fields). */
function tableBytes(jpeg: Uint8Array): number[] {
  const out: number[] = [];
  const dv = new DataView(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
  for (let p = 2; p + 4 <= jpeg.length && jpeg[p] === 0xff;) {
    const m = jpeg[p + 1];
    const len = dv.getUint16(p + 2);
    if (m === 0xda) break;
    if (m === 0xdb || m === 0xc4 || m === 0xc0 || m === 0xc2) {
      for (let i = p + 4; i < p + 2 + len; i++) out.push(i);
    }
    p += 2 + len;
  }
  return out;
}

Deno.test("image: PIL-written JPEGs and PNGs decode to exactly PIL's pixels", async () => {
  for (const name of Object.keys(golden).filter((k) => !k.startsWith("_"))) {
    const file = name + (name.includes("palette") || name.includes("rgba") ? ".png" : ".jpg");
    const img = await decodeImage(await fixture(file), 3);
    assert.deepEqual([img.width, img.height], [golden[name].width, golden[name].height], name);
    const want = pilRgb(name);
    const diff = img.data.findIndex((v, i) => v !== want[i]);
    assert.equal(diff, -1, `${name}: first difference from PIL at byte ${diff}`);
  }
});

Deno.test("image: corrupt JPEGs interleaved with a valid one never change its pixels", async () => {
  const valid = await fixture("pil_420_q90.jpg");
  const want = pilRgb("pil_420_q90");
  const tables = tableBytes(valid);
  const seeds = [{ name: "valid", bytes: valid, fields: [] }];
  const before = decoderInstances().jpeg;
  let rejected = 0;
  const printed = await silent(async () => {
    for (let i = 0; i < 400; i++) {
      const rng = Rng.from(13, i);
      let bad: Uint8Array;
      if (i % 4 !== 3) {
        // Damaged tables: the structure is intact, so these reach libjpeg and fail inside it
        // (error_exit → exit(1)), which once left the decoder's memory in a bad state.
        bad = valid.slice();
        for (let k = 0; k < 1 + rng.int(0, 3); k++) {
          bad[tables[rng.int(0, tables.length)]] ^= 1 << rng.int(0, 8);
        }
      } else {
        bad = mutate(seeds[0], seeds, rng).bytes;
      }
      try {
        await decodeImage(bad, 3);
      } catch (e) {
        expectDataError(/JPEG|PNG|image size/)(e as Error);
        rejected++;
      }
      const again = await decodeImage(valid, 3);
      const diff = again.data.findIndex((v, k) => v !== want[k]);
      assert.equal(diff, -1, `after corrupt input ${i}: valid JPEG differs at byte ${diff}`);
    }
  });
  assert.deepEqual(printed, [], "nothing reaches the console");
  const replaced = decoderInstances().jpeg - before;
  assert.ok(rejected >= 200, `only ${rejected} of 400 corrupt inputs were rejected`);
  assert.ok(replaced >= 100, `only ${replaced} decoder faults: the fault path was not exercised`);
});

Deno.test("image: cut or damaged files are refused with what is wrong, and nothing printed", async () => {
  const jpeg = await fixture("pil_444_q95.jpg");
  let sos = 2;
  while (!(jpeg[sos] === 0xff && jpeg[sos + 1] === 0xda)) sos++;
  const midScan = jpeg.subarray(0, Math.floor((sos + jpeg.length) / 2));
  const png = await fixture("pil_rgba.png");
  const idat = png.findIndex((_, i) => String.fromCharCode(...png.subarray(i, i + 4)) === "IDAT");
  const flipped = png.slice();
  flipped[idat + 10] ^= 0x10;
  // Complete chunks with valid CRCs whose zlib stream holds only half of the rows.
  const full = await grayPng(16, 16, (x, y) => x * 16 + y);
  const shortRows = await grayPng(16, 8, (x, y) => x * 16 + y);
  const shortIdat = full.slice();
  shortIdat.set(shortRows.subarray(16, 24), 16); // IHDR of the 16×8 image…
  const halfData = Uint8Array.from([...full.subarray(0, 33), ...shortRows.subarray(33)]);
  new DataView(halfData.buffer).setUint32(20, 16); // …claims 16 rows again
  const fixCrc = (b: Uint8Array) => {
    // Recompute the IHDR CRC so only the image data is short.
    let c = 0xffffffff;
    for (const x of b.subarray(12, 29)) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    new DataView(b.buffer).setUint32(29, (c ^ 0xffffffff) >>> 0);
  };
  fixCrc(halfData);
  const cases: [Uint8Array, RegExp][] = [
    [midScan, /^cut\.img: truncated JPEG: image data ends early at byte \d+ \(no end-of-image/],
    [jpeg.subarray(0, sos - 20), /^cut\.img: truncated JPEG: ends at byte \d+, inside its header$/],
    [
      Uint8Array.from([...midScan, 0xff, 0xd9]),
      /^cut\.img: corrupt JPEG \(Corrupt JPEG data: premature end of data segment/,
    ],
    [
      png.subarray(0, png.length - 12),
      /^cut\.img: truncated PNG: ends at byte \d+ without an IEND/,
    ],
    [png.subarray(0, idat + 40), /^cut\.img: truncated PNG: chunk IDAT at byte \d+ declares/],
    [flipped, /^cut\.img: corrupt PNG: bad CRC in chunk IDAT/],
    [halfData, /^cut\.img: (corrupt|truncated) PNG/],
  ];
  const printed = await silent(async () => {
    for (const [bytes, re] of cases) {
      await assert.rejects(() => decodeImage(bytes, 3, "cut.img"), expectDataError(re));
    }
  });
  assert.deepEqual(printed, [], "no decoder message reaches the console");
  // The decoders still work afterwards.
  const ok = await decodeImage(png, 3);
  assert.deepEqual(ok.data, pilRgb("pil_rgba"));
});

Deno.test("image: a folder JPEG cut in its scan data fails naming the file, or is skipped", async () => {
  await withTmp(async (root) => {
    for (let i = 0; i < 3; i++) {
      await writeImage(`${root}/train/a/${i}.jpg`, rgba(24, 24, (x, y) => [x * 9, y * 9, 99]));
      await writeImage(`${root}/train/b/${i}.jpg`, rgba(24, 24, (x, y) => [y * 9, 50, x * 9]));
    }
    const path = `${root}/train/b/1.jpg`;
    const whole = await Deno.readFile(path);
    await Deno.writeFile(path, whole.subarray(0, whole.length - 60));
    const base = { root, source: "imagefolder" as const, imageSize: 8, batchSize: 4 };
    const cfg = { ...base, testFraction: 0, valFraction: 0, numWorkers: 0, dropLast: false };
    const fail = new ClassificationDataModule(resolveDataConfig(cfg));
    await fail.setup();
    await assert.rejects(
      () => collect(fail.trainLoader().hostBatches()),
      expectDataError(/b\/1\.jpg: truncated JPEG: image data ends early.*"fail"/),
    );
    const warnings: string[] = [];
    const skip = new ClassificationDataModule(resolveDataConfig({ ...cfg, onCorrupt: "skip" }), {
      warn: (m) => warnings.push(m),
    });
    await skip.setup();
    const n = (await collect(skip.trainLoader().hostBatches()))
      .reduce((a, b) => a + b.labels.length, 0);
    assert.equal(n, 5);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /skipped 1 .*b\/1\.jpg: truncated JPEG/);
  });
});

Deno.test("labels: outside [0, C) is a DataError naming the sample, when the loader is built", () => {
  const opts = (labels: number[], numClasses?: number) => ({
    indices: Int32Array.from(labels, (_, i) => 10 + i),
    labels: Int32Array.from(labels),
    numClasses,
    sampleName: (i: number) => `img${i}.png`,
    batchSize: 2,
    dropLast: false,
    shuffle: false,
    train: false,
    seed: 0,
    prefetch: 0,
    sampleShape: [1, 1, 1] as [number, number, number],
    executor: (): InlineExecutor => {
      throw new Error("not iterated");
    },
  });
  assert.throws(
    () => new DataLoader(opts([0, 1, 3, 2], 3)),
    expectDataError(/^img12\.png: label 3 is outside \[0, 3\) \(3 classes\) \(position 2/),
  );
  assert.throws(
    () => new DataLoader(opts([0, -1])),
    expectDataError(/^img11\.png: label -1 is negative/),
  );
  assert.equal(new DataLoader(opts([0, 1, 2, 2, 0], 3)).length, 3);
  // Without a sample namer the global index is named.
  assert.throws(
    () => checkLabels({ indices: [7, 8], labels: [0, 5], numClasses: 5 }),
    expectDataError(/^sample 8: label 5 is outside \[0, 5\)/),
  );
});
