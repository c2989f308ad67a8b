/**
 * One ResNet-18 training step (forward + backward, `smallInput`, 32×32, batch 32) in
 * images/s, the end-to-end number. The step runs in a `scope()` so memory stays
 * flat; the time includes the final sync (one per step, as a trainer does it).
 *
 * `LP_NUM_THREADS=1 deno bench --allow-read --allow-env bench/resnet_bench.ts`
 */
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { backward, zeroGrad } from "../src/autograd/tape.ts";
import * as ops from "../src/autograd/ops.ts";
import { resnet18 } from "../src/nn/resnet.ts";

const ctx = await getDevice();
const BATCH = 32;
const net = resnet18({ numClasses: 10, smallInput: true, seed: 0 });
const x = Tensor.fromArray(
  Float32Array.from({ length: BATCH * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)),
  [BATCH, 3, 32, 32],
);
const g = Tensor.fromArray(
  Float32Array.from({ length: BATCH * 10 }, (_, i) => Math.cos(i) / BATCH),
  [BATCH, 10],
);

function step(): void {
  scope(() => {
    zeroGrad(net.parameters());
    backward(ops.sum(ops.mul(net.forward(x), g)));
  });
}

step();
await sync();

Deno.bench({
  name: `resnet18 smallInput train step, 32x32, batch ${BATCH} (${ctx.adapter.description})`,
  n: 3,
  warmup: 1,
  async fn(b) {
    b.start();
    step();
    await sync();
    b.end();
  },
});
