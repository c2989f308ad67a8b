/**
 * Every differentiable op's forward and input gradients against PyTorch
 * (tests/golden/gen_core.py), plus a composite graph that reuses a tensor.
 */
import assert from "node:assert/strict";
import { assertClose, golden } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/autograd/ops.ts";

interface T {
  shape: number[];
  data: number[];
}
interface Case {
  inputs: T[];
  w: T;
  out: T;
  grads: T[];
  op?: string;
  c?: number;
  axis?: number | null;
  keepDim?: boolean;
  transA?: boolean;
  transB?: boolean;
  shape?: number[];
  perm?: number[];
  start?: number;
  length?: number;
}
interface Core {
  binary: Case[];
  unary: Case[];
  reduce: Case[];
  matmul: Case[];
  shape: Case[];
  composite: Case;
}

const G = golden<Core>("core");

/** Runs `fn` on the case's inputs, back-propagates `w`, compares output and gradients. */
async function check(c: Case, fn: (xs: Tensor[]) => Tensor, label: string): Promise<void> {
  await scope(async () => {
    const xs = c.inputs.map((t) => Tensor.fromArray(t.data, t.shape, { requiresGrad: true }));
    const out = fn(xs);
    assert.deepEqual([...out.shape], c.out.shape, `${label}: output shape`);
    assertClose(await out.toArray(), c.out.data, { msg: `${label}: forward` });
    backward(out, Tensor.fromArray(c.w.data, c.w.shape));
    for (let i = 0; i < xs.length; i++) {
      assert.ok(xs[i].grad, `${label}: input ${i} has no grad`);
      assert.deepEqual([...xs[i].grad!.shape], c.grads[i].shape, `${label}: grad ${i} shape`);
      assertClose(await xs[i].grad!.toArray(), c.grads[i].data, {
        msg: `${label}: grad of input ${i}`,
        rtol: 1e-5,
        atol: 1e-5,
      });
    }
    for (const x of xs) x.dispose();
  });
}

const BINARY = { add: ops.add, sub: ops.sub, mul: ops.mul, div: ops.div } as const;

Deno.test("binary ops with broadcasting: forward and gradients match PyTorch", async () => {
  assert.equal(G.binary.length, 16);
  for (const c of G.binary) {
    const f = BINARY[c.op as keyof typeof BINARY];
    const label = `${c.op} ${JSON.stringify(c.inputs.map((t) => t.shape))}`;
    await check(c, ([a, b]) => f(a, b), label);
  }
});

Deno.test("unary and scalar ops: forward and gradients match PyTorch", async () => {
  const fns: Record<string, (x: Tensor, c: number) => Tensor> = {
    relu: (x) => ops.relu(x),
    neg: (x) => ops.neg(x),
    exp: (x) => ops.exp(x),
    log: (x) => ops.log(x),
    sqrt: (x) => ops.sqrt(x),
    square: (x) => ops.square(x),
    addScalar: (x, c) => ops.addScalar(x, c),
    mulScalar: (x, c) => ops.mulScalar(x, c),
    powScalar: (x, c) => ops.powScalar(x, c),
  };
  assert.equal(G.unary.length, 10);
  for (const c of G.unary) {
    await check(c, ([x]) => fns[c.op!](x, c.c ?? 0), `${c.op}(${c.c ?? ""})`);
  }
});

Deno.test("sum / mean / max over each axis and over all: forward and gradients", async () => {
  const fns = { sum: ops.sum, mean: ops.mean, max: ops.max } as const;
  assert.equal(G.reduce.length, 27);
  for (const c of G.reduce) {
    const f = fns[c.op as keyof typeof fns];
    const opts = { axis: c.axis ?? undefined, keepDim: c.keepDim };
    await check(c, ([x]) => f(x, opts), `${c.op} axis=${c.axis} keepDim=${c.keepDim}`);
  }
});

Deno.test("matmul: four transpose combos, odd sizes, batched and broadcast batch", async () => {
  assert.equal(G.matmul.length, 28);
  for (const c of G.matmul) {
    const label = `matmul ${
      JSON.stringify(c.inputs.map((t) => t.shape))
    } tA=${c.transA} tB=${c.transB}`;
    await check(c, ([a, b]) => ops.matmul(a, b, { transA: c.transA, transB: c.transB }), label);
  }
});

Deno.test("reshape / permute / transpose / slice / concat / broadcastTo", async () => {
  for (const c of G.shape) {
    const f = (xs: Tensor[]): Tensor => {
      switch (c.op) {
        case "reshape":
          return ops.reshape(xs[0], c.shape!);
        case "permute":
          return ops.permute(xs[0], c.perm!);
        case "transpose":
          return ops.transpose(xs[0]);
        case "slice":
          return ops.slice(xs[0], c.axis!, c.start!, c.length!);
        case "concat":
          return ops.concat(xs, c.axis!);
        case "broadcastTo":
          return ops.broadcastTo(xs[0], c.shape!);
      }
      throw new Error(`unknown op ${c.op}`);
    };
    await check(c, f, `${c.op}`);
  }
});

Deno.test("composite graph (reused input, bias broadcast, relu, reductions) matches PyTorch", async () => {
  await check(G.composite, ([x, wt, bias]) => {
    const h = ops.relu(ops.add(ops.matmul(x, wt), bias));
    const a = ops.mean(ops.mul(h, h));
    const b = ops.max(ops.sum(ops.mul(x, x), { axis: 1 }));
    const e = ops.mulScalar(ops.sum(ops.exp(ops.neg(h))), 1 / 7);
    return ops.sub(ops.add(a, b), e);
  }, "composite");
});
