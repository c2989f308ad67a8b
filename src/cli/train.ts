/**
 * `deno task train <config.yaml> [key=value ...]`: trains a classifier as the config says,
 * tests the best checkpoint and writes the run folder (metrics, TensorBoard events,
 * checkpoints, report.html).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getDevice } from "../gpu/device.ts";
import { loadConfig } from "../train/config.ts";
import { Trainer } from "../train/trainer.ts";
import { formatDuration } from "../train/progress.ts";
import { buildData, buildModel, modelNames, runMain } from "./common.ts";

const HELP = `Usage: deno task train <config.yaml> [key=value ...] [--run-dir DIR]

Trains a classifier as the YAML config says, tests the best checkpoint, and writes the run
folder (logging.rootDir/logging.name/version_N): config.yaml, metrics.csv, metrics.jsonl,
TensorBoard events, checkpoints/{best,last}.json (+ .safetensors), report.html.

Overrides use dot paths and YAML values, type-checked like the file:
  trainer.maxEpochs=3  data.root=/data/signs  model.name=resnet34  data.augment.hflip=0
  resume=runs/resnet18/version_0/checkpoints/last.json   (continue an interrupted run)

Options:
  --run-dir DIR   write the run here instead of the next version_N folder
  -h, --help      show this help

Ctrl-C (or SIGTERM) finishes the current step, saves checkpoints/last.json and prints the
command that resumes the run; a second Ctrl-C exits at once.

Exit codes: 0 ok, 1 error, 2 invalid config, 3 loss became NaN/inf, 130 interrupted.`;

/** Quotes an argument for a POSIX shell when it needs it. */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

/** Runs the command with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: "boolean", short: "h" }, "run-dir": { type: "string" } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!positionals.length) {
    console.error("error: expected a config file, got nothing\n\n" + HELP);
    return 2;
  }
  const [file, ...overrides] = positionals;
  const cfg = loadConfig(file, overrides, { models: modelNames() });
  const t0 = performance.now();
  const gpu = await getDevice();
  const data = buildData(cfg);
  const trainer = new Trainer(cfg, {
    runDir: values["run-dir"],
    handleSignals: true,
    // The folder is created only once setup succeeded (a failed start leaves none).
    onRunDir: (dir) => console.log(`run folder: ${dir}`),
  });
  console.log(`adapter: ${gpu.adapter.description}`);
  try {
    await data.setup();
    const model = buildModel(cfg, data.numClasses);
    try {
      const s = data.sizes;
      console.log(
        `${cfg.model.name}: ${
          model.numParameters().toLocaleString("en")
        } parameters, ${data.numClasses} classes; ` +
          `${s.train} train / ${s.val} val / ${s.test} test images`,
      );
      let fit;
      try {
        fit = await trainer.fit(model, data);
      } catch (e) {
        // Leave the curves of a failed run (e.g. a NaN loss) behind for diagnosis.
        if (cfg.logging.report && trainer.files?.records.length) {
          trainer.writeReport(null, {
            label: "none (the run failed)",
            facts: {
              model: cfg.model.name,
              "failed with": e instanceof Error ? e.message : String(e),
            },
          });
        }
        throw e;
      }
      if (fit.stopReason === "interrupted") {
        const again = [file, ...overrides.filter((o) => !o.startsWith("resume="))];
        if (values["run-dir"]) again.push("--run-dir", values["run-dir"]);
        console.log(
          `interrupted; resume with:\n  deno task train ${
            [...again, `resume=${fit.lastPath}`].map(shellQuote).join(" ")
          }`,
        );
        return 130;
      }
      let test = null;
      if (cfg.trainer.test) test = await trainer.test(model, data, { ckptPath: "best" });
      const wall = (performance.now() - t0) / 1000;
      const facts: Record<string, string | number> = {
        model: cfg.model.name,
        "epochs run": fit.epochs,
        "global steps": fit.globalStep,
        "stopped by": fit.stopReason,
        [`best ${cfg.checkpoint.monitor}`]: fit.bestScore ?? "n/a",
        "best checkpoint": fit.bestPath ?? "none",
        "train images/s": Number(fit.imagesPerSec.toFixed(1)),
        "wall time": formatDuration(wall),
      };
      for (const [k, v] of Object.entries(test?.metrics ?? {})) {
        if (!/acc_class_/.test(k)) facts[k] = v;
      }
      if (cfg.logging.report) {
        const path = trainer.writeReport(test, {
          label: test?.checkpoint ? "test (best checkpoint)" : "test (final weights)",
          facts,
        });
        console.log(`report: ${path}`);
      }
      console.log(
        `done in ${formatDuration(wall)}: ${fit.epochs} epochs, ${
          fit.imagesPerSec.toFixed(1)
        } train img/s, best ${cfg.checkpoint.monitor} ${fit.bestScore ?? "n/a"}` +
          (test ? `, test/acc_top1 ${test.metrics["test/acc_top1"]?.toFixed(4)}` : ""),
      );
    } finally {
      model.dispose();
    }
  } finally {
    trainer.close();
    data.dispose();
  }
  return 0;
}

if (import.meta.main) await runMain(() => main(Deno.args));
