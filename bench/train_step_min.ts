/**
 * The full training step (forward, class-weighted cross-entropy, backward, AdamW) in images per
 * CPU-second, written against APIs old trees have too (back to 249b73f, the issue-12 baseline):
 * copy it into another tree's bench/ (`git archive <commit> | tar -x -C /tmp/t`) and run both
 * trees alternately in fresh processes; on a shared machine only such same-clock pairs compare.
 *
 * `LP_NUM_THREADS=1 deno run --allow-read --allow-env bench/train_step_min.ts [imagenet|small] [steps]`
 *
 * @module
 */
import process from "node:process";
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { backward } from "../src/autograd/tape.ts";
import { crossEntropy } from "../src/autograd/loss.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { resnet18 } from "../src/nn/resnet.ts";
await getDevice();
const small = Deno.args[0] === "small";
const steps = Number(Deno.args[1] ?? 5);
const n = 32;
const size = 32;
const classes = 10;
const net = resnet18({ numClasses: classes, smallInput: small, seed: 0 });
const x = Tensor.fromArray(
  Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
  [n, 3, size, size],
);
const y = Tensor.fromArray(Int32Array.from({ length: n }, (_, i) => (i * 7) % classes), [n], {
  dtype: "i32",
});
const w = Tensor.fromArray(Float32Array.from({ length: classes }, (_, c) => 0.5 + c / classes), [
  classes,
]);
const opt = new AdamW(net.parameters(), { lr: 1e-3 });
const step = () =>
  scope(() => {
    backward(crossEntropy(net.forward(x), y, { weight: w }));
    opt.step();
    opt.zeroGrad();
  });
for (let i = 0; i < 2; i++) {
  step();
  await sync();
}
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < steps; i++) {
  step();
  await sync();
}
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1e6;
console.log(
  `${small ? "smallInput" : "imagenet"}: ${(n * steps / cpu).toFixed(1)} img/CPU-s, ${
    (n * steps / ((performance.now() - t0) / 1000)).toFixed(1)
  } img/s wall`,
);
