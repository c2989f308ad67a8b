/**
 * The training worker of the web app: the same `Trainer`, models and data module as the CLI,
 * on the page's WebGPU device, writing its run folder into the in-memory file system of the
 * browser host seam (`src/platform/host_browser.ts`, which the web build puts in place of
 * `host.ts`). It posts progress, metric records and results to the page (`protocol.ts`).
 *
 * @module
 */

import { getDevice } from "../src/gpu/device.ts";
import { scope, Tensor } from "../src/gpu/tensor.ts";
import { noGrad } from "../src/autograd/tape.ts";
import { ConfigError, resolveConfig, type TrainConfig } from "../src/train/config.ts";
import { type FitResult, NonFiniteLossError, Trainer } from "../src/train/trainer.ts";
import { buildData, buildModel, modelNames } from "../src/train/build.ts";
import { formatDuration } from "../src/train/progress.ts";
import { predictClasses } from "../src/train/predictions.ts";
import { topK } from "../src/metrics/top_k.ts";
import { decodeImage } from "../src/data/image.ts";
import { channelNorm, evalTransform } from "../src/data/transforms.ts";
import { exportOnnx } from "../src/export/onnx.ts";
import { resnetFacts } from "../src/export/common.ts";
import type { ClassificationDataModule } from "../src/data/data_module.ts";
import type { BaseClassificationModel } from "../src/models/base_classification_model.ts";
import { host, listFilesUnder, mountFile, output } from "../src/platform/host_browser.ts";
import type { FromWorker, ResultFile, ToWorker } from "./protocol.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(m: FromWorker, transfer?: Transferable[]): void;
}
const self = globalThis as unknown as WorkerScope;
const post = (m: FromWorker): void => self.postMessage(m);

output.stdout = (text) => post({ type: "log", text });
output.stderr = (text) => post({ type: "log", text });

/** The run in progress or finished (kept for Resume and the predict panel). */
let current: {
  cfg: TrainConfig;
  trainer: Trainer | null;
  model: BaseClassificationModel | null;
  data: ClassificationDataModule | null;
  lastPath: string | null;
  classNames: string[];
} | null = null;

const RUN_ROOT = "/runs";

/**
 * Stop was pressed: the trainer is asked at its next step (a message may arrive while it
 * sets up, before `fit` starts listening).
 */
let stopWanted = false;

/** A file of the in-memory file system as a Blob (the one copy it takes to hand it over). */
function blobOf(path: string): Blob {
  return new Blob([host.readFileSync(path) as Uint8Array<ArrayBuffer>]);
}

/** The run folder's checkpoint (of `jsonPath`) and report, as files to download. */
function resultFiles(runDir: string | null, jsonPath: string | null): ResultFile[] {
  const out: ResultFile[] = [];
  if (jsonPath) {
    const dir = jsonPath.slice(0, jsonPath.lastIndexOf("/"));
    const state = JSON.parse(host.readTextFileSync(jsonPath));
    for (const name of [jsonPath.slice(dir.length + 1), state.weights, state.optimizerTensors]) {
      if (name) out.push({ name, blob: blobOf(`${dir}/${name}`), kind: "checkpoint" });
    }
  }
  if (runDir) {
    for (const p of listFilesUnder(runDir)) {
      const name = p.slice(runDir.length + 1);
      if (name === "report.html") out.push({ name, blob: blobOf(p), kind: "report" });
      if (name === "metrics.csv" || name === "config.yaml") {
        out.push({ name, blob: blobOf(p), kind: "log" });
      }
    }
  }
  return out;
}

function disposeRun(): void {
  current?.trainer?.close();
  current?.model?.dispose();
  current?.data?.dispose();
  if (current) {
    current.trainer = null;
    current.model = null;
    current.data = null;
  }
}

/** Settings with the web's fixed parts: data decoded inline, run folder in memory. */
function webConfig(yaml: string, overrides: string[], resumeFrom: string | null): TrainConfig {
  const fixed = [
    // The worker decodes inline: nested data workers would need a second bundle.
    "data.numWorkers=0",
    `logging.rootDir=${RUN_ROOT}`,
    ...(resumeFrom ? [`resume=${resumeFrom}`] : []),
  ];
  return resolveConfig(yaml, "settings", {
    overrides: [...overrides, ...fixed],
    models: modelNames(),
  });
}

