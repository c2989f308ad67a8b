/**
 * torch.save reader without Python: both file formats, views into shared storage, f16/bf16/i64,
 * Lightning checkpoints, the refused os.system pickle, and hostile or corrupt files. Fixtures
 * and expected values come from PyTorch (tests/golden/export_pth.py); no GPU needed.
 */
import assert from "node:assert/strict";
import {
  materialize,
  readTorchFile,
  TensorRef,
  TorchFileError,
  torchStateDict,
} from "../../src/nn/torch_file.ts";
import { hostToFloat32, hostToInt32 } from "../../src/nn/safetensors.ts";
import { crc32, readZip, ZipError } from "../../src/nn/zip_reader.ts";
import { PickleError, type PyDict, unpickle } from "../../src/nn/pickle.ts";

const FIX = new URL("../fixtures/pth/", import.meta.url);
const path = (n: string) => new URL(n, FIX).pathname;
const read = (n: string) => Deno.readFileSync(new URL(n, FIX));
const json = (n: string) => JSON.parse(Deno.readTextFileSync(new URL(n, FIX)));

function load(n: string, bytes = read(n)) {
  return torchStateDict(readTorchFile(bytes, path(n)));
}

const assertEquals = (a: unknown, b: unknown, msg?: string) => assert.deepStrictEqual(a, b, msg);

/** Runs `fn`, expecting an error of class `cls` whose message contains `text`; returns it. */
function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: new (...a: never[]) => E,
  text = "",
): E {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    assert.ok((e as Error).message.includes(text), `"${text}" in: ${(e as Error).message}`);
    return e as E;
  }
  throw new Error(`expected ${cls.name} to be thrown`);
}

/** Asserts a one-line TorchFileError whose message names the file and contains `what`. */
function assertBad(fn: () => unknown, file: string, what: RegExp): void {
  const e = assertThrows(fn, TorchFileError);
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
  assert.ok(e.message.includes(file), `names the file: ${e.message}`);
  assert.ok(what.test(e.message), `${what} in: ${e.message}`);
}

for (const file of ["views.pth", "views.legacy.pth"]) {
  Deno.test(`torch file: views into one shared storage (${file}) match PyTorch`, () => {
    const want = json("views.json") as Record<string, { shape: number[]; values: number[] }>;
    const sd = load(file);
    assertEquals([...sd.tensors.keys()], Object.keys(want));
    for (const [k, w] of Object.entries(want)) {
      const t = sd.tensors.get(k)!;
      assertEquals(t.shape, w.shape, k);
      const got = t.dtype === "I64" ? hostToInt32(t, k) : hostToFloat32(t, k);
      assertEquals(Array.from(got), w.values.map((v) => t.dtype === "I64" ? v : Math.fround(v)), k);
    }
  });
}

Deno.test("torch file: zip and legacy formats give bit-identical ResNet-18 tensors", () => {
  const a = load("resnet18_prefix.pth");
  const b = load("resnet18_prefix.legacy.pth");
  assertEquals(readTorchFile(read("resnet18_prefix.pth")).format, "zip");
  assertEquals(readTorchFile(read("resnet18_prefix.legacy.pth")).format, "legacy");
  assertEquals(a.tensors.size, 30);
  assertEquals([...a.tensors.keys()], [...b.tensors.keys()]);
  for (const [k, t] of a.tensors) {
    const u = b.tensors.get(k)!;
    assertEquals([t.dtype, t.shape], [u.dtype, u.shape], k);
    assertEquals(t.data, u.data, k);
  }
  assertEquals(a.tensors.get("bn1.num_batches_tracked")!.dtype, "I64");
  assertEquals(Array.from(hostToInt32(a.tensors.get("bn1.num_batches_tracked")!)), [2]);
});

Deno.test("torch file: f16 and bf16 storages decode to PyTorch's values", () => {
  const want = json("resnet18_stem.json") as Record<string, Record<string, number[]>>;
  for (const [tag, dtype] of [["f16", "F16"], ["bf16", "BF16"]] as const) {
    const sd = load(`resnet18_stem.${tag}.pth`);
    for (const [k, values] of Object.entries(want[tag])) {
      const t = sd.tensors.get(k)!;
      assertEquals(t.dtype, dtype, k);
      const got = hostToFloat32(t, k).subarray(0, values.length);
      assertEquals(Array.from(got), values, `${tag} ${k}`);
    }
  }
});

