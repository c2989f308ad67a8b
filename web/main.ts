/// <reference no-default-lib="true" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="esnext" />

/**
 * The web app's page: data picking, settings (the CLI's YAML config, validated by the same
 * validator), the training worker's progress, live curves, the evaluation figures (drawn by
 * the same functions as `report.html`), downloads and the predict panel.
 *
 * Automation contract: URL parameters are config overrides (`?trainer.maxEpochs=1`, plus the
 * short names in `SHORT_NAMES`), `autostart=1` starts a run; `document.body.dataset.state`
 * goes `idle → training → done | error` (`stopped` after Stop); `#summary` holds the final
 * metrics as JSON, `#error` the error message.
 *
 * @module
 */

import { parseDocument } from "yaml";
import {
  ConfigError,
  parseOverride,
  resolveConfig,
  type TrainConfig,
} from "../src/train/config.ts";
import { listModels } from "../src/models/mod.ts";
import { barChart, confusionChart, curveCharts } from "../src/train/report.ts";
import { formatDuration, formatValue } from "../src/train/progress.ts";
import type { MetricRecord } from "../src/train/loggers.ts";
import { IMAGE_EXTENSIONS } from "../src/data/image.ts";
import type { FromWorker, PickedFile, ResultFile, ToWorker } from "./protocol.ts";
import { WEB_DEFAULT_YAML } from "./defaults.ts";

/** URL short names for common config fields (any dot path works too). */
export const SHORT_NAMES: Record<string, string> = {
  data: "data.source",
  epochs: "trainer.maxEpochs",
  trainSize: "data.builtin.trainSize",
  valSize: "data.builtin.valSize",
  testSize: "data.builtin.testSize",
  numClasses: "data.builtin.numClasses",
  batchSize: "data.batchSize",
  imageSize: "data.imageSize",
  lr: "optimizer.learningRate",
  model: "model.name",
  smallInput: "model.smallInput",
};

/** The settings shown as form fields (dot path, label, input kind). */
const FIELDS: [string, string, "number" | "text" | "checkbox" | "model"][] = [
  ["model.name", "model", "model"],
  ["model.smallInput", "small-input stem (CIFAR)", "checkbox"],
  ["trainer.maxEpochs", "epochs", "number"],
  ["data.batchSize", "batch size", "number"],
  ["data.imageSize", "image size (px)", "number"],
  ["optimizer.learningRate", "learning rate", "number"],
  ["scheduler.warmupEpochs", "warm-up epochs", "number"],
  ["model.labelSmoothing", "label smoothing", "number"],
  ["data.augment.hflip", "horizontal flip probability", "number"],
  ["data.augment.randomCrop.padding", "random-crop padding", "number"],
  ["data.builtin.numClasses", "built-in: classes", "number"],
  ["data.builtin.trainSize", "built-in: train images", "number"],
  ["data.builtin.valSize", "built-in: val images", "number"],
  ["data.builtin.testSize", "built-in: test images", "number"],
  ["seed", "seed", "number"],
];

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const yamlBox = $<HTMLTextAreaElement>("yaml");
const errorBox = $("error");
let worker: Worker | null = null;
let picked: PickedFile[] = [];
/** A picked pretrained weights file (mounted with the data). */
let weights: PickedFile | null = null;
let records: MetricRecord[] = [];
let drawPending = false;
const startedAt = { t: 0 };

function setState(state: "idle" | "training" | "done" | "error" | "stopped"): void {
  document.body.dataset.state = state;
  $<HTMLButtonElement>("start").disabled = state === "training";
  $<HTMLButtonElement>("stop").disabled = state !== "training";
  $<HTMLButtonElement>("resume").disabled = state !== "stopped" && !resumable;
}
let resumable = false;

function showError(message: string): void {
  errorBox.textContent = message;
  setState("error");
}

function log(text: string): void {
  const el = $("log");
  el.textContent += text.endsWith("\n") ? text : text + "\n";
  el.scrollTop = el.scrollHeight;
}

/** Sets a dot path in the YAML text (comments and order kept). */
function setYaml(path: string, value: unknown): void {
  const doc = parseDocument(yamlBox.value);
  doc.setIn(path.split("."), value);
  yamlBox.value = doc.toString();
}

