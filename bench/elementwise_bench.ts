/**
 * Elementwise and data-movement throughput in GB/s (bytes read + written per second):
 * `deno bench` timings, and a table from a timed loop of many dispatches with one sync.
 */
import { getDevice, gpu } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { binary, unary } from "../src/kernels/elementwise.ts";
import { expand, permute, slice } from "../src/kernels/copy.ts";
import { cpuUsage } from "node:process";

await getDevice();
const N = 1 << 22; // 4M elements, 16 MB per tensor
const host = new Float32Array(N);
for (let i = 0; i < N; i++) host[i] = ((i * 7919) % 1000) / 1000 - 0.5;
const a = Tensor.fromArray(host, [1024, 4096]);
const b = Tensor.fromArray(host, [1024, 4096]);
const row = Tensor.fromArray(host.subarray(0, 4096), [4096]);
const act = a.view([64, 64, 32, 32]);
const channel = Tensor.fromArray(host.subarray(0, 64), [1, 64, 1, 1]);

/** name, bytes moved per call, the call (returns its output to dispose). */
const CASES: [string, number, () => Tensor][] = [
  ["add (same shape)", 12 * N, () => binary("add", a, b)],
  ["add (broadcast row)", 8 * N, () => binary("add", a, row)],
  ["mul (same shape)", 12 * N, () => binary("mul", a, b)],
  ["relu", 8 * N, () => unary("relu", a)],
  ["exp", 8 * N, () => unary("exp", a)],
  ["affine", 8 * N, () => unary("affine", a, 2, 1)],
  ["add (broadcast channel, [64,64,32,32] + [1,64,1,1])", 8 * N, () => binary("add", act, channel)],
  ["transpose copy", 8 * N, () => permute(a, [1, 0])],
  ["slice copy (columns 1024..3072)", 4 * N, () => slice(a, 1, 1024, 2048)],
  ["expand copy ([4096] → [1024, 4096])", 4 * N, () => expand(row, [1024, 4096])],
];

/**
 * GB/s over wall time and over the process's CPU time (user + system): on a loaded machine
 * the CPU-time figure is the steadier one (lavapipe runs the shaders on the CPU).
 */
async function gbps(bytes: number, fn: () => Tensor, reps = 20): Promise<[number, number]> {
  fn().dispose();
  await sync();
  const c0 = cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn().dispose();
  await sync();
  const wall = (performance.now() - t0) / 1000;
  const c = cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  return [(bytes * reps) / wall / 1e9, (bytes * reps) / cpu / 1e9];
}

const rows: string[] = [];
for (const [name, bytes, fn] of CASES) {
  const [wall, cpu] = await gbps(bytes, fn);
  rows.push(`| ${name} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} |`);
}
console.log(
  [
    `elementwise, 4M f32 elements, on ${gpu().adapter.description} (LP_NUM_THREADS=${
      Deno.env.get("LP_NUM_THREADS") ?? "default"
    })`,
    "| op | GB/s (wall) | GB/s (CPU time) |",
    "|---|---|---|",
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
