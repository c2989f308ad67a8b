import assert from "node:assert/strict";
import { defaultUniform, fans, kaimingNormalFanOut, Rng } from "../../src/nn/init.ts";

function stats(a: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of a) {
    s += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / a.length;
  let q = 0;
  for (const v of a) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / a.length), min, max };
}

Deno.test("Rng: equal seeds give equal streams, different seeds differ", () => {
  const a = new Rng(7).normalArray(16, 0, 1);
  const b = new Rng(7).normalArray(16, 0, 1);
  const c = new Rng(8).normalArray(16, 0, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const u = new Rng(0).uniformArray(1000, 0, 1);
  assert.ok(u.every((v) => v >= 0 && v < 1));
});

Deno.test("Rng: normalArray gives the numbers of normal() calls, the cached second value included", () => {
  const fast = new Rng(3);
  const slow = new Rng(3);
  const draws = (n: number, mean: number, std: number) =>
    Float32Array.from({ length: n }, () => slow.normal(mean, std));
  // Odd lengths leave a cached value for the next call to start with; a single normal() and
  // an empty array in between must see (and keep) the same state.
  for (const [n, mean, std] of [[7, 0, 1], [1, 0.5, 2], [0, 0, 1], [10, -1, 0.1], [3, 0, 3]]) {
    assert.deepEqual(fast.normalArray(n, mean, std), draws(n, mean, std), `n=${n}`);
    assert.equal(fast.normal(0, 1), slow.normal(0, 1), `normal() after n=${n}`);
  }
  assert.equal(fast.nextU32(), slow.nextU32(), "the generators end in the same state");
});

Deno.test("Rng: normal and uniform moments", () => {
  const n = new Rng(1).normalArray(200_000, 0.5, 2);
  const s = stats(n);
  assert.ok(Math.abs(s.mean - 0.5) < 0.02, `mean ${s.mean}`);
  assert.ok(Math.abs(s.std - 2) < 0.02, `std ${s.std}`);
  const u = stats(new Rng(2).uniformArray(200_000, -3, 3));
  assert.ok(Math.abs(u.mean) < 0.03, `uniform mean ${u.mean}`);
  assert.ok(Math.abs(u.std - 6 / Math.sqrt(12)) < 0.01, `uniform std ${u.std}`);
  assert.ok(u.min >= -3 && u.max < 3);
});

Deno.test("init: kaiming normal fan_out and default uniform bounds", () => {
  assert.deepEqual(fans([64, 3, 7, 7]), { fanIn: 147, fanOut: 3136 });
  const w = kaimingNormalFanOut([64, 16, 3, 3], new Rng(3));
  const s = stats(w);
  const want = Math.sqrt(2 / (64 * 9));
  assert.ok(Math.abs(s.std - want) / want < 0.03, `std ${s.std} want ${want}`);
  const b = 1 / Math.sqrt(512);
  const l = defaultUniform([10, 512], 512, new Rng(4));
  const ls = stats(l);
  assert.ok(ls.min >= -b && ls.max <= b);
  assert.ok(ls.max > 0.9 * b && ls.min < -0.9 * b);
});
