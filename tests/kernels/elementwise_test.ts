/**
 * Raw elementwise, fill, cast and data-movement kernels against host computations.
 */
import assert from "node:assert/strict";
import { assertClose, rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import {
  binary,
  type BinaryOp,
  fillInPlace,
  full,
  unary,
  type UnaryOp,
} from "../../src/kernels/elementwise.ts";
import { cast } from "../../src/kernels/cast.ts";
import { clone, concat, expand, permute, slice, writeSlice } from "../../src/kernels/copy.ts";

const X = [-2.5, -1, -0.25, 0, 0.3, 1, 2, 4];

Deno.test("unary ops match the host formulas", async () => {
  const pos = X.map((v) => Math.abs(v) + 0.5);
  const cases: [UnaryOp, number[], (v: number) => number, number, number][] = [
    ["affine", X, (v) => 1.5 * v - 2, 1.5, -2],
    ["relu", X, (v) => Math.max(v, 0), 0, 0],
    ["neg", X, (v) => -v, 0, 0],
    ["exp", X, Math.exp, 0, 0],
    ["log", pos, Math.log, 0, 0],
    ["sqrt", pos, Math.sqrt, 0, 0],
    ["rsqrt", pos, (v) => 1 / Math.sqrt(v), 0, 0],
    ["abs", X, Math.abs, 0, 0],
    ["square", X, (v) => v * v, 0, 0],
    ["sigmoid", X, (v) => 1 / (1 + Math.exp(-v)), 0, 0],
    ["tanh", X, Math.tanh, 0, 0],
    ["powScalar", X, (v) => v ** 3, 3, 0],
    ["powScalar", X, (v) => v ** 2, 2, 0],
    ["powScalar", pos, (v) => v ** -0.5, -0.5, 0],
    ["powScalar", X, () => 1, 0, 0],
    ["reciprocal", pos, (v) => 1 / v, 0, 0],
    ["clamp", X, (v) => Math.min(Math.max(v, -1), 1.5), -1, 1.5],
    ["stepGt", X, (v) => (v > 0.3 ? 1 : 0), 0.3, 0],
  ];
  for (const [op, input, f, alpha, beta] of cases) {
    await scope(async () => {
      const out = unary(op, Tensor.fromArray(input, [2, 4]), alpha, beta);
      assert.deepEqual([...out.shape], [2, 4]);
      assertClose(await out.toArray(), input.map(f), { rtol: 2e-6, atol: 1e-6, msg: op });
    });
  }
});

Deno.test("binary ops broadcast and match the host formulas", async () => {
  const a = rand(24, 1).map((v) => v * 3);
  const b = rand(6, 2).map((v) => Math.round(v * 3)); // small integers: ties for eq/gt
  const cases: [BinaryOp, (x: number, y: number) => number][] = [
    ["add", (x, y) => x + y],
    ["sub", (x, y) => x - y],
    ["mul", (x, y) => x * y],
    ["div", (x, y) => x / (y === 0 ? 1 : y)],
    ["maximum", Math.max],
    ["minimum", Math.min],
    ["reluGrad", (x, y) => (y > 0 ? x : 0)],
    ["gt", (x, y) => (x > y ? 1 : 0)],
    ["eq", (x, y) => (x === y ? 1 : 0)],
    ["pow", (x, y) => (y === 0 ? 1 : Math.abs(x) ** y)],
  ];
  for (const [op, f] of cases) {
    await scope(async () => {
      // a: [2, 3, 4], b: [3, 1, 2]-like broadcast as [2, 3, 1] → out [2, 3, 4]
      let hb = Float32Array.from(b);
      if (op === "div") hb = hb.map((v) => (v === 0 ? 1 : v));
      let ha = Float32Array.from(a);
      if (op === "pow") ha = ha.map(Math.abs);
      if (op === "eq") ha = ha.map(Math.round);
      const out = binary(op, Tensor.fromArray(ha, [2, 3, 4]), Tensor.fromArray(hb, [2, 3, 1]));
      assert.deepEqual([...out.shape], [2, 3, 4]);
      const want = Array.from(ha, (x, i) => f(x, hb[Math.floor(i / 4)]));
      assertClose(await out.toArray(), want, { rtol: 2e-6, atol: 1e-6, msg: op });
    });
  }
  // same shapes take the vec4 kernel: odd sizes leave a partial last vec4
  for (const n of [1, 7, 33]) {
    await scope(async () => {
      const ha = rand(n, n);
      const hb = rand(n, n + 1).map((v) => v + 2);
      for (const [op, f] of cases) {
        const xa = op === "pow" ? ha.map(Math.abs) : ha; // x^y needs x >= 0 for fractional y
        const out = binary(op, Tensor.fromArray(xa, [n]), Tensor.fromArray(hb, [n]));
        const want = Array.from(xa, (x, i) => f(x, hb[i]));
        assertClose(await out.toArray(), want, { rtol: 2e-6, atol: 1e-6, msg: `${op} n=${n}` });
      }
    });
  }
  scope(() => {
    assert.throws(
      () => binary("add", Tensor.empty([2, 3]), Tensor.empty([4])),
      /add: shapes \[2, 3\] and \[4\] cannot be broadcast/,
    );
  });
});

Deno.test("fill, full (f32 and i32) and cast", async () => {
  await scope(async () => {
    assert.deepEqual([...(await full([3], -1.5).toArray())], [-1.5, -1.5, -1.5]);
    const i = full([2], 7, "i32");
    assert.equal(i.dtype, "i32");
    assert.deepEqual([...(await i.toArray())], [7, 7]);
    const t = fillInPlace(Tensor.fromArray([1, 2], [2]), 0);
    assert.deepEqual([...(await t.toArray())], [0, 0]);
    const f = Tensor.fromArray([-2.7, -0.5, 0.5, 3.9], [4]);
    const asInt = cast(f, "i32");
    assert.equal(asInt.dtype, "i32");
    assert.deepEqual([...(await asInt.toArray())], [-2, 0, 0, 3]);
    const back = cast(asInt, "f32");
    assert.deepEqual([...(await back.toArray())], [-2, 0, 0, 3]);
    const same = cast(f, "f32");
    assert.notEqual(same.buffer, f.buffer);
  });
});

Deno.test("clone, permute, expand, slice, writeSlice, concat (f32 and i32)", async () => {
  await scope(async () => {
    const data = Array.from({ length: 24 }, (_, i) => i);
    const x = Tensor.fromArray(data, [2, 3, 4]);
    assert.deepEqual([...(await clone(x).toArray())], data);
    const p = permute(x, [2, 0, 1]);
    assert.deepEqual([...p.shape], [4, 2, 3]);
    const hp = await p.toArray();
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 2; b++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(hp[(a * 2 + b) * 3 + c], data[(b * 3 + c) * 4 + a]);
        }
      }
    }
    assert.throws(() => permute(x, [0, 0, 1]), /not a permutation/);
    const e = expand(Tensor.fromArray([1, 2, 3], [3, 1]), [2, 3, 2]);
    assert.deepEqual([...(await e.toArray())], [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    assert.throws(() => expand(x, [3, 3, 4]), /cannot be broadcast|cannot expand/);
    const s = slice(x, 2, 1, 2);
    assert.deepEqual([...(await s.toArray())].slice(0, 4), [1, 2, 5, 6]);
    assert.throws(() => slice(x, 1, 2, 2), /\[2, 4\) out of range for dim 1/);
    const ints = Tensor.fromArray(new Int32Array([1, 2, 3, 4]), [2, 2]);
    const z = full([2, 3], 0, "i32");
    writeSlice(z, ints, 1, 1);
    assert.deepEqual([...(await z.toArray())], [0, 1, 2, 0, 3, 4]);
    const c = concat([ints, Tensor.fromArray(new Int32Array([9, 8]), [2, 1])], 1);
    assert.equal(c.dtype, "i32");
    assert.deepEqual([...(await c.toArray())], [1, 2, 9, 3, 4, 8]);
  });
});
