/**
 * Matmul throughput: `deno bench` timings per size and kernel, and a GFLOP/s table from a
 * timed loop of many dispatches with one sync at the end (printed when the module loads).
 * Lavapipe timings drift by ±50 %: compare kernels in fresh processes, alternating.
 */
import { getDevice, gpu } from "../src/gpu/device.ts";
import { sync } from "../src/gpu/dispatch.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { matmul, type MatmulCandidate, matmulCandidates } from "../src/kernels/matmul.ts";

await getDevice();
const SIZES = [256, 512, 1024, 2048];
const cpu = gpu().adapter.isCpu;
/**
 * Every kernel and tile (`matmulCandidates`); the tiled kernel is far too slow on CPU adapters
 * beyond 512 to be worth timing there.
 */
const variants = (n: number): MatmulCandidate[] =>
  matmulCandidates().filter((c) => !cpu || n <= 512 || c.variant === "register");
const label = (c: MatmulCandidate): string => c.tile ? `${c.variant} ${c.tile}` : c.variant;

function operands(n: number): [Tensor, Tensor] {
  const data = new Float32Array(n * n);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  return [Tensor.fromArray(data, [n, n]), Tensor.fromArray(data, [n, n])];
}

/** GFLOP/s of `reps` back-to-back n³ matmuls, timed from first dispatch to the final sync. */
async function gflops(n: number, c: MatmulCandidate, a: Tensor, b: Tensor): Promise<number> {
  const flop = 2 * n ** 3;
  const reps = Math.max(1, Math.min(200, Math.round(4e9 / flop)));
  matmul(a, b, c).dispose(); // compile the pipeline
  await sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) matmul(a, b, c).dispose();
  await sync();
  return (flop * reps) / ((performance.now() - t0) / 1000) / 1e9;
}

const rows: string[] = [];
for (const n of SIZES) {
  const [a, b] = operands(n);
  for (const v of variants(n)) {
    rows.push(`| ${n} | ${label(v)} | ${(await gflops(n, v, a, b)).toFixed(2)} |`);
  }
  a.dispose();
  b.dispose();
}
console.log(
  [
    `matmul on ${gpu().adapter.description} (LP_NUM_THREADS=${
      Deno.env.get("LP_NUM_THREADS") ?? "default"
    })`,
    "| n | kernel | GFLOP/s |",
    "|---|---|---|",
    ...rows,
  ].join("\n"),
);

/** Operands per size, created on first use and kept (module scope) until the process ends. */
const cache = new Map<number, [Tensor, Tensor]>();
for (const n of SIZES) {
  for (const c of variants(n)) {
    Deno.bench({
      name: `matmul ${n}x${n}x${n} ${label(c)}`,
      group: `matmul ${n}`,
      n: n >= 1024 ? 3 : 10,
      warmup: 1,
      async fn(): Promise<void> {
        let ops = cache.get(n);
        if (!ops) cache.set(n, ops = operands(n));
        matmul(ops[0], ops[1], c).dispose();
        await sync();
      },
    });
  }
}
