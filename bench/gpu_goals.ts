/**
 * The GPU goals of issue 12, from `deno task bench:report`'s runs/bench/report.json and
 * `bench/torch_reference.py`'s runs/bench/torch.json, taken on the same GPU:
 * - matmul at 25 % or more of the adapter's fp32 peak (the best of our variants per size);
 * - ResNet-18 training at 0.5× or more of PyTorch fp32 with TF32 off.
 *
 * `deno run --allow-read --allow-write=runs bench/gpu_goals.ts [--peak-tflops N]
 * [--report runs/bench/report.json] [--torch runs/bench/torch.json]`
 *
 * `--peak-tflops` is the adapter's fp32 (non-tensor-core) peak from its data sheet (an H200
 * SXM: 67); without it the matmul rows compare with PyTorch's own fp32 products instead.
 * Prints a markdown table and writes it to runs/bench/goals.md.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The parts of report.json this reads. */
interface Report {
  adapter: { description: string };
  matmul: { n: number; gflops: Record<string, number> }[];
  train: { arch: string; size: number; batch: number; precision: string; imagesPerSec: number }[];
}

/** The parts of torch.json this reads. */
interface TorchReference {
  torch: string;
  device: string;
  matmul: { n: number; gflops: number }[];
  train: { arch: string; size: number; batch: number; precision: string; imagesPerSec: number }[];
}

/** One row of the goals table. */
export interface GoalRow {
  /** What is compared. */
  what: string;
  /** Our figure. */
  ours: string;
  /** The reference figure. */
  reference: string;
  /** ours / reference. */
  ratio: number;
  /** The ratio the goal asks for, or null for a row that only informs. */
  goal: number | null;
}

/** The goals table's rows from a report, PyTorch's figures and, when known, the fp32 peak. */
export function goalRows(
  report: Report,
  torch: TorchReference,
  peakTflops: number | null,
): GoalRow[] {
  const rows: GoalRow[] = [];
  for (const m of report.matmul) {
    const [variant, best] = Object.entries(m.gflops).sort((a, b) => b[1] - a[1])[0];
    const t = torch.matmul.find((r) => r.n === m.n);
    if (peakTflops !== null) {
      rows.push({
        what: `matmul ${m.n}³ fp32 (${variant}) vs fp32 peak`,
        ours: `${best.toFixed(0)} GFLOP/s`,
        reference: `${peakTflops} TFLOP/s`,
        ratio: best / (peakTflops * 1000),
        goal: 0.25,
      });
    }
    if (t) {
      rows.push({
        what: `matmul ${m.n}³ fp32 (${variant}) vs PyTorch, TF32 off`,
        ours: `${best.toFixed(0)} GFLOP/s`,
        reference: `${t.gflops.toFixed(0)} GFLOP/s`,
        ratio: best / t.gflops,
        goal: null,
      });
    }
  }
  for (const r of report.train) {
    const t = torch.train.find((x) =>
      x.arch === r.arch && x.size === r.size && x.batch === r.batch && x.precision === r.precision
    );
    if (!t) continue;
    rows.push({
      what: `${r.arch} ${r.size}px batch ${r.batch} training, ${r.precision}`,
      ours: `${r.imagesPerSec.toFixed(1)} img/s`,
      reference: `${t.imagesPerSec.toFixed(1)} img/s`,
      ratio: r.imagesPerSec / t.imagesPerSec,
      goal: r.arch === "resnet18" && r.precision === "32" ? 0.5 : null,
    });
  }
  return rows;
}

/** The rows as a markdown table, with a heading naming both sides. */
export function goalsMarkdown(rows: GoalRow[], adapter: string, torch: TorchReference): string {
  const lines = [
    `GPU goals: ours on ${adapter}; PyTorch ${torch.torch} on ${torch.device} (TF32 off).`,
    "",
    "| what | ours | reference | ratio | goal |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const goal = r.goal === null ? "" : `≥ ${r.goal} ${r.ratio >= r.goal ? "(met)" : "(not met)"}`;
    lines.push(`| ${r.what} | ${r.ours} | ${r.reference} | ${r.ratio.toFixed(3)} | ${goal} |`);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "peak-tflops": { type: "string" },
      report: { type: "string", default: "runs/bench/report.json" },
      torch: { type: "string", default: "runs/bench/torch.json" },
    },
  });
  const read = <T>(path: string): T => {
    try {
      return JSON.parse(Deno.readTextFileSync(path)) as T;
    } catch (e) {
      throw new Error(`gpu_goals: cannot read ${path}: ${(e as Error).message}`);
    }
  };
  const peak = values["peak-tflops"] === undefined ? null : Number(values["peak-tflops"]);
  if (peak !== null && !(peak > 0)) {
    throw new Error(
      `gpu_goals: --peak-tflops expects a positive number, got ${values["peak-tflops"]}`,
    );
  }
  const report = read<Report>(values.report!);
  const torch = read<TorchReference>(values.torch!);
  const md = goalsMarkdown(goalRows(report, torch, peak), report.adapter.description, torch);
  console.log(md);
  Deno.mkdirSync("runs/bench", { recursive: true });
  Deno.writeTextFileSync("runs/bench/goals.md.tmp", md);
  Deno.renameSync("runs/bench/goals.md.tmp", "runs/bench/goals.md");
}
