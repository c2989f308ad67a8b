/**
 * Elementwise and data-movement throughput in GB/s (bytes read + written per second):
 * `deno bench` timings, and a table from a timed loop of many dispatches with one sync.
 */
import { getDevice, gpu } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { binary, unary } from "../src/kernels/elementwise.ts";
import { permute } from "../src/kernels/copy.ts";

await getDevice();
const N = 1 << 22; // 4M elements, 16 MB per tensor
const host = new Float32Array(N);
for (let i = 0; i < N; i++) host[i] = ((i * 7919) % 1000) / 1000 - 0.5;
const a = Tensor.fromArray(host, [1024, 4096]);
const b = Tensor.fromArray(host, [1024, 4096]);
const row = Tensor.fromArray(host.subarray(0, 4096), [4096]);

/** name, bytes moved per call, the call (returns its output to dispose). */
const CASES: [string, number, () => Tensor][] = [
  ["add (same shape)", 12 * N, () => binary("add", a, b)],
  ["add (broadcast row)", 8 * N, () => binary("add", a, row)],
  ["mul (same shape)", 12 * N, () => binary("mul", a, b)],
  ["relu", 8 * N, () => unary("relu", a)],
  ["exp", 8 * N, () => unary("exp", a)],
  ["affine", 8 * N, () => unary("affine", a, 2, 1)],
  ["transpose copy", 8 * N, () => permute(a, [1, 0])],
];

async function gbps(bytes: number, fn: () => Tensor, reps = 20): Promise<number> {
  fn().dispose();
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn().dispose();
  await sync();
  return (bytes * reps) / ((performance.now() - t0) / 1000) / 1e9;
}

const rows: string[] = [];
for (const [name, bytes, fn] of CASES) {
  rows.push(`| ${name} | ${(await gbps(bytes, fn)).toFixed(2)} |`);
}
console.log(
  [
    `elementwise, 4M f32 elements, on ${gpu().adapter.description} (LP_NUM_THREADS=${
      Deno.env.get("LP_NUM_THREADS") ?? "default"
    })`,
    "| op | GB/s |",
    "|---|---|",
    ...rows,
  ].join("\n"),
);

for (const [name, , fn] of CASES) {
  Deno.bench({
    name,
    group: "elementwise 4M",
    n: 10,
    warmup: 1,
    async fn(): Promise<void> {
      fn().dispose();
      await sync();
    },
  });
}
