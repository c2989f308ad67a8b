/**
 * Dynamic loss scaling against PyTorch's GradScaler (tests/golden/gen_grad_scaler.py): its
 * defaults, the scale / growth-tracker state machine over thousands of steps, the unscale
 * kernel, and a skipped step on the GPU: no optimizer step, counted, scale backed off.
 */
import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { memoryStats, Tensor } from "../../src/gpu/tensor.ts";
import {
  GradScaler,
  type GradScalerOptions,
  nextScaleState,
  type ScaleState,
} from "../../src/optim/grad_scaler.ts";

interface Run {
  options: Record<string, number>;
  infs: number[];
  /** After each step: scale, growth tracker, whether the optimizer stepped. */
  steps: [number, number, boolean][];
}
const G = golden<{
  defaults: Record<string, number>;
  runs: Run[];
  unscale: { scale: number; grad: number[]; unscaled: number[]; foundInf: number };
}>("grad_scaler");

function options(o: Record<string, number>): Required<GradScalerOptions> {
  const d = { ...G.defaults, ...o };
  return {
    initScale: d.init_scale,
    growthFactor: d.growth_factor,
    backoffFactor: d.backoff_factor,
    growthInterval: d.growth_interval,
  };
}

Deno.test("GradScaler: PyTorch's defaults", () => {
  const s = new GradScaler();
  assert.equal(s.scale, G.defaults.init_scale);
  assert.deepEqual(s.stateDict(), { scale: 65536, growthTracker: 0, skippedSteps: 0 });
  // Two back-offs and 2000 clean steps later, defaults give exactly PyTorch's states.
  let st: ScaleState = { scale: s.scale, growthTracker: 0 };
  G.runs[0].steps.forEach(([scale, tracker], i) => {
    st = nextScaleState(st, G.runs[0].infs.includes(i), options({}));
    assert.deepEqual([st.scale, st.growthTracker], [scale, tracker], `step ${i}`);
  });
});

Deno.test("GradScaler: the scale state machine matches PyTorch step by step", () => {
  for (const run of G.runs) {
    const opts = options(run.options);
    let st: ScaleState = { scale: Math.fround(opts.initScale), growthTracker: 0 };
    run.steps.forEach(([scale, tracker], i) => {
      st = nextScaleState(st, run.infs.includes(i), opts);
      assert.deepEqual(
        [st.scale, st.growthTracker],
        [scale, tracker],
        `${JSON.stringify(run.options)} step ${i}`,
      );
    });
  }
});

Deno.test("GradScaler: unscale on the GPU equals PyTorch's (grads × f32(1/scale))", async () => {
  const u = G.unscale;
  const p = Tensor.fromArray(new Float32Array(u.grad.length), [u.grad.length]);
  p.grad = Tensor.fromArray(u.grad, [u.grad.length]);
  const s = new GradScaler({ initScale: u.scale });
  let steps = 0;
  s.unscale([p]);
  assert.equal(await s.step({ step: () => steps++ }, [p]), u.foundInf === 0);
  assertClose(await p.grad.toArray(), u.unscaled, { rtol: 0, atol: 0 });
  s.update();
  assert.equal(steps, 1);
  p.dispose();
});

Deno.test("GradScaler: a real run of steps with inf gradients (GPU flag) matches PyTorch", async () => {
  const before = memoryStats();
  const run = G.runs[2];
  const s = new GradScaler(options(run.options));
  const p = Tensor.fromArray([0, 0], [2]);
  let stepped = 0;
  for (const [i, [scale, tracker, didStep]] of run.steps.entries()) {
    const inf = run.infs.includes(i);
    p.grad = Tensor.fromArray([inf ? (i % 2 ? NaN : -Infinity) : 1, 0], [2]);
    const took = await s.step({ step: () => stepped++ }, [p]); // unscales itself
    s.update();
    assert.equal(took, didStep, `step ${i}`);
    assert.deepEqual([s.scale, s.growthTracker], [scale, tracker], `step ${i}`);
    p.grad.dispose();
    p.grad = null;
  }
  assert.equal(stepped, run.steps.filter((x) => x[2]).length);
  assert.equal(s.skippedSteps, run.infs.length);
  // The state round-trips, and bad states are one-line errors naming the field.
  const t = new GradScaler();
  t.loadStateDict(s.stateDict());
  assert.deepEqual(t.stateDict(), s.stateDict());
  assert.throws(
    () => t.loadStateDict({ scale: -1, growthTracker: 0, skippedSteps: 0 }),
    /^RangeError: GradScaler state: scale expected a positive number, got -1$/,
  );
  assert.throws(() => s.update(), /call step\(\) first/);
  p.dispose();
  s.dispose();
  assert.equal(memoryStats().liveTensors, before.liveTensors);
});
