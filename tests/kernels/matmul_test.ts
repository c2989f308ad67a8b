/**
 * Both matmul kernels (register-blocked for CPUs, workgroup-tiled for GPUs) forced in turn:
 * PyTorch golden values, a host reference across tile edges, batching, broadcasting and
 * accumulation, and the error messages.
 */
import assert from "node:assert/strict";
import { assertClose, golden, rand } from "../helpers.ts";
import { memoryStats, scope, Tensor } from "../../src/gpu/tensor.ts";
import {
  GEMM_TILE_NAMES,
  type GemmTileName,
  matmul,
  matmulCandidates,
  type MatmulVariant,
  matmulVariant,
} from "../../src/kernels/matmul.ts";
import { setSubgroupBroadcasts, subgroupBroadcasts } from "../../src/kernels/broadcast.ts";
import { gpu } from "../../src/gpu/device.ts";
import { pipelineLog } from "../../src/gpu/pipeline_cache.ts";

interface T {
  shape: number[];
  data: number[];
}
const G = golden<{ matmul: { inputs: T[]; out: T; transA: boolean; transB: boolean }[] }>("core");
const VARIANTS: MatmulVariant[] = ["register", "tiled"];

/** Host reference: C[z] = op(A[z])·op(B[z]) with broadcast batch. */
function reference(
  a: Float32Array,
  b: Float32Array,
  d: { m: number; n: number; k: number; ba: number; bb: number; ta: boolean; tb: boolean },
): Float32Array {
  const { m, n, k, ba, bb, ta, tb } = d;
  const batch = Math.max(ba, bb);
  const c = new Float32Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const oa = ba > 1 ? z * m * k : 0;
    const ob = bb > 1 ? z * k * n : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += a[oa + (ta ? p * m + i : i * k + p)] * b[ob + (tb ? j * k + p : p * n + j)];
        }
        c[z * m * n + i * n + j] = s;
      }
    }
  }
  return c;
}

/**
 * Every transpose combination, broadcast batches and accumulation at sizes that cross tile
 * edges (and, for some, make the tiled kernel's rows whole vec4s), against the host reference.
 */
async function edgeCases(
  variant: MatmulVariant,
  tile?: GemmTileName,
  sizes = [[70, 37, 45], [33, 20, 8], [1, 130, 3], [64, 16, 64], [133, 12, 20]],
): Promise<void> {
  const batches = [[1, 1], [2, 2], [2, 1], [1, 3]];
  let seed = 1;
  for (let s = 0; s < sizes.length; s++) {
    const [m, n, k] = sizes[s];
    for (let combo = 0; combo < 4; combo++) {
      const ta = (combo & 1) === 1;
      const tb = (combo & 2) === 2;
      const [ba, bb] = batches[(s + combo) % batches.length];
      const accumulate = combo === s % 4;
      await scope(async () => {
        const ha = rand(ba * m * k, seed++);
        const hb = rand(bb * k * n, seed++);
        const a = Tensor.fromArray(ha, [...(ba > 1 ? [ba] : []), ...(ta ? [k, m] : [m, k])]);
        const b = Tensor.fromArray(hb, [...(bb > 1 ? [bb] : []), ...(tb ? [n, k] : [k, n])]);
        const want = reference(ha, hb, { m, n, k, ba, bb, ta, tb });
        const batched = ba > 1 || bb > 1;
        const shape = batched ? [Math.max(ba, bb), m, n] : [m, n];
        const o = { transA: ta, transB: tb, variant, tile };
        let out: Tensor;
        if (accumulate) {
          const init = rand(want.length, seed++);
          out = Tensor.fromArray(init, shape);
          const same = matmul(a, b, { ...o, accumulateInto: out });
          assert.equal(same, out);
          for (let i = 0; i < want.length; i++) want[i] += init[i];
        } else {
          out = matmul(a, b, o);
        }
        assert.deepEqual([...out.shape], shape);
        assertClose(await out.toArray(), want, {
          rtol: 1e-5,
          atol: 1e-5,
          msg:
            `${variant} ${tile ?? ""} m=${m} n=${n} k=${k} tA=${ta} tB=${tb} batch=${ba}/${bb} ` +
            `acc=${accumulate}`,
        });
      });
    }
  }
}

