/**
 * Autotuning: off by default (tests see the heuristics), cache files round-trip and corrupt
 * ones are ignored with a warning, a tuned choice is one of the candidates and is the one
 * matmul then runs (its tile shape too), tile candidates within the device's limits, and the
 * peak-memory counter.
 */
import assert from "node:assert/strict";
import "../helpers.ts";
import { gpu } from "../../src/gpu/device.ts";
import { memoryStats, resetPeak, scope, Tensor } from "../../src/gpu/tensor.ts";
import {
  adapterIdentity,
  choiceTable,
  disableTuning,
  KERNELS_VERSION,
  parseTuneCache,
  pendingBuckets,
  refinedCandidate,
  registerTuneFamily,
  serializeTuneCache,
  shapeBucket,
  splitCandidate,
  tuneBucket,
  tunedChoice,
  tunePending,
  tuningEnabled,
} from "../../src/gpu/tune.ts";
import {
  CONV_CANDIDATES,
  enableKernelTuning,
  MATMUL_CANDIDATES,
  REDUCE_CANDIDATES,
} from "../../src/kernels/tuning.ts";
import { reduce, reduceKernel } from "../../src/kernels/reduce.ts";
import { conv2d } from "../../src/kernels/conv.ts";
import { dispatchStats, startProfile, stopProfile } from "../../src/gpu/dispatch.ts";
import { batchNormStats, BN_REDUCE_WORKGROUPS } from "../../src/kernels/batch_norm.ts";
import { assertClose, rand } from "../helpers.ts";
import { pipelineCount, pipelineLog } from "../../src/gpu/pipeline_cache.ts";
import {
  defaultGemmTile,
  GEMM_TILE_NAMES,
  GEMM_TILES,
  type GemmTileName,
  gemmTileOverrides,
  gemmTilesFor,
  matmul,
  matmulCandidateName,
  matmulCandidateOptions,
  matmulPlan,
  matmulVariant,
} from "../../src/kernels/matmul.ts";
import { convCandidateOptions, convPlan, convRoute } from "../../src/kernels/conv.ts";
import { conv2dGeometry } from "../../src/kernels/conv_geometry.ts";
import { tuneFamilies } from "../../src/gpu/tune.ts";
import {
  loadRunChoices,
  loadTuneCache,
  saveRunChoices,
  saveTuneCache,
  tuneCacheFileName,
  tuneWanted,
} from "../../src/train/tune_cache.ts";

const ADAPTER = "vendor | arch | dev | desc";
const HEURISTIC = () => (gpu().adapter.isCpu ? "register" : "tiled");

Deno.test("tuning is off unless a test turns it on: heuristics decide", () => {
  assert.equal(tuningEnabled(), false);
  assert.equal(tunedChoice("matmul", [64, 64, 64], "register"), "register");
  assert.equal(tunedChoice("matmul", [64, 64, 64], "tiled"), "tiled");
  assert.deepEqual(pendingBuckets(), [], "nothing is noted while off");
  assert.equal(matmulVariant("auto", [64, 64, 64]), gpu().adapter.isCpu ? "register" : "tiled");
});

Deno.test("CT_TUNE=0 turns tuning off", () => {
  const old = Deno.env.get("CT_TUNE");
  try {
    Deno.env.set("CT_TUNE", "0");
    assert.equal(tuneWanted(), false);
    Deno.env.set("CT_TUNE", "1");
    assert.equal(tuneWanted(), true);
  } finally {
    if (old === undefined) Deno.env.delete("CT_TUNE");
    else Deno.env.set("CT_TUNE", old);
  }
});

Deno.test("shape buckets round each dim up to a power of two", () => {
  assert.deepEqual(shapeBucket([1, 3, 64, 65, 1000]), [1, 4, 64, 128, 1024]);
});

