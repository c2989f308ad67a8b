import assert from "node:assert/strict";
import {
  crc32c,
  decodeEvent,
  encodeScalarEvent,
  frameRecord,
  maskedCrc32c,
  readEventFile,
  readRecords,
  TensorBoardWriter,
} from "../../src/train/tensorboard.ts";
import {
  atomicWrite,
  MetricFiles,
  type MetricRecord,
  parseCsv,
  parseJsonl,
  toCsv,
} from "../../src/train/loggers.ts";
import { renderReport } from "../../src/train/report.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("tensorboard: CRC-32C check values (RFC 3720 / the Castagnoli check)", () => {
  assert.equal(crc32c(enc("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // 32 bytes of 0xff
  // Masked: rotate right 15, add 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h).
  const c = 0xe3069283;
  assert.equal(
    maskedCrc32c(enc("123456789")),
    ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0,
  );
});

Deno.test("tensorboard: the Event protobuf bytes, field by field", () => {
  const b = encodeScalarEvent(3, { a: 1 }, { wallTime: 1.5 });
  // wall_time (1, double) 1.5, step (2, varint) 3, summary (5, len 10) {
  //   value (1, len 8) { tag (1, len 1) "a", simple_value (2, float) 1.0 } }
  assert.deepEqual(
    Array.from(b),
    [
      0x09,
      0,
      0,
      0,
      0,
      0,
      0,
      0xf8,
      0x3f,
      0x10,
      0x03,
      0x2a,
      0x0a,
      0x0a,
      0x08,
      0x0a,
      0x01,
      0x61,
      0x15,
      0,
      0,
      0x80,
      0x3f,
    ],
  );
  const ev = decodeEvent(b);
  assert.deepEqual(ev, { wallTime: 1.5, step: 3, scalars: { a: 1 } });
  // A large step uses a multi-byte varint.
  assert.equal(decodeEvent(encodeScalarEvent(300, { x: 2 }, { wallTime: 0 })).step, 300);
});

Deno.test("tensorboard: TFRecord framing and CRCs are checked on read", () => {
  const rec = frameRecord(enc("hello"));
  assert.equal(rec.length, 8 + 4 + 5 + 4);
  assert.equal(new DataView(rec.buffer).getBigUint64(0, true), 5n);
  assert.deepEqual(readRecords(rec).map((r) => new TextDecoder().decode(r)), ["hello"]);
  const bad = rec.slice();
  bad[13] ^= 1;
  assert.throws(() => readRecords(bad), /data CRC mismatch at byte 0/);
  const badLen = rec.slice();
  badLen[9] ^= 1;
  assert.throws(() => readRecords(badLen), /length CRC mismatch/);
});

Deno.test("tensorboard: a written file reads back (version event first, then scalars)", () => {
  const dir = Deno.makeTempDirSync();
  const w = new TensorBoardWriter(dir, { wallTime: 1000 });
  w.addScalars(1, { "train/loss_step": 0.5, "lr-AdamW": 1e-4 }, { wallTime: 1001 });
  w.addScalars(2, { "val/acc_top1": 0.75 }, { wallTime: 1002 });
  w.close();
  assert.match(w.path, /\/events\.out\.tfevents\.1000\.classifier-training\.\d+$/);
  const evs = readEventFile(w.path);
  assert.equal(evs.length, 3);
  assert.equal(evs[0].fileVersion, "brain.Event:2");
  assert.equal(evs[0].wallTime, 1000);
  assert.equal(evs[1].step, 1);
  assert.equal(evs[1].scalars["train/loss_step"], 0.5);
  assert.equal(evs[1].scalars["lr-AdamW"], Math.fround(1e-4));
  assert.deepEqual(evs[2], { wallTime: 1002, step: 2, scalars: { "val/acc_top1": 0.75 } });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("metrics.csv: Lightning CSVLogger layout (sorted union of columns, empty cells)", () => {
  const recs: MetricRecord[] = [
    { epoch: 0, step: 4, metrics: { "train/loss_step": 1.5 } },
    {
      epoch: 0,
      step: 8,
      metrics: { "val/acc_top1": 0.5, "lr-AdamW": 0.001, "train/loss_epoch": NaN },
    },
  ];
  const csv = toCsv(recs);
  assert.equal(
    csv,
    "epoch,lr-AdamW,step,train/loss_epoch,train/loss_step,val/acc_top1\n" +
      "0,,4,,1.5,\n" +
      "0,0.001,8,nan,,0.5\n",
  );
  const back = parseCsv(csv);
  assert.equal(back[1].metrics["val/acc_top1"], 0.5);
  assert.ok(Number.isNaN(back[1].metrics["train/loss_epoch"]));
  assert.deepEqual(back[0], recs[0]);
});

Deno.test("metrics files: csv rewritten as columns appear, jsonl appended", () => {
  const dir = Deno.makeTempDirSync();
  const f = new MetricFiles(dir, { csv: true, jsonl: true });
  f.add({ epoch: 0, step: 1, metrics: { a: 1 } });
  f.add({ epoch: 1, step: 2, metrics: { b: Infinity } });
  assert.equal(Deno.readTextFileSync(`${dir}/metrics.csv`), "a,b,epoch,step\n1,,0,1\n,inf,1,2\n");
  const j = parseJsonl(Deno.readTextFileSync(`${dir}/metrics.jsonl`));
  assert.deepEqual(j, [
    { epoch: 0, step: 1, metrics: { a: 1 } },
    { epoch: 1, step: 2, metrics: { b: Infinity } },
  ]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("atomicWrite: a crash before the rename leaves the old file and no temp file", () => {
  const dir = Deno.makeTempDirSync();
  atomicWrite(`${dir}/x.json`, "old");
  assert.throws(
    () =>
      atomicWrite(`${dir}/x.json`, "new", {
        beforeRename: () => {
          throw new Error("simulated crash");
        },
      }),
    /simulated crash/,
  );
  assert.equal(Deno.readTextFileSync(`${dir}/x.json`), "old");
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["x.json"]);
  atomicWrite(`${dir}/x.json`, "new");
  assert.equal(Deno.readTextFileSync(`${dir}/x.json`), "new");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("report.html: self-contained SVG with curves, per-class bars, confusion matrix", () => {
  const html = renderReport({
    title: "run <1>",
    records: [
      {
        epoch: 0,
        step: 4,
        metrics: { "train/loss_epoch": 1, "val/loss": 1.2, "val/acc_top1": 0.4, "lr-AdamW": 1e-3 },
      },
      {
        epoch: 1,
        step: 8,
        metrics: {
          "train/loss_epoch": 0.5,
          "val/loss": 0.7,
          "val/acc_top1": 0.8,
          "lr-AdamW": 5e-4,
        },
      },
    ],
    classNames: ["disk", "square"],
    confusion: [[9, 1], [2, 8]],
    evalLabel: "test",
    perClass: [0.9, 0.8],
    facts: { model: "resnet18" },
  });
  assert.ok(html.startsWith("<!DOCTYPE html>"));
  assert.ok(html.includes("run &#60;1&#62;"), "title escaped");
  assert.ok(!/<script|src=|href=/.test(html), "no scripts or external resources");
  assert.equal((html.match(/<svg /g) ?? []).length, 6);
  for (
    const s of [
      "Loss per epoch",
      "Accuracy per epoch",
      "Learning rate (lr-AdamW)",
      "Per-class accuracy",
      "Confusion matrix",
      ">disk<",
      ">square<",
      ">9<",
    ]
  ) {
    assert.ok(html.includes(s), s);
  }
});

Deno.test("tensorboard: an independent Python reader (tb_crosscheck.py) agrees", async () => {
  const dir = Deno.makeTempDirSync();
  const w = new TensorBoardWriter(dir, { wallTime: 1234.5 });
  w.addScalars(7, { "train/loss_step": 0.25, "val/acc_top1": 0.875 }, { wallTime: 1235.25 });
  w.addScalars(300, { "lr-AdamW": 0.5 }, { wallTime: 1236 });
  w.close();
  const script = new URL("./tb_crosscheck.py", import.meta.url).pathname;
  const out = await new Deno.Command("/usr/bin/python3", { args: [script, w.path] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const events = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(events, [
    { wall_time: 1234.5, step: 0, scalars: {}, file_version: "brain.Event:2" },
    { wall_time: 1235.25, step: 7, scalars: { "train/loss_step": 0.25, "val/acc_top1": 0.875 } },
    { wall_time: 1236, step: 300, scalars: { "lr-AdamW": 0.5 } },
  ]);
  Deno.removeSync(dir, { recursive: true });
});