Deno.test("auto picks the register kernel on CPU adapters and the tiled one otherwise", () => {
  assert.equal(matmulVariant(), gpu().adapter.isCpu ? "register" : "tiled");
  assert.equal(matmulVariant("tiled"), "tiled");
});

for (const variant of VARIANTS) {
  Deno.test(`matmul ${variant}: PyTorch golden values (transposes, batches)`, async () => {
    for (const c of G.matmul) {
      await scope(async () => {
        const [a, b] = c.inputs.map((t) => Tensor.fromArray(t.data, t.shape));
        const out = matmul(a, b, { transA: c.transA, transB: c.transB, variant });
        assert.deepEqual([...out.shape], c.out.shape);
        assertClose(await out.toArray(), c.out.data, {
          msg: `${variant} ${JSON.stringify(c.inputs.map((t) => t.shape))} ${c.transA} ${c.transB}`,
        });
      });
    }
  });

  Deno.test(`matmul ${variant}: tile edges, transposes, broadcast batch, accumulate`, () =>
    edgeCases(variant));

  Deno.test(`matmul ${variant}: K = 0 gives zeros; padding temporaries are freed`, async () => {
    await scope(async () => {
      const z = matmul(Tensor.empty([3, 0]), Tensor.empty([0, 5]), { variant });
      assert.deepEqual([...(await z.toArray())], new Array(15).fill(0));
    });
    const before = memoryStats();
    const a = Tensor.fromArray(rand(7 * 9, 3), [7, 9]);
    const b = Tensor.fromArray(rand(9 * 3, 4), [9, 3]);
    const c = matmul(a, b, { variant });
    matmul(a, b, { variant, accumulateInto: c });
    assert.equal(memoryStats().liveTensors, before.liveTensors + 3);
    assert.equal(memoryStats().liveBuffers, before.liveBuffers + 3);
    const want = reference(await a.toArray() as Float32Array, await b.toArray() as Float32Array, {
      m: 7,
      n: 3,
      k: 9,
      ba: 1,
      bb: 1,
      ta: false,
      tb: false,
    });
    assertClose(await c.toArray(), want.map((v) => 2 * v), { atol: 1e-5 });
    for (const t of [a, b, c]) t.dispose();
  });
}

Deno.test("matmul register: Aᵀ is copied into place: bit-identical, no TRANS_A variant", async () => {
  // Every flag combination, padded (k, m not multiples of 4) and batched: op(A) given as the
  // transposed operand must give exactly the bits of the same product with A laid out by hand,
  // and all of them run on the TRANS_B = 0 / 1 pipelines only (one per B layout).
  const variantsOf = () =>
    new Set(
      pipelineLog().filter((r) => r.kernel.startsWith("matmul_register")).map((r) =>
        JSON.stringify(r.overrides)
      ),
    );
  const before = variantsOf();
  const [m, n, k, batch] = [37, 20, 11, 2];
  await scope(async () => {
    const ha = rand(batch * m * k, 91);
    const hb = rand(k * n, 92);
    const aT = Tensor.fromArray(ha, [batch, k, m]);
    const laid = new Float32Array(batch * m * k);
    for (let z = 0; z < batch; z++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < k; j++) laid[z * m * k + i * k + j] = ha[z * k * m + j * m + i];
      }
    }
    const a = Tensor.fromArray(laid, [batch, m, k]);
    for (const transB of [false, true]) {
      const b = Tensor.fromArray(hb, transB ? [n, k] : [k, n]);
      const got = await matmul(aT, b, { transA: true, transB, variant: "register" }).toArray();
      const want = await matmul(a, b, { transB, variant: "register" }).toArray();
      assert.deepEqual(got, want, `transB=${transB}`);
    }
  });
  const added = [...variantsOf()].filter((v) => !before.has(v));
  assert.ok(added.every((v) => !v.includes("TRANS_A")), `unexpected variants ${added}`);
  assert.ok(variantsOf().size <= before.size + 2, `variants added: ${added}`);
});

