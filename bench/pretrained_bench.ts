/**
 * Parse and upload speed of a ResNet-50 `.pth` (about 100 MB, 1000 classes), in MB/s:
 * - parse: zip directory, CRC-32 of every storage, unpickling, host tensors;
 * - load: the whole `model.loadPretrained(bytes)` (parse, f32 conversion, GPU upload, copy).
 *
 * The file is `tests/fixtures/large/resnet50_1000.pth` when present (written by
 * `/usr/bin/python3 tests/golden/export_pth.py --full`); otherwise a file of the same layout
 * is synthesised here (a protocol-2 pickle of an OrderedDict of `_rebuild_tensor_v2` calls and
 * one stored zip entry per storage, as torch.save writes it).
 *
 * `deno bench --allow-read --allow-env bench/pretrained_bench.ts`
 */
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { ResNet50Model } from "../src/models/resnet_models.ts";
import { readTorchFile, torchStateDict } from "../src/nn/torch_file.ts";
import { crc32 } from "../src/nn/zip_reader.ts";

const ctx = await getDevice();
const model = new ResNet50Model({ numClasses: 1000 });

/** A torch.save-style zip of `model`'s state dict with pseudo-random f32 values. */
function synthesise(): Uint8Array {
  const enc = new TextEncoder();
  const parts: number[] = [];
  const op = (...b: number[]) => parts.push(...b);
  const str = (s: string) => {
    const b = enc.encode(s);
    op(0x58, b.length & 255, (b.length >> 8) & 255, 0, 0, ...b);
  };
  const int = (v: number) => op(0x4a, v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255);
  const global = (m: string, n: string) => op(0x63, ...enc.encode(`${m}\n${n}\n`));
  const storages: { key: string; bytes: Uint8Array }[] = [];
  op(0x80, 2);
  global("collections", "OrderedDict");
  op(0x29, 0x52, 0x28); // () REDUCE MARK
  for (const [k, t] of model.stateDict()) {
    if (k === "class_weights") continue;
    const name = k.slice("model.".length);
    const int64 = t.dtype === "i32";
    const key = String(storages.length);
    const n = t.size;
    const bytes = new Uint8Array(n * (int64 ? 8 : 4));
    if (!int64) {
      const f = new Float32Array(bytes.buffer);
      for (let i = 0; i < n; i++) f[i] = Math.sin(i * 0.618 + storages.length) * 0.05;
    }
    storages.push({ key, bytes });
    str(name);
    global("torch._utils", "_rebuild_tensor_v2");
    op(0x28, 0x28); // MARK (args) MARK (persistent id)
    str("storage");
    global("torch", int64 ? "LongStorage" : "FloatStorage");
    str(key);
    str("cpu");
    int(n);
    op(0x74, 0x51); // TUPLE BINPERSID
    int(0);
    op(0x28);
    for (const d of t.shape) int(d);
    op(0x74, 0x28);
    let s = 1;
    const strides = t.shape.map(() => 0);
    for (let i = t.shape.length - 1; i >= 0; i--) (strides[i] = s), (s *= t.shape[i]);
    for (const d of strides) int(d);
    op(0x74, 0x89); // TUPLE NEWFALSE
    global("collections", "OrderedDict");
    op(0x29, 0x52, 0x74, 0x52); // () REDUCE TUPLE REDUCE
  }
  op(0x75, 0x2e); // SETITEMS STOP
  const entries = [
    { name: "archive/data.pkl", bytes: Uint8Array.from(parts) },
    ...storages.map((s) => ({ name: `archive/data/${s.key}`, bytes: s.bytes })),
  ];
  const total = entries.reduce((a, e) => a + 30 + e.name.length + e.bytes.length, 0) +
    entries.reduce((a, e) => a + 46 + e.name.length, 0) + 22;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let p = 0;
  const offsets: number[] = [];
  const crcs = entries.map((e) => crc32(e.bytes));
  const header = (sig: number, e: (typeof entries)[number], i: number, central: boolean) => {
    dv.setUint32(p, sig, true);
    let q = p + 4 + (central ? 2 : 0);
    dv.setUint16(q, 20, true); // version needed
    q += 6; // flags, method 0
    q += 4; // time, date
    dv.setUint32(q, crcs[i], true);
    dv.setUint32(q + 4, e.bytes.length, true);
    dv.setUint32(q + 8, e.bytes.length, true);
    dv.setUint16(q + 12, e.name.length, true);
    q += 16;
    if (central) {
      dv.setUint32(q + 10, offsets[i], true); // comment, disk, attributes, then the offset
      q += 14;
    }
    out.set(enc.encode(e.name), q);
    p = q + e.name.length;
  };
  entries.forEach((e, i) => {
    offsets.push(p);
    header(0x04034b50, e, i, false);
    out.set(e.bytes, p);
    p += e.bytes.length;
  });
  const cd = p;
  entries.forEach((e, i) => header(0x02014b50, e, i, true));
  dv.setUint32(p, 0x06054b50, true);
  dv.setUint16(p + 8, entries.length, true);
  dv.setUint16(p + 10, entries.length, true);
  dv.setUint32(p + 12, p - cd, true);
  dv.setUint32(p + 16, cd, true);
  return out;
}

const large = new URL("../tests/fixtures/large/resnet50_1000.pth", import.meta.url);
let bytes: Uint8Array;
let origin: string;
try {
  bytes = Deno.readFileSync(large);
  origin = "torch.save";
} catch {
  bytes = synthesise();
  origin = "synthesised";
}
const mb = bytes.length / 1e6;

function parse(): number {
  return torchStateDict(readTorchFile(bytes, "resnet50.pth")).tensors.size;
}

async function load(): Promise<void> {
  await model.loadPretrained(bytes);
  await sync();
}

// A direct MB/s figure (Deno.bench prints time per iteration).
for (const [what, fn] of [["parse", parse], ["parse + upload", load]] as const) {
  await fn();
  const t0 = performance.now();
  const reps = 3;
  for (let i = 0; i < reps; i++) await fn();
  const s = (performance.now() - t0) / 1000 / reps;
  console.log(
    `resnet50 .pth (${origin}, ${mb.toFixed(1)} MB) ${what}: ${(mb / s).toFixed(0)} MB/s (${
      (s * 1000).toFixed(0)
    } ms; ${ctx.adapter.description})`,
  );
}

Deno.bench({
  name: `resnet50 .pth ${mb.toFixed(0)} MB: parse`,
  n: 3,
  warmup: 1,
  fn: () => void parse(),
});
Deno.bench({
  name: `resnet50 .pth ${mb.toFixed(0)} MB: parse + upload (${ctx.adapter.description})`,
  n: 3,
  warmup: 1,
  fn: load,
});
