/**
 * Reductions: values against a host reference on both code paths (serial per output, and
 * the workgroup tree for long axes), ties resolved to the first maximum, and bit-identical
 * results on repeated runs, including a 1 × 100000 tree reduction.
 */
import assert from "node:assert/strict";
import { assertClose, rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { reduce, reduceKernel, sumAll } from "../../src/kernels/reduce.ts";
import { gpu } from "../../src/gpu/device.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/autograd/ops.ts";

/** Host reduction of [outer, r, inner] over the middle axis, in f64. */
function hostReduce(
  x: Float32Array,
  dims: [number, number, number],
  op: "sum" | "mean" | "max",
): { values: number[]; indices: number[] } {
  const [outer, r, inner] = dims;
  const values: number[] = [];
  const indices: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let acc = op === "max" ? -Infinity : 0;
      let bi = -1;
      for (let q = 0; q < r; q++) {
        const v = x[(o * r + q) * inner + j];
        if (op === "max") {
          if (v > acc) [acc, bi] = [v, q];
        } else acc += v;
      }
      values.push(op === "mean" ? acc / r : acc);
      indices.push(bi);
    }
  }
  return { values, indices };
}

// [shape, axis]: short axes take the serial kernel, long axes with few outputs the tree.
const CASES: [number[], number][] = [
  [[5, 7, 3], 1],
  [[5, 7, 3], 0],
  [[5, 7, 3], 2],
  [[3, 300, 2], 1],
  [[1, 1000], 1],
  [[70, 4100], 0],
  [[257], 0],
];

Deno.test("sum / mean / max match a host reduction on both kernel paths", async () => {
  let seed = 1;
  for (const [shape, axis] of CASES) {
    const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const r = shape[axis];
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const hx = rand(outer * r * inner, seed++);
    for (const op of ["sum", "mean", "max"] as const) {
      await scope(async () => {
        const x = Tensor.fromArray(hx, shape);
        const { values, indices } = reduce(op, x, { axis });
        const want = hostReduce(hx, [outer, r, inner], op);
        const label = `${op} [${shape}] axis ${axis}`;
        assert.deepEqual([...values.shape], shape.filter((_, i) => i !== axis), label);
        assertClose(await values.toArray(), want.values, { rtol: 1e-5, atol: 1e-5, msg: label });
        if (op === "max") assert.deepEqual([...(await indices!.toArray())], want.indices, label);
        else assert.equal(indices, null);
        const kept = reduce(op, x, { axis, keepDim: true }).values;
        assert.deepEqual([...kept.shape], shape.map((d, i) => (i === axis ? 1 : d)));
      });
    }
  }
});

Deno.test("max ties resolve to the first maximum (serial, tree and full reductions)", async () => {
  await scope(async () => {
    // serial path: rows with repeated maxima at different places
    const small = Tensor.fromArray([1, 5, 5, 2, 7, 7, 7, 7, 0, 0, 0, 0], [3, 4]);
    assert.deepEqual([...(await reduce("max", small, { axis: 1 }).indices!.toArray())], [1, 0, 0]);
    // tree path (axis of 1000): maxima at 123, 500 and 999 → 123
    const long = new Float32Array(1000).fill(-1);
    long[999] = 3;
    long[500] = 3;
    long[123] = 3;
    const t = Tensor.fromArray(long, [1, 1000]);
    assert.deepEqual([...(await reduce("max", t, { axis: 1 }).indices!.toArray())], [123]);
    // all equal → index 0
    const flat = Tensor.fromArray(new Float32Array(300).fill(2), [300]);
    assert.deepEqual([...(await reduce("max", flat, { axis: 0 }).indices!.toArray())], [0]);
    // the gradient of max goes to the first maximum only (over an axis and over everything)
    const x = Tensor.fromArray(long, [1, 1000], { requiresGrad: true });
    backward(ops.max(x));
    const g = await x.grad!.toArray();
    assert.equal(g[123], 1);
    assert.equal(Array.from(g).reduce((a, b) => a + b, 0), 1);
    const y = Tensor.fromArray([4, 9, 9, 1, 9, 2], [2, 3], { requiresGrad: true });
    backward(ops.sum(ops.max(y, { axis: 1 })));
    assert.deepEqual([...(await y.grad!.toArray())], [0, 1, 0, 0, 1, 0]);
    x.dispose();
    y.dispose();
  });
});

