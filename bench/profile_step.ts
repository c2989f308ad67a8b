/**
 * Where a ResNet training step spends GPU time: per-kernel totals from timestamp queries.
 *
 * `deno run --allow-read --allow-env bench/profile_step.ts [resnet18|resnet50] [batch] [size] [small]`
 */
import { getDevice } from "../src/gpu/device.ts";
import { startProfile, stopProfile, sync } from "../src/gpu/dispatch.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { backward, zeroGrad } from "../src/autograd/tape.ts";
import * as ops from "../src/autograd/ops.ts";
import { resnet18, resnet50 } from "../src/nn/resnet.ts";

const [arch = "resnet18", batchArg = "32", sizeArg = "32", stem = "small"] = Deno.args;
const batch = Number(batchArg);
const size = Number(sizeArg);
const ctx = await getDevice();
const build = arch === "resnet50" ? resnet50 : resnet18;
const net = build({ numClasses: 10, smallInput: stem === "small", seed: 0 });
const x = Tensor.fromArray(
  Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
  [batch, 3, size, size],
);
const g = Tensor.fromArray(new Float32Array(batch * 10).fill(1 / batch), [batch, 10]);
const step = () =>
  scope(() => {
    zeroGrad(net.parameters());
    backward(ops.sum(ops.mul(net.forward(x), g)));
  });
step();
await sync();
let t0 = performance.now();
step();
await sync();
const wall = performance.now() - t0;
startProfile();
step();
const prof = await stopProfile();
t0 = performance.now();
const rows = [...prof].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((a, [, v]) => a + v.ms, 0);
console.log(`${ctx.adapter.description}: ${arch} ${stem} ${size}x${size} batch ${batch}`);
console.log(
  `step wall ${wall.toFixed(0)} ms (${(batch / wall * 1000).toFixed(1)} img/s), GPU sum ${
    total.toFixed(0)
  } ms`,
);
for (const [name, v] of rows.slice(0, 25)) {
  console.log(
    `${name.padEnd(40)} ${String(v.count).padStart(5)} ${v.ms.toFixed(1).padStart(9)} ms ${
      (100 * v.ms / total).toFixed(1).padStart(5)
    } %`,
  );
}