async function run(cfg: TrainConfig): Promise<void> {
  stopWanted = false;
  const gpu = await getDevice();
  const a = gpu.adapter;
  // Chrome leaves the description empty for SwiftShader and names it in the architecture.
  const adapter = a.description || [a.vendor, a.architecture].filter(Boolean).join(" ") ||
    "WebGPU adapter";
  post({ type: "adapter", description: adapter });
  const t0 = performance.now();
  const data = buildData(cfg, { warn: (m) => post({ type: "log", text: m }) });
  let sent = 0;
  let reportedCorrupt = 0;
  const trainer = new Trainer(cfg, {
    out: {
      isTerminal: false,
      write: (text) => post({ type: "log", text }),
      state: (state) => {
        if (stopWanted) trainer.requestStop();
        post({ type: "progress", state });
        const recs = trainer.files?.records ?? [];
        if (recs.length > sent) {
          post({ type: "records", records: recs.slice(sent) });
          sent = recs.length;
        }
        if (data.corrupt.length > reportedCorrupt) {
          reportedCorrupt = data.corrupt.length;
          post({ type: "corrupt", list: data.corrupt });
        }
      },
    },
  });
  current = { ...(current ?? { lastPath: null }), cfg, trainer, model: null, data, classNames: [] };
  await data.setup();
  const model = buildModel(cfg, data.numClasses);
  current.model = model;
  current.classNames = data.classNames;
  post({
    type: "log",
    text:
      `${cfg.model.name}: ${
        model.numParameters().toLocaleString("en")
      } parameters, ${data.numClasses} classes; ` +
      `${data.sizes.train} train / ${data.sizes.val} val / ${data.sizes.test} test images`,
  });
  const flushRecords = () => {
    const recs = trainer.files?.records ?? [];
    if (recs.length > sent) post({ type: "records", records: recs.slice(sent) });
    sent = recs.length;
    if (data.corrupt.length) post({ type: "corrupt", list: data.corrupt });
  };
  let fit: FitResult;
  try {
    fit = await trainer.fit(model, data);
  } finally {
    flushRecords();
    current.lastPath = lastCheckpoint(trainer.runDir) ?? current.lastPath;
  }
  if (fit.stopReason === "interrupted") {
    post({
      type: "stopped",
      message: `stopped at global step ${fit.globalStep}; Resume continues from ${fit.lastPath}`,
      files: resultFiles(trainer.runDir, fit.lastPath),
    });
    disposeRun();
    return;
  }
  const test = cfg.trainer.test ? await trainer.test(model, data, { ckptPath: "best" }) : null;
  flushRecords();
  const predictions = await predictClasses(model, data.testLoader());
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
    adapter,
  };
  for (const [k, v] of Object.entries(test?.metrics ?? {})) {
    if (!/acc_class_/.test(k)) facts[k] = v;
  }
  const evalLabel = test?.checkpoint ? "test (best checkpoint)" : "test (final weights)";
  trainer.writeReport(test, { label: evalLabel, facts });
  const files = resultFiles(trainer.runDir, fit.bestPath ?? fit.lastPath);
  try {
    const onnx = await exportOnnx(model, exportOptions(cfg, model, data.classNames));
    files.push({
      name: `${cfg.model.name}.onnx`,
      blob: new Blob([onnx as Uint8Array<ArrayBuffer>]),
      kind: "onnx",
    });
  } catch (e) {
    post({ type: "log", text: `ONNX export skipped: ${(e as Error).message}` });
  }
  const m = test?.metrics ?? {};
  const summary: Record<string, unknown> = {
    ...fit.lastMetrics,
    ...m,
    images_per_sec: fit.imagesPerSec,
    epochs: fit.epochs,
    global_step: fit.globalStep,
    stop_reason: fit.stopReason,
    best_score: fit.bestScore,
    best_checkpoint: fit.bestPath,
    wall_sec: wall,
    adapter,
    class_names: data.classNames,
    test_predictions: predictions.classes,
    test_logits: predictions.logits,
  };
  const perClass = data.classNames.map((_, c) => m[`test/acc_class_${c}`]);
  post({
    type: "done",
    summary,
    view: {
      classNames: data.classNames,
      confusion: test?.confusion ?? null,
      perClass: perClass.every((v) => v !== undefined) && perClass.length ? perClass : null,
      evalLabel,
    },
    files,
  });
  trainer.close();
  data.dispose();
  current.trainer = null;
  current.data = null;
}