// The subgroup-broadcast form runs wherever subgroups have 8 lanes (lavapipe); elsewhere the
// plain kernel runs for the register variant and this comparison has nothing to compare.
Deno.test({
  name: "matmul register: the subgroup-broadcast form gives the plain kernel's bits",
  ignore: !subgroupBroadcasts(),
  fn: async () => {
    // Sizes crossing its 32-row and 64-column tiles (and the plain kernel's 128 columns), padded
    // k and n, every B layout, broadcast and full batches, accumulation.
    const cases: [number, number, number, boolean, number, number, boolean][] = [
      [70, 37, 45, false, 1, 1, false],
      [33, 72, 8, true, 2, 2, false],
      [1, 130, 3, false, 2, 1, true],
      [64, 136, 64, true, 1, 3, true],
      [133, 12, 20, true, 1, 1, false],
    ];
    let seed = 300;
    for (const [m, n, k, tb, ba, bb, acc] of cases) {
      await scope(async () => {
        const a = Tensor.fromArray(rand(ba * m * k, seed++), [...(ba > 1 ? [ba] : []), m, k]);
        const b = Tensor.fromArray(
          rand(bb * k * n, seed++),
          [...(bb > 1 ? [bb] : []), ...(tb ? [n, k] : [k, n])],
        );
        const init = rand(Math.max(ba, bb) * m * n, seed++);
        const shape = ba > 1 || bb > 1 ? [Math.max(ba, bb), m, n] : [m, n];
        const run = async (broadcast: boolean): Promise<Float32Array> => {
          const was = setSubgroupBroadcasts(broadcast);
          try {
            const into = acc ? Tensor.fromArray(init, shape) : undefined;
            const o = { transB: tb, variant: "register" as const, accumulateInto: into };
            return await matmul(a, b, o).toArray() as Float32Array;
          } finally {
            setSubgroupBroadcasts(was);
          }
        };
        const sg = await run(true);
        const plain = await run(false);
        assert.deepEqual(sg, plain, `m=${m} n=${n} k=${k} tB=${tb} batch=${ba}/${bb} acc=${acc}`);
      });
    }
    // Both kernels ran (each pipeline is logged once, when it is created).
    const kernels = new Set(pipelineLog().map((r) => r.kernel));
    assert.ok(
      kernels.has("matmul_register_sg") && kernels.has("matmul_register"),
      `${[...kernels]}`,
    );
  },
});

// Each tile on two sizes (fewer pipelines to compile in CI): scalar loads across every edge,
// and vec4 loads (k and n multiples of 4) with 133 rows crossing even the 128-row tiles.
for (const tile of GEMM_TILE_NAMES) {
  Deno.test(`matmul tiled ${tile}: tile edges, transposes, broadcast batch, accumulate`, () =>
    edgeCases("tiled", tile, [[70, 37, 45], [133, 12, 20]]));
}

Deno.test("matmul candidates: the register kernel and every tile of the tiled one", () => {
  const c = matmulCandidates();
  assert.deepEqual(c[0], { variant: "register" });
  assert.deepEqual(c.slice(1).map((x) => x.tile), [...GEMM_TILE_NAMES]);
  assert.throws(
    () =>
      matmul(Tensor.empty([2, 2]), Tensor.empty([2, 2]), {
        variant: "tiled",
        tile: "9x9" as GemmTileName,
      }),
    /unknown tile "9x9"/,
  );
});

Deno.test("matmul: one-line errors for mismatched shapes and dtypes", () => {
  scope(() => {
    const a = Tensor.empty([2, 3]);
    const b = Tensor.empty([4, 5]);
    assert.throws(() => matmul(a, b), /inner dims differ: \[2, 3\] · \[4, 5\] \(3 vs 4\)/);
    assert.throws(
      () => matmul(Tensor.empty([2, 2, 3]), Tensor.empty([3, 3, 4])),
      /batch dims differ/,
    );
    assert.throws(() => matmul(Tensor.empty([3]), b), /expected 2-D or 3-D tensors/);
    assert.throws(() => matmul(Tensor.empty([2, 3], "i32"), b), /expected f32 tensors/);
    assert.throws(
      () => matmul(a, Tensor.empty([3, 4]), { accumulateInto: Tensor.empty([2, 5]) }),
      /accumulateInto has shape \[2, 5\] f32, expected \[2, 4\] f32/,
    );
  });
});