Deno.test("cache file round-trips through the user cache folder, per adapter", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const choices = { "matmul/64x64x64": "tiled", "matmul/1024x8x512": "register" };
    const path = saveTuneCache(dir, ADAPTER, choices);
    assert.ok(path.endsWith(tuneCacheFileName(ADAPTER)));
    assert.deepEqual(
      loadTuneCache(dir, ADAPTER, () => assert.fail("no warning expected")),
      choices,
    );
    // Another adapter has its own file: nothing cached for it yet, and no warning.
    assert.notEqual(tuneCacheFileName(ADAPTER), tuneCacheFileName(`${ADAPTER}2`));
    assert.deepEqual(
      loadTuneCache(dir, `${ADAPTER}2`, () => assert.fail("no file, no warning")),
      {},
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a corrupt, foreign or outdated cache is ignored with a warning naming it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/${tuneCacheFileName(ADAPTER)}`;
    const cases: [string, RegExp][] = [
      ["{not json", /not JSON/],
      ['{"format":"other"}', /expected an object with format/],
      [
        serializeTuneCache(ADAPTER, { a: "b" }).replace(
          `"kernelsVersion": ${KERNELS_VERSION}`,
          `"kernelsVersion": ${KERNELS_VERSION + 1}`,
        ),
        new RegExp(`kernelsVersion ${KERNELS_VERSION + 1}, expected ${KERNELS_VERSION}`),
      ],
      [serializeTuneCache("someone else", { a: "b" }), /adapter "someone else"/],
      [serializeTuneCache(ADAPTER, { a: 3 } as unknown as Record<string, string>), /short string/],
    ];
    for (const [text, re] of cases) {
      Deno.writeTextFileSync(path, text);
      const warnings: string[] = [];
      assert.deepEqual(loadTuneCache(dir, ADAPTER, (m) => warnings.push(m)), {});
      assert.equal(warnings.length, 1, text);
      assert.match(warnings[0], re);
      assert.ok(warnings[0].includes(path), "the warning names the file");
    }
    assert.equal(parseTuneCache("[]", ADAPTER), null);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("measured choice: one of the candidates, recorded, reused on resume, and used", async () => {
  const identity = adapterIdentity(gpu().adapter);
  const a = Tensor.fromArray(Float32Array.from({ length: 40 * 24 }, (_, i) => (i % 7) - 3), [
    40,
    24,
  ]);
  const b = Tensor.fromArray(Float32Array.from({ length: 24 * 36 }, (_, i) => (i % 5) - 2), [
    24,
    36,
  ]);
  const product = async (variant?: "register" | "tiled") => {
    const c = scope(() => matmul(a, b, { variant }));
    const out = await c.toArray();
    c.dispose();
    return [...out];
  };
  const expected = await product("register");
  const dir = Deno.makeTempDirSync();
  try {
    const key = "matmul/64x64x32x1";
    enableKernelTuning();
    scope(() => matmul(a, b)).dispose();
    assert.deepEqual(pendingBuckets(), [key], "the fallback ran and was noted");
    const [r] = await tunePending({ reps: 1 });
    assert.equal(r.key, key);
    assert.ok(MATMUL_CANDIDATES.includes(r.choice), r.choice);
    // Each candidate, every tile shape included, is timed or left out (a tile refinement
    // goes with its base when that one is far off the best).
    assert.deepEqual(
      [...Object.keys(r.ms), ...Object.keys(r.pruned)].sort(),
      [...MATMUL_CANDIDATES].sort(),
    );
    for (const c of Object.keys(r.pruned)) {
      assert.ok(splitCandidate(c).detail !== undefined, `${c}: no probe at 40 rows, batch 1`);
    }
    assert.equal(r.ms[r.choice], Math.min(...Object.values(r.ms)));
    assert.deepEqual(choiceTable(), { [key]: r.choice });
    assert.deepEqual(pendingBuckets(), []);
    // The run folder records the table; a resumed run gets the same choices back.
    saveRunChoices(dir, identity, choiceTable());
    assert.deepEqual(loadRunChoices(dir, identity), { [key]: r.choice });
    // Whatever the table says is what runs, for every shape in the bucket, with equal results.
    for (const forced of MATMUL_CANDIDATES) {
      enableKernelTuning({ [key]: forced });
      const want = matmulCandidateOptions(forced);
      assert.deepEqual(matmulPlan("auto", [40, 36, 24]), want);
      assert.deepEqual(matmulPlan("auto", [33, 64, 17, 1]), want);
      assert.equal(matmulVariant("auto", [33, 64, 17]), want.variant);
      assert.equal(matmulCandidateName(want), forced);
      assert.deepEqual(await product(), expected, forced);
    }
    // An entry naming no candidate or no tile falls back to the heuristic.
    for (const bogus of ["bogus", "tiled:9x9", "register:64x64_4x4"]) {
      enableKernelTuning({ [key]: bogus });
      const plan = matmulPlan("auto", [40, 36, 24]);
      assert.equal(plan.variant, HEURISTIC(), bogus);
      assert.equal(plan.tile, undefined, bogus);
    }
  } finally {
    disableTuning();
    a.dispose();
    b.dispose();
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(tuningEnabled(), false);
});

Deno.test("tile candidates: every GEMM tile shape of matmul and igemm, within the device's limits", () => {
  enableKernelTuning();
  disableTuning();
  assert.ok(tuneFamilies().includes("matmul") && tuneFamilies().includes("conv2d"));
  for (const t of GEMM_TILE_NAMES) {
    assert.ok(MATMUL_CANDIDATES.includes(refinedCandidate("tiled", t)), t);
    assert.ok(CONV_CANDIDATES.includes(refinedCandidate("igemm", t)), t);
    assert.deepEqual(convCandidateOptions(`igemm:${t}`), { algorithm: "igemm", tile: t });
    assert.deepEqual(matmulCandidateOptions(`tiled:${t}`), { variant: "tiled", tile: t });
  }
  // Chromium's SwiftShader (256 invocations, 16 KiB) and every WebGPU device take them all.
  const limits = {
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupStorageSize: 16384,
  };
  assert.deepEqual(gemmTilesFor(limits), [...GEMM_TILE_NAMES]);
  assert.deepEqual(gemmTilesFor(gpu().limits), [...GEMM_TILE_NAMES]);
  // Smaller limits leave out the tiles over them: 8 KiB keeps BK·(BM + BN) ≤ 2048 floats.
  assert.deepEqual(gemmTilesFor({ ...limits, maxComputeWorkgroupStorageSize: 8192 }), [
    "32x32_4x4",
    "64x64_4x4",
    "128x128_8x8",
  ]);
  assert.deepEqual(gemmTilesFor({ ...limits, maxComputeInvocationsPerWorkgroup: 64 }), [
    "32x32_4x4",
  ]);
  assert.deepEqual(gemmTilesFor({ ...limits, maxComputeWorkgroupSizeY: 8 }), ["32x32_4x4"]);
});

/** The tile overrides of the pipelines compiled since `from` (in `pipelineLog()`) for `kernel`. */
function compiledTiles(kernel: string, from: number): string[] {
  return pipelineLog().slice(from).filter((r) => r.kernel === kernel).map((r) => {
    const found = GEMM_TILE_NAMES.find((t) =>
      Object.entries(gemmTileOverrides(GEMM_TILES[t])).every(([k, v]) => r.overrides[k] === v)
    );
    return found ?? "none";
  });
}

Deno.test("a table naming a non-default tile: that tile runs (matmul and igemm conv), results exact", async () => {
  // Aᵀ·B (a pipeline no other test here compiles) at 20×12×9: the heuristic tile is 32x32_4x4.
  const [m, n, k] = [20, 12, 9];
  const ha = rand(k * m, 41);
  const hb = rand(k * n, 42);
  const want = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      for (let p = 0; p < k; p++) want[i * n + j] += ha[p * m + i] * hb[p * n + j];
    }
  }
  const a = Tensor.fromArray(ha, [k, m]);
  const b = Tensor.fromArray(hb, [k, n]);
  const x = Tensor.fromArray(rand(2 * 3 * 3, 43), [1, 2, 3, 3]);
  const w = Tensor.fromArray(rand(3 * 2 * 9, 44), [3, 2, 3, 3]);
  const convOpts = { padding: 1 };
  try {
    assert.equal(defaultGemmTile(m, n), "32x32_4x4");
    for (const tile of GEMM_TILE_NAMES.filter((t) => t !== "32x32_4x4")) {
      enableKernelTuning({ "matmul/32x16x16x1": `tiled:${tile}` });
      const from = pipelineLog().length;
      const c = matmul(a, b, { transA: true });
      assert.deepEqual(compiledTiles("matmul_tiled", from), [tile], "one new pipeline: the tile");
      assertClose(await c.toArray(), want, { rtol: 1e-5, atol: 1e-5, msg: tile });
      c.dispose();
    }
    // The conv: the table's igemm tile, against the heuristic tiles (igemm forced) bit for bit.
    const g = conv2dGeometry(x.shape, w.shape, convOpts);
    const key = "conv2d/1x2x4x4x4x3x3x1x1x1x1x1x1";
    disableTuning();
    const y0 = conv2d(x, w, { ...convOpts, algorithm: "igemm" });
    const expected = await y0.toArray();
    y0.dispose();
    const tile: GemmTileName = "128x64_8x4";
    enableKernelTuning({ [key]: `igemm:${tile}` });
    assert.deepEqual(convPlan(g, convOpts), { algorithm: "igemm", tile });
    const from = pipelineLog().length;
    const y = conv2d(x, w, convOpts);
    assert.deepEqual(compiledTiles("conv2d_igemm", from), [tile]);
    assert.deepEqual(await y.toArray(), expected);
    y.dispose();
  } finally {
    disableTuning();
    for (const t of [a, b, x, w]) t.dispose();
  }
});

Deno.test("bn_reduce: every workgroup candidate gives the batch statistics; the tuned one runs", async () => {
  const [n, c, hw] = [3, 2, 10]; // HW % 4 != 0: the element-by-element path
  const data = rand(n * c * hw, 9);
  const x = Tensor.fromArray(data, [n, c, hw]);
  const mean: number[] = [];
  const invstd: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const v: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < hw; j++) v.push(data[(i * c + ch) * hw + j]);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    mean.push(m);
    invstd.push(1 / Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length + 1e-5));
  }
  const statsNow = async () => {
    const s = batchNormStats(x, { eps: 1e-5, momentum: 0.1 });
    const out = { mean: await s.s1.toArray(), invstd: await s.s2.toArray() };
    s.s1.dispose();
    s.s2.dispose();
    return out;
  };
  try {
    enableKernelTuning();
    await statsNow();
    assert.deepEqual(pendingBuckets(), ["bn_reduce/4x2x16"]);
    for (const wg of BN_REDUCE_WORKGROUPS) {
      enableKernelTuning({ "bn_reduce/4x2x16": wg });
      const before = pipelineCount();
      const got = await statsNow();
      // Each size is its own pipeline: a new one appears unless the heuristic's (8 here, for
      // 30 values per channel) already ran above.
      assert.equal(pipelineCount() - before, wg === "8" ? 0 : 1, `WG ${wg} is the one that ran`);
      assertClose(got.mean, mean, { rtol: 1e-5, atol: 1e-6, msg: `mean, WG ${wg}` });
      assertClose(got.invstd, invstd, { rtol: 1e-4, atol: 1e-5, msg: `invstd, WG ${wg}` });
    }
    // Measured (after the loop: the tuner times at the shape seen, compiling every size).
    enableKernelTuning();
    await statsNow();
    const [r] = await tunePending({ reps: 1 });
    assert.equal(r.key, "bn_reduce/4x2x16");
    assert.ok((BN_REDUCE_WORKGROUPS as readonly string[]).includes(r.choice), r.choice);
  } finally {
    disableTuning();
    x.dispose();
  }
});

Deno.test("conv2d: the tuned algorithm is the one that runs, kernel and stride kept exact", async () => {
  const x = Tensor.fromArray(rand(2 * 3 * 5 * 5, 21), [2, 3, 5, 5]);
  const w = Tensor.fromArray(rand(4 * 3 * 3 * 3, 22), [4, 3, 3, 3]);
  const opts = { stride: 1, padding: 1 };
  const key = "conv2d/2x4x8x8x4x3x3x1x1x1x1x1x1";
  // Output of one forward conv, and what ran: the kernels dispatched where the device can
  // profile (the dispatch count alone can coincide: on a GPU-class adapter direct and im2col
  // both take three), else the count.
  const profiled = gpu().adapter.features.includes("timestamp-query");
  const conv = async (candidate?: string) => {
    const d0 = dispatchStats().dispatches;
    if (profiled) startProfile();
    const y = conv2d(x, w, { ...opts, ...(candidate ? convCandidateOptions(candidate) : {}) });
    const ran = profiled
      ? [...await stopProfile()].map(([k, v]) => `${k}×${v.count}`).sort().join(" ")
      : String(dispatchStats().dispatches - d0);
    const out = [...(await y.toArray())];
    y.dispose();
    return { out, ran };
  };
  // `unfold` is listed only for convs on tiny planes (see the next test), not this 5×5 one.
  const candidates = CONV_CANDIDATES.filter((c) => c !== "unfold");
  try {
    const byCandidate: Record<string, { out: number[]; ran: string }> = {};
    for (const c of candidates) byCandidate[c] = await conv(c);
    assert.notEqual(byCandidate.direct.ran, byCandidate.im2col.ran);
    enableKernelTuning();
    await conv();
    // The im2col path (the CPU heuristic at 5-pixel rows) notes its matmul bucket too.
    assert.ok(pendingBuckets().includes(key), pendingBuckets().join(", "));
    const r = (await tunePending({ reps: 1 })).find((t) => t.key === key)!;
    assert.ok(candidates.includes(r.choice), r.choice);
    // Each candidate is timed, or left out at the probe shape (one image) as far slower.
    assert.deepEqual(
      [...Object.keys(r.ms), ...Object.keys(r.pruned)].sort(),
      [...candidates].sort(),
    );
    assert.ok(r.choice in r.ms);
    const g = conv2dGeometry(x.shape, w.shape, opts);
    for (const a of candidates) {
      enableKernelTuning({ [key]: a });
      assert.deepEqual(convPlan(g), convCandidateOptions(a), a);
      assert.deepEqual(await conv(), byCandidate[a], a);
    }
  } finally {
    disableTuning();
    x.dispose();
    w.dispose();
  }
});

Deno.test("conv2d on a tiny plane: unfold is a candidate, and the tuned choice is the path that runs", async () => {
  // 3×3 padding 1 on a 2×2 plane: every (input, output) pixel pair is a tap.
  const x = Tensor.fromArray(rand(2 * 4 * 2 * 2, 31), [2, 4, 2, 2]);
  const w = Tensor.fromArray(rand(8 * 4 * 3 * 3, 32), [8, 4, 3, 3]);
  const opts = { padding: 1 };
  const g = conv2dGeometry(x.shape, w.shape, opts);
  const key = "conv2d/2x4x2x2x8x3x3x1x1x1x1x1x1";
  try {
    // Without a table: the heuristic (unfold on CPU adapters, a kernel family elsewhere).
    assert.equal(convRoute(g, opts, "forward").kind === "unfold", gpu().adapter.isCpu);
    enableKernelTuning();
    const y0 = conv2d(x, w, opts);
    const ref = await y0.toArray();
    y0.dispose();
    assert.ok(pendingBuckets().includes(key), pendingBuckets().join(", "));
    const r = (await tunePending({ reps: 1 })).find((t) => t.key === key)!;
    assert.ok("unfold" in r.ms || "unfold" in r.pruned, `unfold was a candidate: ${r.choice}`);
    for (const a of ["unfold", "im2col", "direct"]) {
      enableKernelTuning({ [key]: a });
      assert.equal(convRoute(g, opts, "forward").kind, a === "unfold" ? "unfold" : "kernel", a);
      const y = conv2d(x, w, opts);
      assertClose(await y.toArray(), ref, { rtol: 1e-5, atol: 1e-5, msg: a });
      y.dispose();
    }
    // Forced on a plane it does not fit: a one-line error naming the geometry.
    disableTuning();
    using x3 = Tensor.empty([1, 4, 3, 3]);
    assert.throws(
      () => conv2d(x3, w, { padding: 1, algorithm: "unfold" }),
      /conv2d: algorithm "unfold" needs .* got input 4×3×3, kernel 3×3, output 3×3/,
    );
  } finally {
    disableTuning();
    x.dispose();
    w.dispose();
  }
});

Deno.test("peakBytes tracks the high-water mark since resetPeak", () => {
  const base = memoryStats();
  resetPeak();
  assert.equal(memoryStats().peakBytes, base.liveBytes);
  const big = Tensor.empty([1 << 16]);
  const small = Tensor.empty([16]);
  const high = memoryStats().liveBytes;
  big.dispose();
  assert.equal(memoryStats().peakBytes, high, "the peak outlives the buffer");
  resetPeak();
  assert.equal(memoryStats().peakBytes, base.liveBytes + 64);
  small.dispose();
  assert.equal(memoryStats().peakBytes, base.liveBytes + 64);
});

Deno.test("reduce: the tuned load width is the one that runs, with the same sums", async () => {
  const x = Tensor.fromArray(rand(3 * 5 * 8, 31), [3, 5, 8]);
  const sum = async () => {
    const r = reduce("sum", x, { axis: 1 });
    const out = [...(await r.values.toArray())];
    r.values.dispose();
    return out;
  };
  const dims = { outer: 3, r: 5, inner: 8 };
  const expected = await sum();
  try {
    enableKernelTuning();
    await sum();
    assert.ok(pendingBuckets().includes("reduce/4x8x8"), pendingBuckets().join(", "));
    const r = (await tunePending({ reps: 1 })).find((t) => t.key === "reduce/4x8x8")!;
    assert.deepEqual(Object.keys(r.ms).sort(), [...REDUCE_CANDIDATES].sort());
    for (const c of REDUCE_CANDIDATES) {
      enableKernelTuning({ "reduce/4x8x8": c });
      assert.equal(reduceKernel(dims), c);
      assert.equal(reduceKernel({ ...dims, inner: 5 }), "serial", "no vec4 path: untuned");
      assert.deepEqual(await sum(), expected, c);
    }
  } finally {
    disableTuning();
    x.dispose();
  }
  assert.equal(reduceKernel(dims), gpu().adapter.isCpu ? "serial" : "serial4", "heuristic");
});

Deno.test("tuneBucket: the fallback first, hopeless candidates pruned at the probe shape", async () => {
  // A fake family on a virtual clock: each run advances it by the candidate's cost per item.
  let clock = 0;
  const cost: Record<string, number> = { fast: 10, slower: 25, hopeless: 400 };
  const fullRuns: Record<string, number> = { fast: 0, slower: 0, hopeless: 0 };
  registerTuneFamily("fake_family", {
    candidates: ["hopeless", "slower", "fast"],
    probe: ([n]) => ({ dims: [n / 8], scale: 8 }),
    bench: ([n], c) => ({
      run: () => {
        clock += cost[c] * n;
        if (n === 64) fullRuns[c]++;
      },
      dispose: () => {},
    }),
  });
  try {
    enableKernelTuning();
    const r = await tuneBucket("fake_family", [64], { now: () => clock, first: "fast" });
    assert.equal(r.choice, "fast");
    // The first candidate is not probed; "slower" is estimated 2.5× off (timed, stopped after
    // its first run), "hopeless" 40× (never run at 64).
    assert.deepEqual(r.pruned, { hopeless: 400 * 64 });
    assert.deepEqual(r.ms, { fast: 640, slower: 1600 });
    // Full size: one untimed run, then 3 timed for the first; a candidate over 2× the best
    // stops at its first run.
    assert.deepEqual(fullRuns, { fast: 4, slower: 1, hopeless: 0 });
    // The warm-up budget: no bucket starts once it is spent; the rest stay pending.
    enableKernelTuning();
    tunedChoice("fake_family", [64], "fast");
    tunedChoice("fake_family", [100], "fast");
    assert.deepEqual(pendingBuckets(), ["fake_family/64", "fake_family/128"]);
    const done = await tunePending({ now: () => clock, budgetMs: 1 });
    assert.deepEqual(done.map((d) => d.key), ["fake_family/64"]);
    assert.deepEqual(pendingBuckets(), ["fake_family/128"]);
  } finally {
    disableTuning();
  }
});

Deno.test("tuneBucket: tile refinements go with their base when it is far off the best", async () => {
  let clock = 0;
  const cost: Record<string, number> = {
    fast: 10,
    "fast:a": 12,
    "fast:b": 5,
    hopeless: 400,
    "hopeless:a": 1,
    slowish: 16,
    "slowish:a": 1,
    broken: 1,
    "broken:a": 1,
  };
  const benched: string[] = [];
  registerTuneFamily("fake_tiles", {
    candidates: [
      "fast",
      "fast:a",
      "fast:b",
      "hopeless",
      "hopeless:a",
      "slowish",
      "slowish:a",
      "broken",
      "broken:a",
    ],
    probe: ([n]) => ({ dims: [n / 8], scale: 8 }),
    bench: ([n], c) => {
      if (c === "broken") throw new Error("over a device limit");
      benched.push(c);
      return { run: () => void (clock += cost[c] * n), dispose: () => {} };
    },
  });
  try {
    enableKernelTuning();
    const r = await tuneBucket("fake_tiles", [64], { now: () => clock, first: "fast" });
    // "fast:b" (a refinement of a base within reach) wins; "hopeless:a" would have won too,
    // but its base was pruned at the probe, so it never ran; nor "slowish:a", whose base is
    // timed over REFINE_FACTOR (1.5) times the best so far (16 vs 5 per item); "broken:a"
    // follows its failed base.
    assert.equal(r.choice, "fast:b");
    assert.deepEqual(Object.keys(r.ms).sort(), ["fast", "fast:a", "fast:b", "slowish"]);
    assert.deepEqual(r.pruned, {
      hopeless: 400 * 64,
      "hopeless:a": 400 * 64,
      "slowish:a": 16 * 64,
      "broken:a": Infinity,
    });
    assert.equal(r.failures.length, 1);
    assert.match(r.failures[0], /^broken: over a device limit/);
    for (const c of ["hopeless:a", "slowish:a", "broken:a"]) assert.ok(!benched.includes(c), c);
  } finally {
    disableTuning();
  }
});
