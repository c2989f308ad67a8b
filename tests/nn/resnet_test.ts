import assert from "node:assert/strict";
import { assertClose, flat, golden } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward, zeroGrad } from "../../src/autograd/tape.ts";
import * as ops from "../../src/autograd/ops.ts";
import {
  AdaptiveAvgPool2d,
  BasicBlock,
  BatchNorm2d,
  Bottleneck,
  Conv2d,
  Flatten,
  Linear,
  loadSafetensors,
  parseSafetensors,
  ReLU,
  ResNet,
  resnet18,
  resnet34,
  resnet50,
  saveSafetensors,
  Sequential,
} from "../../src/nn/mod.ts";

interface Structure {
  keys: [string, number[], string][];
  params: string[];
  numParams: number;
}
interface Tiny {
  state: Record<string, unknown>;
  x: unknown;
  g: unknown;
  x2: unknown;
  outTrain: unknown;
  loss: number;
  grads: Record<string, unknown>;
  outTrain2: unknown;
  after: Record<string, unknown>;
  outEval: unknown;
}
interface LayerCase {
  x: unknown;
  w: unknown;
  b: unknown;
  y: unknown;
  gy: unknown;
  dx: unknown;
  dw: unknown;
  db: unknown;
}
const G = golden<{
  structure: Record<string, Structure>;
  tiny: Tiny;
  layers: { conv: LayerCase; linear: LayerCase };
}>("resnet");

function shapeOf(x: unknown): number[] {
  const s: number[] = [];
  let cur = x;
  while (Array.isArray(cur)) {
    s.push(cur.length);
    cur = cur[0];
  }
  return s;
}

function up(x: unknown, requiresGrad = false): Tensor {
  return Tensor.fromArray(flat(x), shapeOf(x), { requiresGrad });
}

for (
  const [name, build] of [["resnet18", resnet18], ["resnet34", resnet34], [
    "resnet50",
    resnet50,
  ]] as const
) {
  Deno.test(`${name}: state-dict keys, shapes, dtypes and parameter order equal torchvision's`, () => {
    const want = G.structure[name];
    const net = build({ numClasses: 10 });
    try {
      const got = [...net.stateDict()].map(([k, t]) => [k, [...t.shape], t.dtype]);
      const expected = want.keys.map(([k, s, d]) => [k, s, d === "int64" ? "i32" : "f32"]);
      assert.deepEqual(got, expected);
      assert.deepEqual(net.namedParameters().map(([k]) => k), want.params);
      assert.equal(net.numParameters(), want.numParams);
    } finally {
      net.dispose();
    }
  });
}

Deno.test("resnet: smallInput stem, inChannels, seeded init like torchvision", async () => {
  const before = memoryStats().liveBuffers;
  const small = resnet18({ numClasses: 3, smallInput: true, inChannels: 1, seed: 5 });
  const sd = small.stateDict();
  assert.deepEqual(sd.get("conv1.weight")!.shape, [64, 1, 3, 3]);
  assert.equal(small.maxpool, null);
  assert.equal(sd.size, 122, "same keys as the standard stem");
  // kaiming normal, fan_out: std = sqrt(2 / (64·9)) for layer1 convs
  const w = await sd.get("layer1.0.conv1.weight")!.toArray();
  let s2 = 0;
  let s1 = 0;
  for (const v of w) {
    s1 += v;
    s2 += v * v;
  }
  const std = Math.sqrt(s2 / w.length - (s1 / w.length) ** 2);
  const want = Math.sqrt(2 / (64 * 9));
  assert.ok(Math.abs(std - want) / want < 0.03, `conv std ${std}, want ${want}`);
  assert.deepEqual(
    Array.from(await sd.get("layer1.0.bn2.weight")!.toArray()),
    new Array(64).fill(1),
  );
  assert.deepEqual(Array.from(await sd.get("bn1.bias")!.toArray()), new Array(64).fill(0));
  assert.deepEqual(Array.from(await sd.get("bn1.running_var")!.toArray()), new Array(64).fill(1));
  const fc = await sd.get("fc.weight")!.toArray();
  const bound = 1 / Math.sqrt(512);
  assert.ok(fc.every((v) => Math.abs(v) <= bound) && fc.some((v) => Math.abs(v) > 0.9 * bound));
  // same seed, same weights; other seed, other weights
  const again = resnet18({ numClasses: 3, smallInput: true, inChannels: 1, seed: 5 });
  const other = resnet18({ numClasses: 3, smallInput: true, inChannels: 1, seed: 6 });
  const a = await again.stateDict().get("layer1.0.conv1.weight")!.toArray();
  const b = await other.stateDict().get("layer1.0.conv1.weight")!.toArray();
  assert.deepEqual(a, w);
  assert.notDeepEqual(b, w);
  const zero = resnet18({ numClasses: 3, smallInput: true, zeroInitResidual: true });
  assert.deepEqual(
    Array.from(await zero.stateDict().get("layer2.1.bn2.weight")!.toArray()),
    new Array(128).fill(0),
  );
  for (const m of [small, again, other, zero]) m.dispose();
  assert.equal(memoryStats().liveBuffers, before);
});