function getYaml(path: string): unknown {
  const doc = parseDocument(yamlBox.value);
  const v = doc.getIn(path.split("."));
  return v && typeof v === "object" && "toJSON" in v ? (v as { toJSON(): unknown }).toJSON() : v;
}

/** Validates the settings like the CLI does (the data folder is checked by the worker). */
function resolved(): TrainConfig {
  return resolveConfig(yamlBox.value, "settings", { models: listModels(), checkPaths: false });
}

function buildFields(): void {
  const box = $("fields");
  for (const [path, label, kind] of FIELDS) {
    const l = document.createElement("label");
    l.textContent = label + " ";
    let input: HTMLInputElement | HTMLSelectElement;
    if (kind === "model") {
      const s = document.createElement("select");
      for (const m of listModels()) s.add(new Option(m, m));
      input = s;
    } else {
      const i = document.createElement("input");
      i.type = kind;
      if (kind === "number") i.step = "any";
      input = i;
    }
    input.id = `f-${path}`;
    input.dataset.path = path;
    input.addEventListener("change", () => {
      const v = input instanceof HTMLInputElement && input.type === "checkbox"
        ? input.checked
        : input.value;
      try {
        setYaml(path, typeof v === "boolean" ? v : parseOverride(`${path}=${v}`).value);
        checkSettings();
      } catch (e) {
        errorBox.textContent = (e as Error).message;
      }
    });
    l.append(input);
    box.append(l);
  }
}

/** Shows the YAML's values in the fields. */
function syncFields(): void {
  for (const [path] of FIELDS) {
    const el = document.getElementById(`f-${path}`) as HTMLInputElement | HTMLSelectElement;
    const v = getYaml(path);
    if (el instanceof HTMLInputElement && el.type === "checkbox") el.checked = v === true;
    else el.value = v === undefined || v === null ? "" : String(v);
  }
}

/** Validates; shows the validator's message. Returns the config or null. */
function checkSettings(): TrainConfig | null {
  try {
    const c = resolved();
    if (document.body.dataset.state === "error") setState("idle");
    errorBox.textContent = "";
    return c;
  } catch (e) {
    errorBox.textContent = e instanceof ConfigError
      ? `config error: ${e.message}`
      : `error: ${(e as Error).message}`;
    return null;
  }
}

// ---- data ----

function source(): string {
  return (document.querySelector("input[name=source]:checked") as HTMLInputElement).value;
}

function setSource(s: string): void {
  const r = document.querySelector(`input[name=source][value=${s}]`) as HTMLInputElement | null;
  if (r) r.checked = true;
  setYaml("data.source", s);
}

function useFolder(files: { path: string; file: Blob }[]): void {
  const top = files[0]?.path.split("/")[0] ?? "folder";
  picked = files.map((f) => ({ path: `/picked/${f.path}`, file: f.file }));
  const images = files.filter((f) =>
    IMAGE_EXTENSIONS.some((e) => f.path.toLowerCase().endsWith(e))
  );
  $("data-info").textContent = `${files.length} files (${images.length} images) in ${top}/`;
  setSource("imagefolder");
  setYaml("data.root", `/picked/${top}`);
  syncFields();
}

function useIdx(files: File[]): void {
  // The IDX source names the classes as Fashion-MNIST's when its folder says "fashion".
  picked = files.map((f) => ({ path: `/picked/fashion-mnist/${f.name}`, file: f }));
  $("data-info").textContent = `IDX files: ${files.map((f) => f.name).join(", ")}`;
  setSource("idx");
  setYaml("data.root", "/picked/fashion-mnist");
  // Fashion-MNIST is grayscale at 28 px.
  setYaml("data.channels", 1);
  setYaml("data.imageSize", 28);
  syncFields();
}

async function entryFiles(
  entry: FileSystemEntry,
  prefix: string,
  out: { path: string; file: Blob }[],
): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((res, rej) =>
      (entry as FileSystemFileEntry).file(res, rej)
    );
    out.push({ path: prefix + entry.name, file });
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    while (true) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) =>
        reader.readEntries(res, rej)
      );
      if (!batch.length) break;
      for (const e of batch) await entryFiles(e, `${prefix}${entry.name}/`, out);
    }
  }
}