Deno.test("torch file: a Lightning .ckpt yields its state_dict with the model. prefix", () => {
  const sd = load("lightning_c10.ckpt");
  assertEquals(sd.container, "state_dict");
  assert.ok([...sd.tensors.keys()].every((k) => k.startsWith("model.") || k === "class_weights"));
  assertEquals(sd.tensors.get("model.fc.weight")!.shape, [10, 512]);
  // The rest of the checkpoint (optimizer tensors, callbacks, hparams) parsed too.
  const root = readTorchFile(read("lightning_c10.ckpt")).root as PyDict;
  assertEquals(root.get("global_step"), 120);
  const hp = root.get("hyper_parameters") as PyDict;
  assertEquals(hp.get("num_classes"), 10);
});

Deno.test("torch file: a pickle calling os.system is refused, naming the global", () => {
  assertBad(() => load("evil.pth"), "evil.pth", /refused global "posix\.system"/);
});

Deno.test("torch file: hostile sizes are one-line errors naming file and key", () => {
  assertBad(
    () => load("bad_short_storage.pth"),
    "bad_short_storage.pth",
    /data\/0.*needs 400 bytes.*has 16/,
  );
  assertBad(() => load("bad_extent.pth"), "bad_extent.pth", /tensor "w".*element 5.*storage has 4/);
  assertBad(() => load("bad_absurd.pth"), "bad_absurd.pth", /tensor "w".*absurd size/);
  assertBad(
    () => load("bad_absurd_storage.pth"),
    "bad_absurd_storage.pth",
    /data\/0.*1125899906842624 elements/,
  );
  assertBad(
    () => load("bad_dtype.pth"),
    "bad_dtype.pth",
    /tensor "w".*unsupported dtype torch\.ComplexFloatStorage/,
  );
});

Deno.test("torch file: a stride-0 tensor larger than the file is refused before allocating", () => {
  const f = readTorchFile(read("views.pth"), "views.pth");
  const base = (f.root as PyDict).get("base") as TensorRef;
  const huge = new TensorRef(base.storage, 0, [1 << 20, 1 << 10], [0, 0]);
  assertBad(() => materialize(huge, "huge", f), "views.pth", /tensor "huge".*exceed the file/);
});

Deno.test("torch file: truncated zip and legacy files are one-line errors", () => {
  const zip = read("resnet18_prefix.pth");
  for (const cut of [zip.length - 10, zip.length >> 1, 100, 3]) {
    assertBad(() => load("resnet18_prefix.pth", zip.slice(0, cut)), "resnet18_prefix.pth", /./);
  }
  const legacy = read("resnet18_prefix.legacy.pth");
  assertBad(
    () => load("resnet18_prefix.legacy.pth", legacy.slice(0, legacy.length - 100)),
    "resnet18_prefix.legacy.pth",
    /storage "\d+" needs \d+ bytes.*truncated/,
  );
  for (const cut of [1000, 50, 2]) {
    assertBad(
      () => load("resnet18_prefix.legacy.pth", legacy.slice(0, cut)),
      "resnet18_prefix.legacy.pth",
      /./,
    );
  }
});

Deno.test("torch file: a flipped byte in a storage fails its CRC, naming the entry", () => {
  const zip = read("resnet18_prefix.pth");
  const a = readZip(zip, "x");
  const e = [...a.entries.values()].find((e) => e.name.endsWith("data/0"))!;
  const bad = zip.slice();
  bad[e.dataOffset + 7] ^= 0x10;
  assertBad(
    () => load("resnet18_prefix.pth", bad),
    "resnet18_prefix.pth",
    /entry "resnet18_prefix\/data\/0" has CRC-32/,
  );
});

Deno.test("zip reader: CRC-32 matches the standard check value and every entry's record", () => {
  assertEquals(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const zip = read("lightning_c10.ckpt");
  const a = readZip(zip, "ckpt");
  assert.ok(a.entries.size > 5);
  for (const name of a.entries.keys()) a.read(name); // each CRC checked, none throws
  assertThrows(() => readZip(new Uint8Array(30), "tiny"), ZipError, "tiny");
});

Deno.test("pickle: refuses unknown globals and persistent ids without a loader", () => {
  // GLOBAL 'builtins eval', STOP
  const evil = Uint8Array.from("\x80\x02cbuiltins\neval\n.", (c) => c.charCodeAt(0));
  assertThrows(
    () => unpickle(evil, { globals: new Map() }),
    PickleError,
    'refused global "builtins.eval"',
  );
  // MARK, BININT1 1, TUPLE, BINPERSID, STOP
  const pid = new Uint8Array([0x80, 2, 0x28, 0x4b, 1, 0x74, 0x51, 0x2e]);
  assertThrows(() => unpickle(pid, { globals: new Map() }), PickleError, "persistent ids");
  // A BINUNICODE claiming 2^31 bytes in a 10-byte input.
  const long = new Uint8Array([0x80, 2, 0x58, 0, 0, 0, 0x80, 0x2e]);
  assertThrows(() => unpickle(long, { globals: new Map() }), PickleError, "truncated");
});