/** The newest `last.json` or `best.json` of a run folder, if any. */
function lastCheckpoint(runDir: string): string | null {
  const files = listFilesUnder(`${runDir}/checkpoints`);
  return files.find((f) => f.endsWith("/last.json")) ??
    files.find((f) => f.endsWith("/best.json")) ?? null;
}

function exportOptions(cfg: TrainConfig, model: BaseClassificationModel, classNames: string[]) {
  const facts = resnetFacts(model);
  const d = cfg.data;
  const norm = channelNorm({ ...d, channels: facts.inChannels });
  return {
    classNames,
    inputSize: d.imageSize,
    mean: Array.from(norm.mean),
    std: Array.from(norm.std),
    resize: d.augment.resize,
  };
}

async function predict(name: string, bytes: Uint8Array): Promise<void> {
  if (!current?.model) throw new Error("predict: train a model first");
  const d = current.cfg.data;
  const raw = await decodeImage(bytes, d.channels);
  const per = d.channels * d.imageSize * d.imageSize;
  const x = new Float32Array(per);
  evalTransform(raw, { imageSize: d.imageSize, channels: d.channels, augment: d.augment }, x, 0);
  const model = current.model;
  model.eval();
  const logits = scope(() =>
    noGrad(() => model.forward(Tensor.fromArray(x, [1, d.channels, d.imageSize, d.imageSize])))
  );
  let values: Float32Array;
  try {
    values = (await logits.toArray()) as Float32Array;
  } finally {
    logits.dispose();
  }
  const k = Math.min(5, current.classNames.length);
  const [row] = topK(values, { rows: 1, k });
  post({
    type: "predicted",
    name,
    top: row.map(([i, p]) => ({ name: current!.classNames[i] ?? String(i), probability: p })),
  });
}

function fail(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  const kind = e instanceof ConfigError
    ? "config"
    : /device lost|out of memory|OutOfMemory/i.test(message)
    ? "device"
    : "run";
  const runDir = current?.trainer?.runDir ?? null;
  let files: ResultFile[] = [];
  try {
    const last = runDir ? lastCheckpoint(runDir) : current?.lastPath ?? null;
    files = resultFiles(null, last);
  } catch { /* nothing to offer */ }
  const text = e instanceof ConfigError
    ? `config error: ${message}`
    : e instanceof NonFiniteLossError
    ? `error: ${message}`
    : `error: ${message.split("\n")[0]}`;
  post({ type: "error", message: text, kind, files });
  disposeRun();
}

let last: { yaml: string; overrides: string[] } | null = null;

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "start") {
    disposeRun();
    current = null;
    last = { yaml: m.yaml, overrides: m.overrides };
    for (const f of m.files) mountFile(f.path, f.file);
    let cfg: TrainConfig;
    try {
      cfg = webConfig(m.yaml, m.overrides, null);
    } catch (err) {
      fail(err);
      return;
    }
    run(cfg).catch(fail);
  } else if (m.type === "stop") {
    stopWanted = true;
    current?.trainer?.requestStop();
  } else if (m.type === "resume") {
    const from = current?.lastPath;
    if (!last || !from) {
      fail(new Error("resume: no checkpoint to resume from"));
      return;
    }
    let cfg: TrainConfig;
    try {
      cfg = webConfig(last.yaml, last.overrides, from);
    } catch (err) {
      fail(err);
      return;
    }
    run(cfg).catch(fail);
  } else if (m.type === "predict") {
    predict(m.name, m.bytes).catch((err) =>
      post({ type: "log", text: `predict ${m.name}: ${(err as Error).message}` })
    );
  }
};
