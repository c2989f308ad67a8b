/**
 * Fused softmax cross-entropy (forward + backward) and the top-k metric update, amortised
 * over 50 dispatches per readback. Throughput = 50·N / time (rows/s).
 */
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { crossEntropyBackward, crossEntropyForward } from "../src/kernels/cross_entropy.ts";
import { MulticlassAccuracy } from "../src/metrics/accuracy.ts";

await getDevice();
const REPS = 50;

for (const [n, c] of [[128, 43], [256, 1000]]) {
  const z = Tensor.fromArray(Float32Array.from({ length: n * c }, (_, i) => Math.sin(i)), [n, c]);
  const y = Tensor.fromArray(Int32Array.from({ length: n }, (_, i) => i % c), [n]);
  const w = Tensor.fromArray(new Float32Array(c).fill(1), [c]);
  const one = Tensor.fromArray([1], []);
  const opts = { weight: w, labelSmoothing: 0.1 };
  Deno.bench(`cross_entropy fwd+bwd [${n}, ${c}] x${REPS}`, async (b) => {
    b.start();
    scope(() => {
      for (let i = 0; i < REPS; i++) {
        const f = crossEntropyForward(z, y, opts);
        crossEntropyBackward(one, z, y, f, opts);
      }
    });
    await sync();
    b.end();
  });
  const acc = new MulticlassAccuracy({ numClasses: c, topK: 5 });
  Deno.bench(`topk_update k=5 [${n}, ${c}] x${REPS}`, async (b) => {
    b.start();
    for (let i = 0; i < REPS; i++) acc.update(z, y);
    await sync();
    b.end();
  });
}