Deno.test("Module.loadStateDict: strict errors name the key", () => {
  const net = new Sequential(new Linear(2, 3), new ReLU(), new Linear(3, 1));
  try {
    const sd = net.cloneStateDict();
    assert.deepEqual([...sd.keys()], ["0.weight", "0.bias", "2.weight", "2.bias"]);
    sd.get("2.bias")!.dispose();
    sd.delete("2.bias");
    assert.throws(() => net.loadStateDict(sd), /missing key "2.bias"/);
    net.loadStateDict(sd, { strict: false });
    const extra = Tensor.fromArray([1], [1]);
    sd.set("2.bias", extra);
    sd.set("3.weight", extra);
    assert.throws(() => net.loadStateDict(sd), /unexpected key "3.weight"/);
    sd.delete("3.weight");
    const bad = Tensor.fromArray([1, 2], [2]);
    sd.set("2.bias", bad);
    assert.throws(() => net.loadStateDict(sd), /"2.bias" has shape \[2\], expected \[1\]/);
    for (const t of [...sd.values(), extra, bad]) t.dispose();
  } finally {
    net.dispose();
  }
});

Deno.test("Conv2d (with bias) and Linear modules match PyTorch, forward and backward", async () => {
  const before = memoryStats().liveBuffers;
  for (const [name, c] of Object.entries(G.layers)) {
    const wShape = shapeOf(c.w);
    const layer = name === "conv"
      ? new Conv2d(wShape[1], wShape[0], { kernelSize: wShape[2], stride: 2, padding: 1 })
      : new Linear(wShape[1], wShape[0]);
    const w0 = up(c.w);
    const b0 = up(c.b);
    layer.loadStateDict({ weight: w0, bias: b0 });
    w0.dispose();
    b0.dispose();
    await scope(async () => {
      const x = up(c.x, true);
      const y = layer.forward(x);
      backward(ops.sum(ops.mul(y, up(c.gy))));
      assertClose(await y.toArray(), c.y, { atol: 1e-5, msg: `${name} y` });
      assertClose(await x.grad!.toArray(), c.dx, { atol: 1e-5, msg: `${name} dx` });
      const [w, b] = layer.parameters();
      assertClose(await w.grad!.toArray(), c.dw, { atol: 1e-5, msg: `${name} dw` });
      assertClose(await b.grad!.toArray(), c.db, { atol: 1e-5, msg: `${name} db` });
    });
    layer.dispose();
  }
  assert.equal(memoryStats().liveBuffers, before);
});

function tinyNet(): Sequential {
  return new Sequential(
    new Conv2d(2, 4, { kernelSize: 3, padding: 1, bias: false }),
    new BatchNorm2d(4),
    new ReLU(),
    new BasicBlock(4, 8, {
      stride: 2,
      downsample: new Sequential(
        new Conv2d(4, 8, { kernelSize: 1, stride: 2, bias: false }),
        new BatchNorm2d(8),
      ),
    }),
    new Bottleneck(8, 2, {
      stride: 2,
      downsample: new Sequential(
        new Conv2d(8, 8, { kernelSize: 1, stride: 2, bias: false }),
        new BatchNorm2d(8),
      ),
    }),
    new AdaptiveAvgPool2d(1),
    new Flatten(),
    new Linear(8, 3),
  );
}

