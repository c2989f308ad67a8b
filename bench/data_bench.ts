/**
 * Decode + augment throughput of the data pipeline (no GPU upload), in images/s:
 * the built-in dataset and PNG folders at 32×32 and at 224 (RandomResizedCrop from 256×256),
 * each inline (0 workers) and with 2 workers, cache off so every epoch decodes (plus the
 * built-in set with the cache on).
 *
 * `deno bench --allow-read --allow-write --allow-env bench/data_bench.ts` (time per epoch), or
 * `deno run --allow-read --allow-write --allow-env bench/data_bench.ts` for an images/s table.
 * The PNG cases need --allow-write (they write a temporary folder) and are skipped without it.
 */
import { encode as encodePng } from "@jsquash/png";
import { ClassificationDataModule, resolveDataConfig } from "../src/data/data_module.ts";
import type { PartialDataConfig } from "../src/data/data_module.ts";
import { renderBuiltin } from "../src/data/builtin.ts";

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";

async function pngFolder(size: number, perClass: number): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: `ct_data_bench_${size}_` });
  for (let k = 0; k < 4; k++) {
    await Deno.mkdir(`${root}/train/c${k}`, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const img = renderBuiltin(k + 4 * i, { seed: 1, numClasses: 4, size, channels: 3 });
      const rgba = new Uint8ClampedArray(size * size * 4);
      for (let p = 0; p < size * size; p++) {
        rgba.set(img.data.subarray(3 * p, 3 * p + 3), 4 * p);
        rgba[4 * p + 3] = 255;
      }
      const bytes = await encodePng(new ImageData(rgba, size, size));
      await Deno.writeFile(`${root}/train/c${k}/${i}.png`, new Uint8Array(bytes));
    }
  }
  return root;
}

interface Case {
  name: string;
  cfg: PartialDataConfig;
}

const cases: Case[] = [];
const base: PartialDataConfig = {
  batchSize: 32,
  cache: false,
  valFraction: 0,
  testFraction: 0,
  prefetch: 2,
};
for (const w of [0, 2]) {
  cases.push({
    name: `builtin 32x32 (1024 images), ${w} workers`,
    cfg: {
      ...base,
      numWorkers: w,
      builtin: { numClasses: 4, trainSize: 1024, valSize: 0, testSize: 0 },
    },
  });
}
cases.push({
  name: "builtin 32x32 (1024 images), cache on (augment only after epoch 0), 0 workers",
  cfg: {
    ...base,
    cache: true,
    numWorkers: 0,
    builtin: { numClasses: 4, trainSize: 1024, valSize: 0, testSize: 0 },
  },
});
const roots: string[] = [];
if (canWrite) {
  const r32 = await pngFolder(32, 128);
  const r256 = await pngFolder(256, 16);
  roots.push(r32, r256);
  for (const w of [0, 2]) {
    cases.push({
      name: `PNG 32x32 folder (512 images), RandomCrop(4)+flip, ${w} workers`,
      cfg: { ...base, source: "imagefolder", root: r32, numWorkers: w },
    });
  }
  for (const w of [0, 2]) {
    cases.push({
      name: `PNG 256x256 folder (64 images), RandomResizedCrop(224)+flip, ${w} workers`,
      cfg: {
        ...base,
        source: "imagefolder",
        root: r256,
        imageSize: 224,
        numWorkers: w,
        augment: { randomResizedCrop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] } },
      },
    });
  }
}

async function prepare(
  c: Case,
): Promise<{ dm: ClassificationDataModule; epoch: () => Promise<number> }> {
  const dm = new ClassificationDataModule(resolveDataConfig(c.cfg), { seed: 0 });
  await dm.setup();
  const loader = dm.trainLoader();
  const epoch = async (): Promise<number> => {
    let n = 0;
    for await (const b of loader.hostBatches()) n += b.labels.length;
    return n;
  };
  await epoch(); // start workers, load wasm
  return { dm, epoch };
}

if (import.meta.main) {
  // `deno run`: print images/s.
  for (const c of cases) {
    const { dm, epoch } = await prepare(c);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 2000) n += await epoch();
    const s = (performance.now() - t0) / 1000;
    console.log(`${c.name}: ${(n / s).toFixed(0)} images/s`);
    dm.dispose();
  }
  for (const r of roots) await Deno.remove(r, { recursive: true });
} else {
  // `deno bench`: one measured epoch per iteration; worker start-up and the warm-up epoch are
  // outside the measurement, and the workers stop after each iteration so the run can exit.
  for (const c of cases) {
    Deno.bench({ name: c.name, group: "data", n: 3, warmup: 0 }, async (b) => {
      const p = await prepare(c);
      b.start();
      await p.epoch();
      b.end();
      p.dm.dispose();
    });
  }
}
