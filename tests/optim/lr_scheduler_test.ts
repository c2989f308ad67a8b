import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { CosineAnnealingLR, LinearLR, SequentialLR } from "../../src/optim/lr_scheduler.ts";
import type { LrOptimizer } from "../../src/optim/adamw.ts";

interface Table {
  maxEpochs: number;
  warmup: number;
  lrs: number[];
}

const G = golden<{ lr: Table[]; lrNoWarmup: Table }>("model");

function build(opt: LrOptimizer, maxEpochs: number, warmup: number): SequentialLR {
  const base = opt.lr;
  const s1 = new LinearLR(opt, {
    startFactor: 1e-3,
    endFactor: 1,
    totalIters: Math.max(1, warmup),
  });
  const s2 = new CosineAnnealingLR(opt, {
    tMax: Math.max(1, maxEpochs - warmup),
    etaMin: base * 0.05,
  });
  return new SequentialLR(opt, [s1, s2], [warmup]);
}

for (const k of G.lr) {
  Deno.test(`SequentialLR(LinearLR, CosineAnnealingLR) per-epoch lr: ${k.maxEpochs} epochs, warmup ${k.warmup}`, () => {
    const opt: LrOptimizer = { lr: 1e-4 };
    const sched = build(opt, k.maxEpochs, k.warmup);
    const got = [opt.lr];
    for (let e = 0; e < k.maxEpochs; e++) {
      sched.step();
      got.push(opt.lr);
      assert.equal(sched.getLastLr()[0], opt.lr);
    }
    // Same recursion in f64 as PyTorch: equal to the last few ulps.
    assertClose(got, k.lrs, { rtol: 1e-12, atol: 0 });
    if (k.maxEpochs > k.warmup) assert.equal(got[k.warmup], 1e-4, "exactly the base lr at e = W");
  });
}

Deno.test("warmupEpochs 0: a SequentialLR over the cosine alone equals PyTorch's plain cosine", () => {
  const k = G.lrNoWarmup;
  const opt: LrOptimizer = { lr: 1e-4 };
  const cos = new CosineAnnealingLR(opt, { tMax: k.maxEpochs, etaMin: 5e-6 });
  const sched = new SequentialLR(opt, [cos], []);
  const got = [opt.lr];
  for (let e = 0; e < k.maxEpochs; e++) {
    sched.step();
    got.push(opt.lr);
  }
  assertClose(got, k.lrs, { rtol: 1e-12, atol: 0 });
});

Deno.test("SequentialLR state dict round trip resumes the same lr sequence", () => {
  const k = G.lr[0];
  const optA: LrOptimizer = { lr: 1e-4 };
  const a = build(optA, k.maxEpochs, k.warmup);
  for (let e = 0; e < 7; e++) a.step();
  const saved = JSON.parse(JSON.stringify(a.stateDict()));
  const savedLr = { lr: optA.lr, initialLr: optA.initialLr };
  const optB: LrOptimizer = { lr: 1e-4 };
  const b = build(optB, k.maxEpochs, k.warmup);
  b.loadStateDict(saved);
  Object.assign(optB, savedLr);
  for (let e = 7; e < k.maxEpochs; e++) {
    a.step();
    b.step();
    assert.equal(optB.lr, optA.lr);
    assertClose([optB.lr], [k.lrs[e + 1]], { rtol: 1e-12, atol: 0 });
  }
  assert.throws(
    () => new SequentialLR(optA, a.schedulers, []),
    /expected 1 milestones for 2 schedulers, got 0/,
  );
});
