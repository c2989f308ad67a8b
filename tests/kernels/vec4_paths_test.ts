/**
 * The vec4 paths of the broadcast binary, strided-copy and serial-reduction kernels produce
 * the same bits as their scalar kernels (forced with `vec4: false`; the reduction's vec4 path,
 * off by default on CPU adapters, forced with `vec4: true`), on shapes chosen to take each
 * read mode (vec4, splat, gather) and on shapes that fall back.
 */
import assert from "node:assert/strict";
import { rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { binary, BINARY_OPS, type BinaryOp } from "../../src/kernels/elementwise.ts";
import { copyVec4Mode, permute, stridedCopy } from "../../src/kernels/copy.ts";
import { reduce } from "../../src/kernels/reduce.ts";
import {
  broadcastShapes,
  broadcastStrides,
  collapseDims,
  stridesOf,
  vec4Modes,
} from "../../src/kernels/shape.ts";

/** The bits of a tensor's data (f32 compared as u32, so NaNs and signed zeros count). */
async function bits(t: Tensor): Promise<Uint32Array> {
  const data = await t.toArray();
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** Collapsed read modes of `binary(a, b)` (what `binary` decides). */
function binaryModes(a: number[], b: number[]): string | null {
  const shape = broadcastShapes(a, b, "test");
  const c = collapseDims(shape, [
    stridesOf(shape),
    broadcastStrides(a, shape),
    broadcastStrides(b, shape),
  ]);
  return vec4Modes(c.shape, c.strides.slice(1))?.join("/") ?? null;
}

Deno.test("binary broadcast: the vec4 kernel gives the scalar kernel's bits for every op", async () => {
  const cases: [number[], number[], string | null][] = [
    [[2, 3, 8], [8], "vec4/vec4"],
    [[2, 8, 4, 4], [1, 8, 1, 1], "vec4/splat"],
    [[4, 1], [1, 8], "splat/vec4"],
    [[2, 6, 4], [6, 1], "vec4/splat"],
    // One collapsed dim (a tensor times a scalar, as gradient clipping runs): the kernel's
    // division-free index path.
    [[4, 2, 4], [1], "vec4/splat"],
    [[1], [3, 8], "splat/vec4"],
    [[3, 5], [5], null],
    [[2, 3, 1], [3, 6], null],
  ];
  let seed = 7;
  for (const [sa, sb, want] of cases) {
    assert.equal(binaryModes(sa, sb), want, `modes of ${sa} ⊕ ${sb}`);
    await scope(async () => {
      const ha = rand(sa.reduce((x, y) => x * y), seed++);
      // Integers and halves among b make pow's sign rule, eq and relu_grad's edges matter.
      const hb = rand(sb.reduce((x, y) => x * y), seed++).map((v, i) =>
        i % 3 === 0 ? Math.round(4 * v) / 2 : v
      );
      const a = Tensor.fromArray(ha, sa);
      const b = Tensor.fromArray(hb, sb);
      // Every op on the vec4 paths; the fallbacks only need to take the scalar kernel.
      const ops = want ? Object.keys(BINARY_OPS) as BinaryOp[] : ["sub" as const];
      for (const op of ops) {
        const fast = await bits(binary(op, a, b));
        const slow = await bits(binary(op, a, b, { vec4: false }));
        assert.deepEqual(fast, slow, `${op} ${sa} ⊕ ${sb}`);
      }
    });
  }
});

Deno.test("strided copy: vec4, splat and gather reads give the scalar kernel's bits", async () => {
  // [shape, src strides, dst strides, src offset, dst offset, dst size, expected mode]
  const cases: [number[], number[], number[], number, number, number, string | null][] = [
    [[3, 8], [8, 1], [8, 1], 0, 0, 24, "vec4"], // clone
    [[2, 8, 4], [32, 1, 8], [32, 4, 1], 0, 0, 64, "gather"], // permute [2, 4, 8] → [2, 8, 4]
    [[3, 8], [0, 1], [8, 1], 0, 0, 24, "vec4"], // expand [1, 8] → [3, 8]
    [[3, 8], [1, 0], [8, 1], 0, 0, 24, "splat"], // expand [3, 1] → [3, 8]
    [[4, 8], [12, 1], [8, 1], 4, 0, 32, "vec4"], // slice columns 4..12 of [4, 12]
    [[4, 8], [12, 1], [8, 1], 2, 0, 32, "gather"], // slice columns 2..10: unaligned source
    [[2, 4], [4, 1], [12, 1], 0, 4, 24, "vec4"], // writeSlice at column 4 of [2, 12]
    [[2, 4], [4, 1], [12, 1], 0, 2, 24, null], // writeSlice at column 2: unaligned
    [[3, 5], [5, 1], [5, 1], 0, 0, 15, null], // last dim not a multiple of 4
    // Rows longer than one invocation's run of 8 vec4s (a full run, then a partial one).
    [[3, 40], [40, 1], [40, 1], 0, 0, 120, "vec4"], // clone
    [[2, 3, 36], [108, 1, 3], [108, 36, 1], 0, 0, 216, "gather"], // permute [2, 36, 3]
    [[2, 40], [1, 0], [40, 1], 0, 0, 80, "splat"], // expand [2, 1] → [2, 40]
  ];
  let seed = 40;
  for (const [shape, ss, ds, so, dOff, dSize, want] of cases) {
    const c = collapseDims(shape, [ss, ds]);
    const mode = copyVec4Mode(c.shape, { strides: c.strides[0], offset: so }, {
      strides: c.strides[1],
      offset: dOff,
    });
    assert.equal(mode, want, `mode of ${shape} ${ss} → ${ds}`);
    for (const dtype of ["f32", "i32"] as const) {
      await scope(async () => {
        const n = 256;
        const host = rand(n, seed++).map((v) => (dtype === "i32" ? Math.round(1000 * v) : v));
        const src = Tensor.fromArray(host, [n], { dtype });
        const outs: Uint32Array[] = [];
        for (const vec4 of [true, false]) {
          const dst = Tensor.fromArray(new Array(dSize).fill(dtype === "i32" ? -7 : 0.5), [dSize], {
            dtype,
          });
          stridedCopy(src, dst, {
            shape,
            srcStrides: ss,
            dstStrides: ds,
            srcOffset: so,
            dstOffset: dOff,
            vec4,
          });
          outs.push(await bits(dst));
        }
        assert.deepEqual(outs[0], outs[1], `${dtype} ${shape} ${ss} → ${ds} (${mode})`);
      });
    }
  }
  // And against the host: the permute above, element by element.
  await scope(async () => {
    const h = rand(64, 3);
    const t = await permute(Tensor.fromArray(h, [2, 4, 8]), [0, 2, 1]).toArray();
    for (let z = 0; z < 2; z++) {
      for (let i = 0; i < 8; i++) {
        for (let j = 0; j < 4; j++) assert.equal(t[(z * 8 + i) * 4 + j], h[(z * 4 + j) * 8 + i]);
      }
    }
  });
});

Deno.test("serial reductions: the vec4 kernel gives the scalar kernel's bits (values and argmax)", async () => {
  const cases: [number[], number][] = [[[3, 7, 8], 1], [[5, 12], 0], [[2, 3, 4], 0], [[6, 4], 0]];
  let seed = 90;
  for (const [shape, axis] of cases) {
    await scope(async () => {
      // Coarse values: ties in max must resolve to the same (first) index on both paths.
      const h = rand(shape.reduce((x, y) => x * y), seed++).map((v) => Math.round(3 * v) / 3);
      const x = Tensor.fromArray(h, shape);
      for (const op of ["sum", "mean", "max"] as const) {
        const fast = reduce(op, x, { axis, vec4: true });
        const slow = reduce(op, x, { axis, vec4: false });
        assert.deepEqual(
          await bits(fast.values),
          await bits(slow.values),
          `${op} ${shape} ${axis}`,
        );
        if (op === "max") {
          assert.deepEqual(await fast.indices!.toArray(), await slow.indices!.toArray());
        }
      }
    });
  }
});
