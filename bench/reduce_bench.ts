/**
 * Reduction throughput in GB/s of input read, for the serial kernel (many outputs) and the
 * workgroup-tree kernel (few long rows): `deno bench` timings and a timed-loop table.
 */
import { getDevice, gpu } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { reduce, type ReduceOp, sumAll } from "../src/kernels/reduce.ts";
import { cpuUsage } from "node:process";

await getDevice();
const N = 1 << 22;
const host = new Float32Array(N);
for (let i = 0; i < N; i++) host[i] = ((i * 7919) % 1000) / 1000 - 0.5;
const x = Tensor.fromArray(host, [N]);

/** name, op, shape, axis: 4M elements each. */
const CASES: [string, ReduceOp | "sumAll", number[], number][] = [
  ["sum rows [4096, 1024] axis 1 (serial)", "sum", [4096, 1024], 1],
  ["sum cols [1024, 4096] axis 0 (serial)", "sum", [1024, 4096], 0],
  ["max rows [4096, 1024] axis 1 (serial)", "max", [4096, 1024], 1],
  ["max cols [1024, 4096] axis 0 (serial)", "max", [1024, 4096], 0],
  ["sum batch [64, 64, 1024] axis 0 (serial)", "sum", [64, 64, 1024], 0],
  ["sum rows [16, 262144] axis 1 (tree)", "sum", [16, 262144], 1],
  ["max rows [16, 262144] axis 1 (tree)", "max", [16, 262144], 1],
  ["sumAll [4194304] (tree, one workgroup)", "sumAll", [N], 0],
];

function run(op: ReduceOp | "sumAll", shape: number[], axis: number): void {
  const v = x.view(shape);
  if (op === "sumAll") sumAll(v).dispose();
  else {
    const r = reduce(op, v, { axis });
    r.values.dispose();
    r.indices?.dispose();
  }
  v.dispose();
}

/** GB/s read over wall time and over the process's CPU time (steadier on a loaded machine). */
async function gbps(
  op: ReduceOp | "sumAll",
  shape: number[],
  axis: number,
): Promise<[number, number]> {
  run(op, shape, axis);
  await sync();
  const reps = 10;
  const c0 = cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run(op, shape, axis);
  await sync();
  const wall = (performance.now() - t0) / 1000;
  const c = cpuUsage(c0);
  return [(4 * N * reps) / wall / 1e9, (4 * N * reps) / ((c.user + c.system) / 1e6) / 1e9];
}

const rows: string[] = [];
for (const [name, op, shape, axis] of CASES) {
  const [wall, cpu] = await gbps(op, shape, axis);
  rows.push(`| ${name} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} |`);
}
console.log(
  [
    `reductions over 4M f32 on ${gpu().adapter.description} (LP_NUM_THREADS=${
      Deno.env.get("LP_NUM_THREADS") ?? "default"
    })`,
    "| reduction | GB/s read (wall) | GB/s read (CPU time) |",
    "|---|---|---|",
    ...rows,
  ].join("\n"),
);

for (const [name, op, shape, axis] of CASES) {
  Deno.bench({
    name,
    group: "reduce 4M",
    n: 10,
    warmup: 1,
    async fn(): Promise<void> {
      run(op, shape, axis);
      await sync();
    },
  });
}
