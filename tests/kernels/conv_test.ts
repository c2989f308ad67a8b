import assert from "node:assert/strict";
import { assertClose, type ConvCase, flat, golden, rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import {
  conv2d,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  convOutputSize,
} from "../../src/kernels/conv.ts";

const G = golden<{ conv: ConvCase[] }>("nn");

// Every golden geometry runs through F.conv2d (the `auto` algorithm) in
// tests/autograd/nn_ops_test.ts; here each one runs on the other kernel family.
Deno.test("conv kernels match PyTorch on every golden geometry with the other algorithm", async () => {
  for (const k of G.conv) {
    await scope(async () => {
      const ow = k.yShape[3];
      const algorithm = ow < 8 ? "direct" as const : "im2col" as const;
      const opts = { stride: k.stride, padding: k.padding, dilation: k.dilation, algorithm };
      const x = Tensor.fromArray(flat(k.x), k.xShape);
      const w = Tensor.fromArray(flat(k.w), k.wShape);
      const gy = Tensor.fromArray(flat(k.gy), k.yShape);
      const tol = { rtol: 1e-4, atol: 1e-4 };
      const tag = `${k.name} (${algorithm})`;
      assertClose(await conv2d(x, w, opts).toArray(), k.y, { ...tol, msg: `${tag} y` });
      const dx = conv2dInputGrad(gy, w, { ...opts, inputShape: k.xShape });
      assertClose(await dx.toArray(), k.dx, { ...tol, msg: `${tag} dx` });
      const dw = conv2dWeightGrad(x, gy, { ...opts, weightShape: k.wShape });
      assertClose(await dw.toArray(), k.dw, { ...tol, msg: `${tag} dw` });
    });
  }
});

Deno.test("conv wgrad is bit-identical across runs (batch-split reduction, no atomics)", async () => {
  await scope(async () => {
    // 4 output x 2 input channels: few invocations, so the batch is split into chunks.
    const x = Tensor.fromArray(rand(6 * 2 * 9 * 9, 1), [6, 2, 9, 9]);
    const dy = Tensor.fromArray(rand(6 * 4 * 9 * 9, 2), [6, 4, 9, 9]);
    const opts = { padding: 1, weightShape: [4, 2, 3, 3], algorithm: "direct" as const };
    const a = await conv2dWeightGrad(x, dy, opts).toArray();
    const b = await conv2dWeightGrad(x, dy, opts).toArray();
    assert.deepEqual(a, b);
    // Host reference in f64.
    const xs = await x.toArray();
    const ds = await dy.toArray();
    const ref = new Float64Array(4 * 2 * 9);
    for (let n = 0; n < 6; n++) {
      for (let o = 0; o < 4; o++) {
        for (let c = 0; c < 2; c++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              let s = 0;
              for (let r = 0; r < 9; r++) {
                for (let q = 0; q < 9; q++) {
                  const ih = r - 1 + ky;
                  const iw = q - 1 + kx;
                  if (ih < 0 || iw < 0 || ih >= 9 || iw >= 9) continue;
                  s += ds[((n * 4 + o) * 9 + r) * 9 + q] * xs[((n * 2 + c) * 9 + ih) * 9 + iw];
                }
              }
              ref[((o * 2 + c) * 3 + ky) * 3 + kx] += s;
            }
          }
        }
      }
    }
    assertClose(a, Array.from(ref), { rtol: 1e-5, atol: 1e-5 });
  });
});

Deno.test("conv geometry: PyTorch output sizes and shape errors", () => {
  assert.equal(convOutputSize(11, 7, 2, 3, 1), 6);
  assert.equal(convOutputSize(56, 1, 2, 0, 1), 28);
  assert.equal(convOutputSize(9, 3, 1, 2, 2), 9);
  const g = conv2dGeometry([2, 3, 11, 11], [4, 3, 7, 7], { stride: 2, padding: 3 });
  assert.deepEqual([g.oh, g.ow], [6, 6]);
  assert.throws(
    () => conv2dGeometry([2, 3, 8, 8], [4, 5, 3, 3]),
    /expected x \[N, C, H, W\] and weight \[O, C, kh, kw\], got \[2, 3, 8, 8\] and \[4, 5, 3, 3\]/,
  );
  assert.throws(() => conv2dGeometry([1, 1, 2, 2], [1, 1, 3, 3]), /output size/);
});

Deno.test("conv kernels wider than 7 taps fall back to im2col + matmul", async () => {
  await scope(async () => {
    const xd = rand(2 * 3 * 4 * 16, 21);
    const wd = rand(5 * 3 * 1 * 9, 22);
    const x = Tensor.fromArray(xd, [2, 3, 4, 16]);
    const w = Tensor.fromArray(wd, [5, 3, 1, 9]);
    const y = await conv2d(x, w, { padding: [0, 2] }).toArray();
    const ref: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let o = 0; o < 5; o++) {
        for (let r = 0; r < 4; r++) {
          for (let q = 0; q < 12; q++) {
            let s = 0;
            for (let c = 0; c < 3; c++) {
              for (let kx = 0; kx < 9; kx++) {
                const iw = q - 2 + kx;
                if (iw >= 0 && iw < 16) {
                  s += xd[((n * 3 + c) * 4 + r) * 16 + iw] * wd[(o * 3 + c) * 9 + kx];
                }
              }
            }
            ref.push(s);
          }
        }
      }
    }
    assertClose(y, ref, { rtol: 1e-5, atol: 1e-5 });
  });
});