Deno.test("tiny net of torchvision BasicBlock + Bottleneck: outputs, every gradient, running stats", async () => {
  const T = G.tiny;
  const net = tinyNet();
  const state = new Map(
    Object.entries(T.state).map(([k, v]) => {
      const isInt = k.endsWith("num_batches_tracked");
      return [k, Tensor.fromArray(flat(v), shapeOf(v), { dtype: isInt ? "i32" : "f32" })];
    }),
  );
  net.loadStateDict(state);
  for (const t of state.values()) t.dispose();
  const before = memoryStats().liveBuffers;
  await scope(async () => {
    const out = net.forward(up(T.x));
    const loss = ops.sum(ops.mul(out, up(T.g)));
    backward(loss);
    assertClose(await out.toArray(), T.outTrain, { atol: 1e-5, msg: "train output" });
    assertClose([await loss.item()], [T.loss], { atol: 1e-4, msg: "loss" });
  });
  for (const [k, p] of net.namedParameters()) {
    assert.ok(p.grad, `${k} has a gradient`);
    assertClose(await p.grad.toArray(), T.grads[k], { atol: 1e-4, rtol: 1e-4, msg: `grad ${k}` });
  }
  await scope(async () => {
    const out2 = net.forward(up(T.x2));
    assertClose(await out2.toArray(), T.outTrain2, { atol: 1e-5, msg: "second train output" });
  });
  const sd = net.stateDict();
  for (const [k, v] of Object.entries(T.after)) {
    assertClose(await sd.get(k)!.toArray(), flat(v), { atol: 1e-5, msg: `after two steps ${k}` });
  }
  net.eval();
  await scope(async () => {
    assertClose(await net.forward(up(T.x)).toArray(), T.outEval, { atol: 1e-5, msg: "eval" });
  });
  zeroGrad(net.parameters());
  assert.equal(
    memoryStats().liveBuffers,
    before,
    "forward/backward in scopes leave nothing behind",
  );
  net.dispose();
});

// A ResNet-10 ([1, 1, 1, 1] BasicBlocks: every stage, blocks with and without downsample) keeps
// this affordable on lavapipe, where a step's cost is dominated by the 512-channel weights.
Deno.test("ResNet smallInput training steps: every parameter gets a finite gradient, memory flat", async () => {
  const net = new ResNet({
    block: "basic",
    layers: [1, 1, 1, 1],
    numClasses: 4,
    smallInput: true,
    seed: 1,
  });
  // A batch of 4 at 8×8, as in tests/models: the same kernel variants, compiled once per CI run.
  const x = Tensor.fromArray(flat(Array.from({ length: 4 * 3 * 8 * 8 }, (_, i) => Math.sin(i))), [
    4,
    3,
    8,
    8,
  ]);
  const g = Tensor.fromArray([1, -1, 0.5, 0, -0.5, 2, 0, 1, 0.25, 1, -2, 0.5, 0, -1, 1, 1.5], [
    4,
    4,
  ]);
  const step = () =>
    scope(() => {
      zeroGrad(net.parameters());
      const out = net.forward(x);
      backward(ops.sum(ops.mul(out, g)));
    });
  step(); // warm-up: gradients and pooled buffers come into existence
  const sums = await scope(async () => {
    const r: [string, number][] = [];
    for (const [k, p] of net.namedParameters()) {
      const a = await p.grad!.toArray();
      r.push([k, Array.from(a).reduce((s, v) => s + Math.abs(v), 0)]);
    }
    return r;
  });
  for (const [k, s] of sums) assert.ok(Number.isFinite(s) && s > 0, `${k}: |grad| sum ${s}`);
  const live = memoryStats().liveBuffers;
  const tensors = memoryStats().liveTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(memoryStats().liveBuffers, live, "live buffers flat over 5 steps");
  assert.equal(memoryStats().liveTensors, tensors, "live tensors flat over 5 steps");
  const nbt = await net.stateDict().get("bn1.num_batches_tracked")!.item();
  assert.equal(nbt, 6);
  x.dispose();
  g.dispose();
  net.dispose();
});

Deno.test("resnet: state dict round trip through safetensors (num_batches_tracked as I64)", async () => {
  const before = memoryStats().liveBuffers;
  const dir = await Deno.makeTempDir();
  const a = resnet18({ numClasses: 3, smallInput: true, seed: 1 });
  const b = resnet18({ numClasses: 3, smallInput: true, seed: 2 });
  await saveSafetensors(`${dir}/a.safetensors`, a.stateDict());
  const parsed = parseSafetensors(await Deno.readFile(`${dir}/a.safetensors`));
  assert.equal(parsed.tensors.size, 122);
  assert.equal(parsed.tensors.get("layer3.0.downsample.1.num_batches_tracked")!.dtype, "I64");
  assert.equal(parsed.tensors.get("fc.weight")!.dtype, "F32");
  const loaded = await loadSafetensors(`${dir}/a.safetensors`);
  b.loadStateDict(loaded);
  for (const t of loaded.values()) t.dispose();
  for (const k of ["conv1.weight", "layer4.1.conv2.weight", "fc.bias"]) {
    assert.deepEqual(
      await b.stateDict().get(k)!.toArray(),
      await a.stateDict().get(k)!.toArray(),
      k,
    );
  }
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
  assert.equal(memoryStats().liveBuffers, before);
});