Deno.test("reductions are deterministic: the same bits twice, incl. 1 × 100000", async () => {
  const n = 100000;
  const hx = rand(n, 42).map((v) => v * 1000);
  await scope(async () => {
    const x = Tensor.fromArray(hx, [1, n]);
    for (const op of ["sum", "mean", "max"] as const) {
      const a = await reduce(op, x, { axis: 1 }).values.toArray();
      const b = await reduce(op, x, { axis: 1 }).values.toArray();
      assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(b.buffer), op);
    }
    const s1 = await sumAll(x).item();
    const s2 = await sumAll(x).item();
    assert.ok(Object.is(s1, s2), `sumAll ${s1} vs ${s2}`);
    let exact = 0;
    for (const v of hx) exact += v;
    assertClose([s1], [exact], { rtol: 1e-4, atol: 1e-2, msg: "sum of 1e5 values" });
    // a long axis with several outputs and an inner stride
    const y = Tensor.fromArray(rand(3 * 5000 * 2, 7), [3, 5000, 2]);
    const c = await reduce("sum", y, { axis: 1 }).values.toArray();
    const d = await reduce("sum", y, { axis: 1 }).values.toArray();
    assert.deepEqual(new Uint32Array(c.buffer), new Uint32Array(d.buffer));
  });
});

Deno.test("an empty axis sums to 0 and averages to NaN, as in PyTorch", async () => {
  await scope(async () => {
    const e = Tensor.empty([2, 0]);
    assert.deepEqual([...(await reduce("sum", e, { axis: 1 }).values.toArray())], [0, 0]);
    assert.ok((await reduce("mean", e, { axis: 1 }).values.toArray()).every(Number.isNaN));
    assert.equal(await sumAll(Tensor.empty([0])).item(), 0);
  });
});

Deno.test("reduce rejects bad axes, max over an empty axis and i32 input", () => {
  scope(() => {
    assert.throws(() => reduce("sum", Tensor.empty([2, 3]), { axis: 2 }), /axis 2 out of range/);
    assert.throws(() => reduce("max", Tensor.empty([2, 0]), { axis: 1 }), /empty axis 1/);
    assert.throws(
      () => reduce("sum", Tensor.empty([2], "i32"), { axis: 0 }),
      /expected an f32 tensor, got i32/,
    );
  });
});

Deno.test("subgroup reductions where the device has subgroups, the tree otherwise", async () => {
  const has = gpu().adapter.features.includes("subgroups");
  const long = { outer: 2, r: 1000, inner: 1 };
  assert.equal(reduceKernel(long), has ? "subgroup" : "tree");
  assert.equal(reduceKernel(long, { subgroups: true }), has ? "subgroup" : "tree");
  assert.equal(reduceKernel(long, { subgroups: false }), "tree");
  assert.equal(reduceKernel({ outer: 5, r: 7, inner: 3 }, { subgroups: true }), "serial");
  // r = 100 leaves most of the 256 threads without a value; 100000 loops; ties in max.
  const cases: [number[], number][] = [[[3, 100], 1], [[1, 100000], 1], [[2, 300, 3], 1]];
  let seed = 300;
  for (const [shape, axis] of cases) {
    const [outer, r, inner] = [shape[0], shape[1], shape[2] ?? 1];
    const hx = rand(outer * r * inner, seed++).map((v) => Math.round(8 * v) / 8);
    await scope(async () => {
      const x = Tensor.fromArray(hx, shape);
      for (const op of ["sum", "mean", "max"] as const) {
        const label = `${op} [${shape}] (${has ? "subgroup" : "tree"} vs tree)`;
        const sg = reduce(op, x, { axis, subgroups: true });
        const again = reduce(op, x, { axis, subgroups: true });
        const tree = reduce(op, x, { axis, subgroups: false });
        const got = await sg.values.toArray();
        const want = hostReduce(hx, [outer, r, inner], op);
        assertClose(got, want.values, { rtol: 1e-5, atol: 1e-4, msg: label });
        assert.deepEqual(
          new Uint32Array(got.buffer),
          new Uint32Array((await again.values.toArray()).buffer),
        );
        if (op === "max") {
          // Max and its first index are exact: the same bits as the tree.
          const t = await tree.values.toArray();
          assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(t.buffer), label);
          assert.deepEqual([...(await sg.indices!.toArray())], want.indices, label);
        }
      }
    });
  }
});
