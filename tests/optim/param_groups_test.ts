/**
 * AdamW parameter groups against PyTorch (tests/golden/gen_param_groups.py): each group's lr
 * under the model's warm-up + cosine schedule, group-wise steps with a frozen parameter (no
 * gradient, no moments), and exact resume of optimizer and schedule state through JSON.
 */
import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { Tensor } from "../../src/gpu/tensor.ts";
import { AdamW, type AdamWStateDict, type LrOptimizer } from "../../src/optim/adamw.ts";
import { CosineAnnealingLR, LinearLR, SequentialLR } from "../../src/optim/lr_scheduler.ts";
import { extractTensors, restoreTensors } from "../../src/train/checkpoint.ts";

interface Schedule {
  lr: number;
  headFactor: number;
  warmup: number;
  maxEpochs: number;
  lrs: number[][];
}
interface AdamCase {
  init: number[][];
  grads: number[][][];
  traj: number[][][];
  hasState: boolean[];
}
const G = golden<{ schedules: Schedule[]; adamw: AdamCase }>("param_groups");
const SHAPES = [[3, 4], [5], [2]];

/** The schedule `BaseClassificationModel.configureOptimizers` builds. */
function build(opt: LrOptimizer, k: Schedule): SequentialLR {
  const warm = new LinearLR(opt, { startFactor: 1e-3, endFactor: 1, totalIters: k.warmup });
  const cos = new CosineAnnealingLR(opt, {
    tMax: Math.max(1, k.maxEpochs - k.warmup),
    etaMin: k.lr * 0.05,
  });
  return new SequentialLR(opt, [warm, cos], [k.warmup]);
}

type Group = { lr: number; initialLr?: number };

function groups(k: Schedule): LrOptimizer & { paramGroups: Group[] } {
  const g: Group[] = [{ lr: k.lr }, { lr: k.lr * k.headFactor }];
  return { lr: k.lr, paramGroups: g };
}

for (const k of G.schedules) {
  Deno.test(`param groups: each group's lr follows PyTorch (warmup ${k.warmup}, ${k.maxEpochs} epochs)`, () => {
    const opt = groups(k);
    const sched = build(opt, k);
    for (let e = 0; e <= k.maxEpochs; e++) {
      const got = opt.paramGroups.map((g) => g.lr);
      assertClose(got, k.lrs[e], { rtol: 1e-12, atol: 0, msg: `epoch ${e}` });
      assert.deepEqual(sched.getLastLr(), got);
      sched.step();
    }
  });
}

Deno.test("param groups: schedule state round trip through JSON resumes every group exactly", () => {
  const k = G.schedules[1];
  const a = groups(k);
  const sa = build(a, k);
  for (let e = 0; e < 7; e++) sa.step();
  const saved = JSON.parse(JSON.stringify(sa.stateDict()));
  assert.equal(saved.lastLrs.length, 2);
  const b = groups(k);
  const sb = build(b, k);
  sb.loadStateDict(saved);
  b.paramGroups.forEach((g, i) => Object.assign(g, a.paramGroups[i]));
  for (let e = 7; e < k.maxEpochs; e++) {
    sa.step();
    sb.step();
    assert.deepEqual(b.paramGroups, a.paramGroups);
    assertClose(b.paramGroups.map((g) => g.lr), k.lrs[e + 1], { rtol: 1e-12, atol: 0 });
  }
  const single: LrOptimizer = { lr: 1 };
  const one = build(single, k);
  assert.throws(() => one.loadStateDict(saved), /state has 2 parameter groups, expected 1/);
});

function setGrads(ps: Tensor[], gs: number[][], frozen: Set<number>): void {
  ps.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = frozen.has(i) ? null : Tensor.fromArray(gs[i], SHAPES[i]).keep();
  });
}

Deno.test("AdamW groups: per-group lr and weight decay, frozen parameter untouched and stateless", async () => {
  const k = G.adamw;
  const ps = k.init.map((v, i) => Tensor.fromArray(v, SHAPES[i], { requiresGrad: i !== 1 }));
  const opt = new AdamW([
    { params: [ps[0], ps[1]], lr: 0.01, weightDecay: 0.1 },
    { params: [ps[2]], lr: 0.1, weightDecay: 0 },
  ]);
  const frozen = new Set([1]);
  let resumed: AdamW | null = null;
  let rps: Tensor[] = [];
  for (let t = 0; t < 3; t++) {
    setGrads(ps, k.grads[t], frozen);
    opt.step();
    for (let i = 0; i < 3; i++) {
      assertClose(await ps[i].toArray(), k.traj[t][i], { msg: `step ${t + 1} param ${i}` });
    }
    if (t === 0) {
      // Resume through the checkpoint's JSON + tensor extraction, into fresh copies.
      const tensors = new Map<string, Tensor>();
      const json = JSON.parse(JSON.stringify(extractTensors(opt.stateDict(), tensors)));
      const state = restoreTensors(json, tensors) as AdamWStateDict;
      assert.equal(state.paramGroups!.length, 2);
      rps = await Promise.all(
        ps.map(async (p, i) => Tensor.fromArray(await p.toArray(), SHAPES[i])),
      );
      resumed = new AdamW([
        { params: [rps[0], rps[1]], lr: 5 },
        { params: [rps[2]], lr: 5 },
      ], { weightDecay: 0.5 });
      resumed.loadStateDict(state);
      assert.deepEqual(resumed.paramGroups.map((g) => [g.lr, g.weightDecay]), [[0.01, 0.1], [
        0.1,
        0,
      ]]);
    } else {
      setGrads(rps, k.grads[t], frozen);
      resumed!.step();
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await rps[i].toArray(), await ps[i].toArray(), `resumed ${t} ${i}`);
      }
    }
  }
  const sd = opt.stateDict();
  assert.deepEqual(sd.state.map((s) => s.expAvg !== null), k.hasState);
  assert.deepEqual(k.hasState, [true, false, true]);
  assert.equal(sd.state[1].step, 0);
  assert.throws(
    () => new AdamW([{ params: [ps[0]] }, { params: [ps[0]] }]),
    /appears in two groups/,
  );
  for (const o of [opt, resumed!]) o.dispose();
  for (const p of [...ps, ...rps]) {
    p.grad?.dispose();
    p.dispose();
  }
});
