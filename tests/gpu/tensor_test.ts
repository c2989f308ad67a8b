/**
 * Tensor lifetime and device plumbing: scope semantics, views, memory statistics, device
 * limits, WGSL errors surfacing at readback, pool buckets, uniforms and grids.
 */
import assert from "node:assert/strict";
import "../helpers.ts";
import { keep, memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import { gpu } from "../../src/gpu/device.ts";
import { dispatch, dispatchStats, gridFor, sync, Uniforms } from "../../src/gpu/dispatch.ts";
import { bucketSize, trimPool } from "../../src/gpu/pool.ts";
import { getPipeline, pipelineCount, pipelineLog } from "../../src/gpu/pipeline_cache.ts";
import { full, unary } from "../../src/kernels/elementwise.ts";

Deno.test("fromArray / toArray round-trip f32 and i32, shape checks", async () => {
  const a = Tensor.fromArray([1.5, -2, 3.25], [3]);
  assert.deepEqual([...(await a.toArray())], [1.5, -2, 3.25]);
  assert.equal(a.dtype, "f32");
  const b = Tensor.fromArray(new Int32Array([7, -8]), [2, 1]);
  assert.equal(b.dtype, "i32");
  assert.deepEqual([...(await b.toArray())], [7, -8]);
  assert.equal(await Tensor.fromArray([4], []).item(), 4);
  assert.throws(() => Tensor.fromArray([1, 2], [3]), /shape \[3\] needs 3 elements, got 2/);
  assert.throws(() => Tensor.empty([2, -1]), /dims must be integers >= 0/);
  await assert.rejects(() => a.item(), /item\(\) needs 1 element/);
  for (const t of [a, b]) t.dispose();
});

Deno.test("scope disposes what it made, except returned and kept tensors", () => {
  const base = memoryStats();
  const outer = Tensor.fromArray([1], [1]);
  let inner!: Tensor;
  let kept!: Tensor;
  const result = scope(() => {
    inner = full([2], 1);
    kept = keep(full([2], 2));
    return { r: [full([3], 3)] };
  });
  assert.ok(inner.disposed, "a tensor made inside is disposed");
  assert.ok(!kept.disposed, "a kept tensor survives");
  assert.ok(!result.r[0].disposed, "a returned tensor (nested in arrays/objects) survives");
  assert.ok(!outer.disposed, "a tensor made outside is untouched");
  assert.equal(memoryStats().liveTensors, base.liveTensors + 3);
  for (const t of [outer, kept, result.r[0]]) t.dispose();
  assert.equal(memoryStats().liveTensors, base.liveTensors);
  assert.equal(memoryStats().liveBuffers, base.liveBuffers);
});

Deno.test("nested scopes: a tensor returned from the inner scope belongs to the outer one", () => {
  let fromInner!: Tensor;
  let innerOnly!: Tensor;
  scope(() => {
    fromInner = scope(() => {
      innerOnly = full([1], 0);
      return full([1], 1);
    });
    assert.ok(innerOnly.disposed);
    assert.ok(!fromInner.disposed, "still alive inside the outer scope");
  });
  assert.ok(fromInner.disposed, "disposed when the outer scope ends");
});

Deno.test("returning a tensor made outside a nested scope does not hand it to the outer one", () => {
  const param = Tensor.fromArray([1], [1]); // long-lived: no scope
  let outerInput!: Tensor;
  scope(() => {
    outerInput = full([1], 2);
    const same = scope(() => param);
    assert.equal(same, param);
    assert.equal(scope(() => outerInput), outerInput);
    scope(() => scope(() => param));
  });
  assert.ok(!param.disposed, "a long-lived tensor survives every scope that returned it");
  assert.ok(outerInput.disposed, "the outer scope still owns (and disposes) its own tensor");
  param.dispose();
});

Deno.test("async scope waits for the promise; a throwing scope still cleans up", async () => {
  const base = memoryStats().liveTensors;
  let made!: Tensor;
  const r = await scope(async () => {
    made = full([4], 1);
    await new Promise((res) => setTimeout(res, 1));
    const out = full([4], 2);
    assert.ok(!made.disposed, "alive across await");
    return out;
  });
  assert.ok(made.disposed);
  assert.deepEqual([...(await r.toArray())], [2, 2, 2, 2]);
  r.dispose();
  assert.throws(() =>
    scope(() => {
      full([2], 0);
      throw new Error("inside");
    }), /inside/);
  await assert.rejects(() =>
    scope(async () => {
      full([2], 0);
      await Promise.resolve();
      throw new Error("async inside");
    }), /async inside/);
  assert.equal(memoryStats().liveTensors, base);
});

Deno.test("views share storage; the buffer is freed when the last one goes", async () => {
  const base = memoryStats();
  const a = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  const v = a.view([3, 2]);
  assert.equal(v.buffer, a.buffer);
  assert.throws(() => a.view([4]), /cannot view \[2, 3\] \(6 elements\) as \[4\]/);
  a.dispose();
  a.dispose(); // idempotent
  assert.ok(a.disposed);
  assert.throws(() => a.buffer, /already disposed/);
  assert.equal(memoryStats().liveBuffers, base.liveBuffers + 1, "the view keeps the buffer");
  assert.deepEqual([...(await v.toArray())], [1, 2, 3, 4, 5, 6]);
  v.dispose();
  assert.equal(memoryStats().liveBuffers, base.liveBuffers);
  assert.equal(memoryStats().liveTensors, base.liveTensors);
});

Deno.test("a buffer beyond the device limit fails naming maxStorageBufferBindingSize", () => {
  const limit = gpu().limits.maxStorageBufferBindingSize;
  const before = memoryStats();
  assert.throws(
    () => Tensor.empty([Math.ceil(limit / 4) + 1024]),
    (e: Error) => e instanceof RangeError && /maxStorageBufferBindingSize/.test(e.message),
  );
  assert.equal(memoryStats().liveTensors, before.liveTensors);
  assert.equal(memoryStats().liveBuffers, before.liveBuffers);
});

Deno.test("a WGSL validation error surfaces as an exception at the next readback", async () => {
  const x = Tensor.fromArray([1, 2], [2]);
  dispatch({
    kernel: "broken_test_kernel",
    code: "@compute @workgroup_size(1) fn main() { let a: u32 = 1.5; }",
    buffers: [],
    workgroups: [1],
  });
  await assert.rejects(() => x.toArray(), /WebGPU validation error/);
  // The error is reported once; the device keeps working afterwards.
  assert.deepEqual([...(await x.toArray())], [1, 2]);
  x.dispose();
});

Deno.test("dispatch rejects grids beyond maxComputeWorkgroupsPerDimension", () => {
  assert.throws(
    () => dispatch({ kernel: "k", code: "", buffers: [], workgroups: [70000] }),
    /maxComputeWorkgroupsPerDimension/,
  );
  const before = dispatchStats().dispatches;
  dispatch({ kernel: "k", code: "", buffers: [], workgroups: [0] });
  assert.equal(dispatchStats().dispatches, before, "empty grids are skipped");
});

Deno.test("pool buckets, uniform packing and grids", () => {
  assert.equal(bucketSize(1), 16);
  assert.equal(bucketSize(17), 32);
  assert.equal(bucketSize(256), 256);
  assert.equal(bucketSize(257), 320);
  assert.equal(bucketSize(1000), 1024);
  for (const n of [1, 300, 4097, 123456]) {
    const b = bucketSize(n);
    assert.ok(b >= n && b <= n * 1.25 + 16, `bucket ${b} for ${n}`);
  }
  const u = new Uniforms().u32(7).i32(-1).f32(0.5).bytes();
  assert.equal(u.byteLength, 16);
  const dv = new DataView(u);
  assert.deepEqual([dv.getUint32(0, true), dv.getInt32(4, true), dv.getFloat32(8, true)], [
    7,
    -1,
    0.5,
  ]);
  assert.equal(new Uniforms().u32s([1, 2, 3, 4, 5]).bytes().byteLength, 32);
  assert.deepEqual(gridFor(1000, 256), [4, 1]);
  const [x, y] = gridFor(65536 * 256 * 3, 256);
  assert.ok(x <= 65535 && x * y * 256 >= 65536 * 256 * 3);
});

Deno.test("the adapter is described and classified", () => {
  const { adapter } = gpu();
  assert.equal(typeof adapter.description, "string");
  const named = `${adapter.description} ${adapter.vendor} ${adapter.architecture}`;
  const forced = Deno.env.get("CT_ADAPTER_CLASS"); // tests/helpers.ts
  const cpu = forced ? forced === "cpu" : /llvmpipe|lavapipe|swiftshader/i.test(named);
  assert.equal(adapter.isCpu, cpu);
});

Deno.test("pipelines are cached per source and override values", () => {
  const code = "override K: u32 = 1u;\n@compute @workgroup_size(K) fn main() {}";
  const p1 = getPipeline("cache_test", code, { K: 2 });
  const n = pipelineCount();
  assert.equal(getPipeline("cache_test", code, { K: 2 }), p1);
  assert.equal(pipelineCount(), n);
  assert.notEqual(getPipeline("cache_test", code, { K: 4 }), p1);
  assert.equal(pipelineCount(), n + 1);
  // The log has one record per compiled pipeline, the last one this K = 4 variant.
  const log = pipelineLog();
  assert.equal(log.length, pipelineCount());
  const last = log[log.length - 1];
  assert.equal(last.kernel, "cache_test");
  assert.deepEqual(last.overrides, { K: 4 });
  assert.equal(last.wgslChars, code.length);
  assert.ok(last.expandMs >= 0 && last.moduleMs >= 0 && last.pipelineMs >= 0);
});

Deno.test("a dispatch that makes a pipeline submits what was recorded first; cached ones do not", async () => {
  const x = Tensor.fromArray([1, 2, 3], [3]);
  // A kernel this test alone uses, so its first dispatch makes a pipeline.
  const code = "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n" +
    "@compute @workgroup_size(1) fn main() { v[1] = v[1] + 10.0; }";
  const run = async (): Promise<{ submits: number; values: number[] }> => {
    await sync();
    const y = unary("affine", x, 1, 0);
    // 20 recorded dispatches of a pipeline made before (and so cached at the second run)...
    for (let i = 0; i < 20; i++) unary("affine", x, 1, 0).dispose();
    const before = dispatchStats().submits;
    // ...then one that needs a new pipeline at the first run only.
    dispatch({ kernel: "early_submit_test", code, buffers: [y.buffer], workgroups: [1] });
    const submits = dispatchStats().submits - before;
    const values = [...await y.toArray()];
    y.dispose();
    return { submits, values };
  };
  const first = await run();
  assert.equal(
    first.submits,
    1,
    "the recorded dispatches went to the queue before the new pipeline",
  );
  assert.deepEqual(first.values, [1, 12, 3], "and ran before the new kernel, in order");
  const second = await run();
  assert.equal(second.submits, 0, "no early submit once every pipeline is made");
  assert.deepEqual(second.values, [1, 12, 3]);
  x.dispose();
});

Deno.test("uniform blocks and bind groups are reused without mixing up dispatches", async () => {
  const x = Tensor.fromArray([1, 2, 3], [3]);
  const run = async (): Promise<number[][]> => {
    const outs = scope(() => Array.from({ length: 40 }, (_, i) => unary("affine", x, i, -i)));
    const vals = await Promise.all(outs.map(async (t) => [...(await t.toArray())]));
    for (const t of outs) t.dispose();
    return vals;
  };
  const want = Array.from({ length: 40 }, (_, i) => [1, 2, 3].map((v) => v * i - i));
  assert.deepEqual(await run(), want);
  assert.deepEqual(await run(), want, "same results with cached uniform blocks");
  // Step-like repetition (same ops, buffers recycled by the pool) hits the bind group cache.
  const hits = dispatchStats().bindGroupHits;
  for (let i = 0; i < 10; i++) scope(() => unary("affine", unary("affine", x, 2, 0), 3, 0));
  assert.ok(dispatchStats().bindGroupHits >= hits + 4, "repeated steps reuse bind groups");
  trimPool(); // destroys idle buffers: cached bind groups that name them must go too
  assert.deepEqual(await run(), want);
  x.dispose();
});

Deno.test("`using` disposes a tensor at the end of its block", () => {
  const before = memoryStats().liveTensors;
  let seen: Tensor;
  {
    using t = Tensor.fromArray([1, 2, 3], [3]);
    seen = t;
    assert.equal(memoryStats().liveTensors, before + 1);
  }
  assert.equal(seen.disposed, true);
  assert.equal(memoryStats().liveTensors, before);
});