function dropZone(id: string, onDrop: (e: DragEvent) => void): void {
  const el = $(id);
  el.addEventListener("dragover", (e) => {
    e.preventDefault();
    el.classList.add("over");
  });
  el.addEventListener("dragleave", () => el.classList.remove("over"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    el.classList.remove("over");
    onDrop(e);
  });
}

// ---- worker ----

function download(f: ResultFile): HTMLLIElement {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(f.blob);
  a.download = f.name;
  a.textContent = `${f.name} (${(f.blob.size / 1024).toFixed(1)} KiB)`;
  a.dataset.kind = f.kind;
  li.append(`${f.kind}: `, a);
  return li;
}

/** Lists `files` for download, in place of the previous run's (whose memory is freed). */
function showFiles(files: ResultFile[]): void {
  const ul = $("downloads");
  for (const a of ul.querySelectorAll("a")) URL.revokeObjectURL(a.href);
  ul.textContent = "";
  for (const f of files) ul.append(download(f));
}

function drawCurves(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    $("curves").innerHTML = curveCharts(records).join("");
  });
}

function onMessage(m: FromWorker): void {
  switch (m.type) {
    case "adapter":
      $("adapter").textContent = `adapter: ${m.description}`;
      break;
    case "log":
      log(m.text);
      break;
    case "progress": {
      const s = m.state;
      const frac = s.phase === "train"
        ? (s.epoch + (s.batches ? s.batch / s.batches : 0)) / s.maxEpochs
        : (s.epoch + 1) / s.maxEpochs;
      ($("bar").firstElementChild as HTMLElement).style.width = `${Math.min(100, frac * 100)}%`;
      const vals = Object.entries(s.values).map(([k, v]) => `${k} ${formatValue(v)}`).join(" ");
      $("status").textContent =
        `${s.phase} epoch ${s.epoch + 1}/${s.maxEpochs} step ${s.batch}/${s.batches}` +
        ` ${vals} ${s.imagesPerSec > 0 ? s.imagesPerSec.toFixed(1) + " img/s" : ""}` +
        ` ETA ${formatDuration(s.etaSec)} (elapsed ${
          formatDuration((performance.now() - startedAt.t) / 1000)
        })`;
      break;
    }
    case "records":
      records.push(...m.records);
      drawCurves();
      break;
    case "corrupt": {
      const ul = $("corrupt");
      ul.textContent = "";
      for (const c of m.list) {
        const li = document.createElement("li");
        li.textContent = `skipped corrupt image ${c}`;
        ul.append(li);
      }
      break;
    }
    case "stopped":
      log(m.message);
      showFiles(m.files);
      resumable = true;
      setState("stopped");
      break;
    case "done": {
      ($("bar").firstElementChild as HTMLElement).style.width = "100%";
      const v = m.view;
      $("perclass").innerHTML = v.perClass
        ? barChart(`Per-class accuracy, ${v.evalLabel}`, v.classNames, v.perClass)
        : "";
      $("confusion").innerHTML = v.confusion ? confusionChart(v.classNames, v.confusion) : "";
      showFiles(m.files);
      $("summary").textContent = JSON.stringify(m.summary, null, 1);
      $("status").textContent += "\ndone";
      resumable = false;
      setState("done");
      break;
    }
    case "predicted": {
      const ol = $("predictions");
      ol.textContent = "";
      for (const t of m.top) {
        const li = document.createElement("li");
        li.textContent = `${t.name} ${(t.probability * 100).toFixed(1)}%`;
        ol.append(li);
      }
      ol.dataset.image = m.name;
      break;
    }
    case "error":
      if (m.files.length) showFiles(m.files);
      showError(
        m.kind === "device"
          ? `${m.message}\nThe GPU device was lost or ran out of memory; the last checkpoint (if any) is under Results. Try a smaller batch size or image size.`
          : m.message,
      );
      break;
  }
}

/** A message naming the browsers and flags that provide WebGPU, or null when it is there. */
async function webgpuProblem(): Promise<string | null> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const how =
    "Use Chrome or Edge 113+ (on Linux start it with --enable-unsafe-webgpu --enable-features=Vulkan), " +
    "Safari 26+, or Firefox 141+ on Windows (Firefox Nightly with dom.webgpu.enabled elsewhere). " +
    "WebGPU also needs a secure context (https or localhost).";
  if (!gpu) return `WebGPU is not available in this browser (navigator.gpu is missing). ${how}`;
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return `WebGPU is present but no GPU adapter was found. ${how}`;
  return null;
}

