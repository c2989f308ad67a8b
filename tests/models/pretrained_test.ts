/**
 * `model.loadPretrained`: PyTorch files into the registered ResNets, checked against PyTorch's
 * own outputs (tests/golden/export_pth.py): feature parity after loading, head replacement
 * with a bit-equal backbone, 1-channel conv1, safetensors with and without the `model.`
 * prefix, our own checkpoints, strictness, and an unchanged model after a bad file.
 */
import assert from "node:assert/strict";
import { assertClose, largeFixturesReady } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { ResNet18Model, ResNet50Model, type ResNetModel } from "../../src/models/resnet_models.ts";
import {
  formatPretrainedReport,
  type PretrainedReport,
  type ReadPretrained,
} from "../../src/models/pretrained.ts";
import { readTorchFile, torchStateDict } from "../../src/nn/torch_file.ts";
import {
  type HostTensor,
  hostToFloat32,
  hostToInt32,
  saveSafetensors,
  serializeSafetensors,
} from "../../src/nn/safetensors.ts";
import { readBackAll } from "../../src/train/checkpoint.ts";

const FIX = new URL("../fixtures/pth/", import.meta.url);
const LARGE = new URL("../fixtures/large/", import.meta.url);
const file = (n: string) => new URL(n, FIX).pathname;
const json = (u: URL) => JSON.parse(Deno.readTextFileSync(u));

function exists(u: URL): boolean {
  try {
    Deno.statSync(u);
    return true;
  } catch {
    return false;
  }
}

/** The file's tensors as PyTorch saved them (decoded by the reader under test elsewhere). */
function fileTensors(path: string): Map<string, HostTensor> {
  return torchStateDict(readTorchFile(Deno.readFileSync(path), path)).tensors;
}

/** All of the model's tensors read back, by key. */
async function snapshot(m: ResNetModel): Promise<Map<string, Float32Array | Int32Array>> {
  const sd = m.stateDict();
  const values = await readBackAll([...sd.values()]);
  return new Map([...sd.keys()].map((k, i) => [k, values[i]]));
}

function hostValues(t: HostTensor, k: string): Float32Array | Int32Array {
  return t.dtype === "I64" || t.dtype === "I32" ? hostToInt32(t, k) : hostToFloat32(t, k);
}

async function features(m: ResNetModel, x: number[], shape: number[], stages?: number) {
  m.eval();
  const y = scope(() =>
    noGrad(() => {
      const xt = Tensor.fromArray(Float32Array.from(x), shape);
      return stages === undefined ? m.forward(xt) : m.resnet.forwardFeatures(xt, { stages });
    })
  );
  try {
    return await y.toArray();
  } finally {
    y.dispose();
  }
}

for (const name of ["resnet18_prefix.pth", "resnet18_prefix.legacy.pth"]) {
  Deno.test(`loadPretrained: ${name} gives PyTorch's layer1 output (1e-4)`, async () => {
    using m = new ResNet18Model({ numClasses: 1000 });
    const r = await m.loadPretrained(file(name), { strict: false });
    assert.equal(r.loaded.length, 30);
    assert.ok(r.kept.includes("model.layer2.0.conv1.weight"));
    assert.ok(r.kept.includes("model.fc.weight"));
    const ref = json(new URL("resnet18_prefix.json", FIX));
    const y = await features(m, ref.x, ref.xShape, 1);
    assertClose(y, ref.layer1, { atol: 1e-4, rtol: 1e-4, msg: name });
    // Loaded tensors are bit-equal to the file's.
    const snap = await snapshot(m);
    for (const [k, t] of fileTensors(file(name))) {
      assert.deepEqual(snap.get(`model.${k}`), hostValues(t, k), k);
    }
  });
}

Deno.test("loadPretrained: strict by default, naming the first missing keys", async () => {
  using m = new ResNet18Model({ numClasses: 1000 });
  await assert.rejects(
    () => m.loadPretrained(file("resnet18_prefix.pth")),
    /resnet18_prefix\.pth": missing keys "model\.layer2\.0\.conv1\.weight", .* and \d+ more.*pretrainedStrict: false/,
  );
  await assert.rejects(
    () => m.loadPretrained(file("views.pth")),
    /unexpected keys "base", "t", "slice", "row", "col" and 3 more/,
  );
});

