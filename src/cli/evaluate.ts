/**
 * `deno task evaluate <checkpoint> [key=value ...]`: top-1, top-5, per-class accuracy and the
 * confusion matrix of a trained checkpoint on its test (or validation) split.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getDevice } from "../gpu/device.ts";
import { type EvalResult, evaluate } from "../train/trainer.ts";
import { Progress, stderrSink } from "../train/progress.ts";
import { buildData, loadTrained, runMain } from "./common.ts";

const HELP = `Usage: deno task evaluate <checkpoint> [key=value ...] [options]

Evaluates a checkpoint on the test split of the data it was trained on (or another one:
override data.* keys, e.g. data.root=/data/other). <checkpoint> is a checkpoint .json, a
checkpoints folder or a run folder (best.json is preferred, then last.json).

Prints top-1, top-k (k = min(5, classes)) and per-class accuracy, and the confusion matrix
(rows: true class, columns: predicted).

Options:
  --split test|val   which split (default test)
  --format text|json output format on stdout (default text; progress goes to stderr)
  --limit N          evaluate at most N batches
  -h, --help         show this help`;

/** Formats the results as text: the accuracies, a per-class table and the confusion matrix. */
export function formatEvaluation(
  r: EvalResult,
  options: { classNames: readonly string[]; prefix: "test" | "val" },
): string {
  const { classNames, prefix } = options;
  const m = r.metrics;
  const lines = [
    `images: ${r.images}`,
    `${prefix}/loss: ${m[`${prefix}/loss`]?.toFixed(4)}`,
    `${prefix}/acc_top1: ${m[`${prefix}/acc_top1`]?.toFixed(4)}`,
    `${prefix}/acc_top5: ${m[`${prefix}/acc_top5`]?.toFixed(4)}`,
    "",
    "per-class accuracy:",
  ];
  const w = Math.max(5, ...classNames.map((n) => n.length));
  classNames.forEach((n, i) => {
    const support = r.confusion ? r.confusion[i].reduce((a, b) => a + b, 0) : NaN;
    lines.push(
      `  ${n.padEnd(w)}  ${(m[`${prefix}/acc_class_${i}`] ?? NaN).toFixed(4)}  (${support} images)`,
    );
  });
  if (r.confusion) {
    lines.push("", "confusion matrix (rows: true, columns: predicted):");
    const cw = Math.max(4, ...r.confusion.flat().map((v) => String(v).length));
    // Columns are numbered to stay narrow; each row label carries its number.
    const labels = classNames.map((n, i) => `${i} ${n}`);
    const lw = Math.max(...labels.map((l) => l.length));
    lines.push(" ".repeat(lw + 2) + classNames.map((_, j) => String(j).padStart(cw + 1)).join(""));
    r.confusion.forEach((row, i) => {
      lines.push(`  ${labels[i].padEnd(lw)}` + row.map((v) => String(v).padStart(cw + 1)).join(""));
    });
  }
  return lines.join("\n");
}

/** Runs the command with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: "boolean", short: "h" },
      split: { type: "string", default: "test" },
      format: { type: "string", default: "text" },
      limit: { type: "string" },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!positionals.length) {
    console.error("error: expected a checkpoint, got nothing\n\n" + HELP);
    return 2;
  }
  const split = values.split;
  if (split !== "test" && split !== "val") {
    console.error(`error: --split: expected "test" or "val", got "${split}"`);
    return 2;
  }
  if (values.format !== "text" && values.format !== "json") {
    console.error(`error: --format: expected "text" or "json", got "${values.format}"`);
    return 2;
  }
  const limit = values.limit === undefined ? null : Number(values.limit);
  if (limit !== null && !(Number.isInteger(limit) && limit >= 1)) {
    console.error(`error: --limit: expected a positive integer, got "${values.limit}"`);
    return 2;
  }
  await getDevice();
  const [ckpt, ...overrides] = positionals;
  const t = await loadTrained(ckpt, overrides);
  const data = buildData(t.config);
  try {
    await data.setup();
    if (data.classNames.join("\n") !== t.classNames.join("\n")) {
      throw new Error(
        `the data's classes (${data.classNames.join(", ")}) differ from the checkpoint's (${
          t.classNames.join(", ")
        })`,
      );
    }
    const loader = split === "test" ? data.testLoader() : data.valLoader();
    const r = await evaluate(t.model, loader, {
      phase: split,
      limit,
      progress: new Progress("auto", stderrSink()),
    });
    if (values.format === "json") {
      console.log(JSON.stringify(
        {
          checkpoint: t.path,
          epoch: t.epoch,
          split,
          images: r.images,
          classNames: t.classNames,
          metrics: r.metrics,
          confusion: r.confusion,
        },
        null,
        1,
      ));
    } else {
      console.log(`checkpoint: ${t.path} (epoch ${t.epoch})`);
      console.log(formatEvaluation(r, { classNames: t.classNames, prefix: split }));
    }
  } finally {
    t.model.dispose();
    data.dispose();
  }
  return 0;
}

if (import.meta.main) await runMain(() => main(Deno.args));
