import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { memoryStats, Tensor } from "../../src/gpu/tensor.ts";
import { AdamW } from "../../src/optim/adamw.ts";

interface AdamCase {
  init: number[][];
  lrs: number[];
  grads: number[][][];
  traj: number[][][];
  expAvg: number[][];
  expAvgSq: number[][];
}

const G = golden<{ adamw: AdamCase }>("model");
const SHAPES = [[3, 4], [5]];

function params(k: AdamCase): Tensor[] {
  return k.init.map((v, i) => Tensor.fromArray(v.flat(), SHAPES[i], { requiresGrad: true }));
}

function setGrads(ps: Tensor[], gs: number[][]): void {
  ps.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = Tensor.fromArray(gs[i].flat(), SHAPES[i]).keep();
  });
}

Deno.test("AdamW: 3-step trajectory with lr changed between steps matches PyTorch", async () => {
  const k = G.adamw;
  const ps = params(k);
  const opt = new AdamW(ps, { lr: 1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
  for (let t = 0; t < k.lrs.length; t++) {
    opt.lr = k.lrs[t];
    setGrads(ps, k.grads[t]);
    opt.step();
    for (let i = 0; i < ps.length; i++) {
      assertClose(await ps[i].toArray(), k.traj[t][i], {
        rtol: 1e-5,
        atol: 1e-6,
        msg: `step ${t + 1} param ${i}`,
      });
    }
  }
  const sd = opt.stateDict();
  assert.equal(sd.step, 3);
  for (let i = 0; i < ps.length; i++) {
    assert.equal(sd.state[i].step, 3);
    assertClose(await sd.state[i].expAvg!.toArray(), k.expAvg[i], { msg: `m ${i}` });
    assertClose(await sd.state[i].expAvgSq!.toArray(), k.expAvgSq[i], { rtol: 1e-5, atol: 1e-12 });
  }
  opt.zeroGrad();
  assert.equal(ps[0].grad, null);
  opt.dispose();
  for (const p of ps) p.dispose();
});

Deno.test("AdamW: params with null grad are skipped; state dict round trip resumes exactly", async () => {
  const k = G.adamw;
  // Reference run: 3 steps straight.
  const a = params(k);
  const optA = new AdamW(a, { lr: 1e-2, weightDecay: 0.1 });
  // Resumed run: 1 step, state copied into a fresh optimizer over copies of the parameters.
  const b = params(k);
  const optB = new AdamW(b, { lr: 1e-2, weightDecay: 0.1 });
  for (const [ps, opt] of [[a, optA], [b, optB]] as const) {
    opt.lr = k.lrs[0];
    setGrads(ps, k.grads[0]);
    opt.step();
  }
  const resumedParams = await Promise.all(
    b.map(async (p, i) => Tensor.fromArray(await p.toArray(), SHAPES[i], { requiresGrad: true })),
  );
  const optC = new AdamW(resumedParams, { lr: 123, weightDecay: 0 });
  optC.loadStateDict(optB.stateDict());
  assert.equal(optC.lr, k.lrs[0]);
  assert.equal(optC.weightDecay, 0.1);
  for (const [ps, opt] of [[a, optA], [resumedParams, optC]] as const) {
    for (let t = 1; t < 3; t++) {
      opt.lr = k.lrs[t];
      setGrads(ps, k.grads[t]);
      opt.step();
    }
  }
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await resumedParams[i].toArray(), await a[i].toArray());
    assertClose(await a[i].toArray(), k.traj[2][i]);
  }
  // A null gradient leaves the parameter and its step count alone.
  const before = await a[1].toArray();
  a[0].grad!.dispose();
  a[0].grad = null;
  a[1].grad!.dispose();
  a[1].grad = null;
  const live = memoryStats().liveBuffers;
  optA.step();
  assert.deepEqual(await a[1].toArray(), before);
  assert.equal(optA.stateDict().state[1].step, 3);
  assert.equal(memoryStats().liveBuffers, live);
  for (const o of [optA, optB, optC]) o.dispose();
  for (const p of [...a, ...b, ...resumedParams]) p.dispose();
});

Deno.test("AdamW: the vec4 kernel (size % 4 == 0) and the scalar one give the same bits", async () => {
  // 4·9 + 2 elements: the first 36 of a 38-element parameter take the scalar kernel, the same
  // values as a 36-element parameter take the vec4 one (V4 vec4s per invocation, a partial
  // last invocation).
  const init = Array.from({ length: 38 }, (_, i) => Math.sin(i * 1.3) * 2);
  const grads = [0, 1, 2].map((t) =>
    Array.from({ length: 38 }, (_, i) => Math.cos(i * 0.7 + t) * (i % 5 === 0 ? 1e-3 : 1))
  );
  const vec = Tensor.fromArray(init.slice(0, 36), [36], { requiresGrad: true });
  const scalar = Tensor.fromArray(init, [38], { requiresGrad: true });
  const opt = new AdamW([vec, scalar], { lr: 0.05, weightDecay: 0.1 });
  for (const g of grads) {
    vec.grad?.dispose();
    scalar.grad?.dispose();
    vec.grad = Tensor.fromArray(g.slice(0, 36), [36]).keep();
    scalar.grad = Tensor.fromArray(g, [38]).keep();
    opt.step();
  }
  const a = await vec.toArray();
  const b = (await scalar.toArray()).slice(0, 36);
  assert.deepEqual(a, b);
  const sd = opt.stateDict();
  assert.deepEqual(
    await sd.state[0].expAvgSq!.toArray(),
    (await sd.state[1].expAvgSq!.toArray()).slice(0, 36),
  );
  opt.zeroGrad();
  opt.dispose();
  vec.dispose();
  scalar.dispose();
});