async function start(resume = false): Promise<void> {
  if (!resume && !checkSettings()) {
    setState("error");
    return;
  }
  const problem = await webgpuProblem();
  if (problem) {
    showError(problem);
    return;
  }
  if (!resume && source() !== "builtin" && !picked.length) {
    showError(`pick ${source() === "idx" ? "the IDX files" : "a folder"} first`);
    return;
  }
  errorBox.textContent = "";
  if (!worker) {
    worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<FromWorker>) => onMessage(e.data);
    worker.onerror = (e) => showError(`error: worker failed: ${e.message}`);
  }
  if (!resume) {
    records = [];
    $("curves").textContent = "";
    $("summary").textContent = "";
    $("corrupt").textContent = "";
    $("perclass").textContent = "";
    $("confusion").textContent = "";
  }
  startedAt.t = performance.now();
  setState("training");
  const msg: ToWorker = resume ? { type: "resume" } : {
    type: "start",
    yaml: yamlBox.value,
    overrides: [],
    files: [...(source() === "builtin" ? [] : picked), ...(weights ? [weights] : [])],
  };
  worker.postMessage(msg);
}

function init(): void {
  yamlBox.value = WEB_DEFAULT_YAML;
  buildFields();
  const params = new URLSearchParams(location.search);
  const problems: string[] = [];
  for (const [k, v] of params) {
    if (k === "autostart") continue;
    const path = SHORT_NAMES[k] ?? k;
    try {
      if (path === "data.source") setSource(v);
      else setYaml(path, parseOverride(`${path}=${v}`).value);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  syncFields();
  yamlBox.addEventListener("change", () => {
    syncFields();
    checkSettings();
  });
  for (const r of document.querySelectorAll<HTMLInputElement>("input[name=source]")) {
    r.addEventListener("change", () => setYaml("data.source", r.value));
  }
  $<HTMLInputElement>("folder").addEventListener("change", (e) => {
    const files = [...((e.target as HTMLInputElement).files ?? [])];
    useFolder(files.map((f) => ({ path: f.webkitRelativePath || f.name, file: f })));
  });
  $<HTMLInputElement>("pretrained").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (!f) return;
    weights = { path: `/picked/weights/${f.name}`, file: f };
    setYaml("model.pretrained", weights.path);
    checkSettings();
  });
  $<HTMLInputElement>("idx").addEventListener("change", (e) => {
    useIdx([...((e.target as HTMLInputElement).files ?? [])]);
  });
  dropZone("folder-drop", async (e) => {
    const out: { path: string; file: Blob }[] = [];
    for (const item of [...(e.dataTransfer?.items ?? [])]) {
      const entry = item.webkitGetAsEntry();
      if (entry) await entryFiles(entry, "", out);
    }
    if (out.length) useFolder(out);
  });
  const predictFile = async (f: File) => {
    if (!worker || document.body.dataset.state !== "done") {
      log("predict: train a model first");
      return;
    }
    worker.postMessage({
      type: "predict",
      name: f.name,
      bytes: new Uint8Array(await f.arrayBuffer()),
    });
  };
  $<HTMLInputElement>("predict-file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) predictFile(f);
  });
  dropZone("predict-drop", (e) => {
    const f = e.dataTransfer?.files[0];
    if (f) predictFile(f);
  });
  $("start").addEventListener("click", () => start(false));
  $("stop").addEventListener(
    "click",
    () => worker?.postMessage({ type: "stop" } satisfies ToWorker),
  );
  $("resume").addEventListener("click", () => start(true));
  $("save").addEventListener("click", () => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([yamlBox.value], { type: "text/yaml" }));
    a.download = "config.yaml";
    a.click();
  });
  $<HTMLInputElement>("load").addEventListener("change", async (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (!f) return;
    yamlBox.value = await f.text();
    syncFields();
    checkSettings();
  });
  setState("idle");
  if (problems.length) {
    showError(`config error: ${problems.join("; ")}`);
    return;
  }
  if (params.get("autostart") === "1") start(false);
}

init();