Deno.test("loadPretrained: Lightning .ckpt into 43 classes re-initialises the head, bit-equal stem", async () => {
  using m = new ResNet18Model({ numClasses: 43, seed: 5 });
  const before = await snapshot(m);
  const r = await m.loadPretrained(file("lightning_c10.ckpt"), { strict: false });
  assert.ok(r.format.includes('under "state_dict"'), r.format);
  assert.deepEqual(r.notes[0], "fc: 10 → 43 classes, re-initialised");
  assert.deepEqual(r.reinitialized, ["model.fc.weight", "model.fc.bias"]);
  assert.ok(r.ignored.includes("class_weights"));
  assert.equal(r.loaded.length, 6); // conv1.weight and the 5 bn1 tensors, nothing of fc
  assert.ok(!r.loaded.includes("model.fc.weight"));
  const after = await snapshot(m);
  const tensors = fileTensors(file("lightning_c10.ckpt"));
  for (const [k, t] of tensors) {
    if (k === "class_weights" || k.startsWith("model.fc.")) continue;
    assert.deepEqual(after.get(k), hostValues(t, k), k);
  }
  // torchvision's Linear init: U(±1/√512), and fresh (not the file's 10-class head).
  const w = after.get("model.fc.weight") as Float32Array;
  const bound = 1 / Math.sqrt(512);
  assert.equal(w.length, 43 * 512);
  assert.ok(w.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...w.map(Math.abs)) > 0.9 * bound);
  assert.deepEqual(
    after.get("model.layer1.0.conv1.weight"),
    before.get("model.layer1.0.conv1.weight"),
  );
  assert.ok(formatPretrainedReport(r).includes("fc: 10 → 43 classes, re-initialised"));
});

Deno.test("loadPretrained: inChannels 1 sums conv1 over the RGB input channels", async () => {
  using m = new ResNet18Model({ numClasses: 10, inChannels: 1 });
  const r = await m.loadPretrained(file("resnet18_prefix.pth"), { strict: false });
  assert.ok(r.notes.some((n) => n.includes("conv1: 3 → 1 input channel, summed")), r.notes.join());
  const w = hostToFloat32(fileTensors(file("resnet18_prefix.pth")).get("conv1.weight")!);
  const got = (await snapshot(m)).get("model.conv1.weight") as Float32Array;
  assert.equal(got.length, 64 * 49);
  for (let o = 0; o < 64; o++) {
    for (let q = 0; q < 49; q++) {
      const want = Math.fround(
        Math.fround(w[(o * 3) * 49 + q] + w[(o * 3 + 1) * 49 + q]) + w[(o * 3 + 2) * 49 + q],
      );
      assert.equal(got[o * 49 + q], want, `conv1[${o}, 0, ${q}]`);
    }
  }
});

Deno.test("loadPretrained: safetensors with torchvision names, with or without model.", async () => {
  const tensors = fileTensors(file("resnet18_prefix.pth"));
  const plain = serializeSafetensors(tensors);
  const prefixed = serializeSafetensors(
    new Map([...tensors].map(([k, t]) => [`model.${k}`, t])),
  );
  const snaps = [];
  for (const bytes of [plain, prefixed]) {
    using m = new ResNet18Model({ numClasses: 10 });
    const r = await m.loadPretrained(bytes, { strict: false });
    assert.equal(r.format, "safetensors");
    assert.equal(r.loaded.length, 30);
    snaps.push(await snapshot(m));
  }
  for (const [k, t] of tensors) {
    assert.deepEqual(snaps[0].get(`model.${k}`), hostValues(t, k), k);
    assert.deepEqual(snaps[1].get(`model.${k}`), hostValues(t, k), k);
  }
});

