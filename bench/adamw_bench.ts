/**
 * Fused AdamW update of a 10.6M-element parameter set (ResNet-18 sized), amortised over
 * 10 steps per sync. Throughput = 10·10.6M·28 bytes / time (each element reads p, g, m, v
 * and writes p, m, v: 28 bytes).
 */
import { getDevice } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { AdamW } from "../src/optim/adamw.ts";

await getDevice();
const sizes = [2_359_296, 2_359_296, 2_359_296, 2_359_296, 1_179_648, 512 * 43];
const params = sizes.map((n) => {
  const p = Tensor.fromArray(new Float32Array(n).fill(0.5), [n], { requiresGrad: true });
  p.grad = Tensor.fromArray(new Float32Array(n).fill(0.01), [n]).keep();
  return p;
});
const opt = new AdamW(params, { lr: 1e-3, weightDecay: 1e-4 });
Deno.bench("adamw step, 10.6M params x10", async (b) => {
  b.start();
  for (let i = 0; i < 10; i++) opt.step();
  await sync();
  b.end();
});