Deno.test("loadPretrained: the project's own checkpoint (.json) round-trips bit-equal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using a = new ResNet18Model({ numClasses: 7, seed: 11 });
    await saveSafetensors(`${dir}/w.safetensors`, a.stateDict());
    await Deno.writeTextFile(`${dir}/best.json`, JSON.stringify({ weights: "w.safetensors" }));
    using b = new ResNet18Model({ numClasses: 7, seed: 12 });
    const r = await b.loadPretrained(`${dir}/best.json`);
    assert.equal(r.reinitialized.length, 0);
    assert.deepEqual(await snapshot(b), await snapshot(a));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPretrained: a bad file leaves an already-loaded model unchanged", async () => {
  using m = new ResNet18Model({ numClasses: 1000 });
  await m.loadPretrained(file("resnet18_prefix.pth"), { strict: false });
  const before = await snapshot(m);
  const good = Deno.readFileSync(file("resnet18_prefix.pth"));
  const badCrc = good.slice();
  badCrc[good.length >> 1] ^= 1;
  const cases: [string | Uint8Array, RegExp][] = [
    [file("evil.pth"), /refused global "posix\.system"/],
    [file("bad_extent.pth"), /bad_extent\.pth.*tensor "w"/],
    [file("bad_short_storage.pth"), /bad_short_storage\.pth.*data\/0/],
    [file("bad_absurd.pth"), /absurd size/],
    [file("bad_dtype.pth"), /unsupported dtype/],
    [good.slice(0, good.length - 5000), /zip/],
    [badCrc, /CRC-32/],
    [file("lightning_c10.ckpt"), /missing keys/], // strict: the ckpt lacks layer1..4
  ];
  for (const [src, re] of cases) {
    await assert.rejects(() => m.loadPretrained(src), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  }
  assert.deepEqual(await snapshot(m), before);
});

Deno.test("loadPretrained: a weights name resolves to torchvision's URL through the reader", async () => {
  const asked: string[] = [];
  const bytes = Deno.readFileSync(file("resnet18_prefix.pth"));
  const read: ReadPretrained = (src) => {
    asked.push(src);
    return Promise.resolve({ bytes, name: src });
  };
  using m = new ResNet50Model({ numClasses: 3 });
  await assert.rejects(() => m.loadPretrained("imagenet", { read }), /pretrained/);
  await assert.rejects(() => m.loadPretrained("IMAGENET1K_V1", { read }), /pretrained/);
  assert.deepEqual(asked, [
    "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "https://download.pytorch.org/models/resnet50-0676ba61.pth",
  ]);
  using r18 = new ResNet18Model({ numClasses: 3 });
  await assert.rejects(
    () => r18.loadPretrained("IMAGENET1K_V2", { read }),
    /not published for resnet18/,
  );
});

// Full-size parity: ResNet-18/50 at 1000 classes (tests/golden/export_pth.py --full, gitignored;
// CI writes them alongside the test run).
await largeFixturesReady();
for (const [name, Model] of [["resnet18", ResNet18Model], ["resnet50", ResNet50Model]] as const) {
  const files = [`${name}_1000.pth`, ...(name === "resnet50" ? [`${name}_1000.legacy.pth`] : [])];
  for (const f of files) {
    const url = new URL(f, LARGE);
    Deno.test({
      name:
        `loadPretrained: ${f} logits match PyTorch (1e-4); head replacement keeps the backbone bit-equal`,
      ignore: !exists(url),
      fn: async () => {
        const ref = json(new URL(`${name}_1000.logits.json`, LARGE));
        let report: PretrainedReport;
        {
          using m = new Model({ numClasses: 1000 });
          report = await m.loadPretrained(url.pathname);
          assert.equal(report.reinitialized.length, 0);
          const y = await features(m, ref.x, ref.xShape);
          assertClose(y, ref.logits, { atol: 1e-4, rtol: 1e-4, msg: f });
        }
        using h = new Model({ numClasses: 43 });
        const r = await h.loadPretrained(url.pathname);
        assert.equal(r.notes[0], "fc: 1000 → 43 classes, re-initialised");
        assert.equal(r.loaded.length, report.loaded.length - 2);
        const snap = await snapshot(h);
        for (const [k, t] of fileTensors(url.pathname)) {
          if (k.startsWith("fc.")) continue;
          assert.deepEqual(snap.get(`model.${k}`), hostValues(t, k), k);
        }
      },
    });
  }
}
