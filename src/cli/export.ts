/**
 * `deno task export <run folder | checkpoint .json> --format onnx|safetensors [--out PATH]
 * [--force] [--softmax] [--fold-bn]`: writes a trained model for deployment, as ONNX or as
 * PyTorch-ready safetensors (torchvision keys) with a `config.json` beside it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getDevice } from "../gpu/device.ts";
import { channelNorm } from "../data/transforms.ts";
import { exportOnnx, type ExportOptions, resnetFacts } from "../export/mod.ts";
import { exportTorchSafetensors, torchExportConfig } from "../export/torch.ts";
import { resolveCheckpointPath } from "../train/checkpoint.ts";
import { loadTrained, runMain, type TrainedModel } from "./common.ts";

const HELP = `Usage: deno task export <checkpoint> --format onnx|safetensors [options]

Exports a trained checkpoint (a checkpoint .json, a checkpoints folder or a run folder:
best.json is preferred, then last.json) for deployment:

  onnx          ONNX opset 17: input "images" [N, C, H, W] f32 (dynamic batch N), output
                "logits" [N, classes]; class names, input size, mean/std, model name and
                version in metadata_props. Default output <run>/export/model.onnx.
  safetensors   torchvision state-dict keys (load_state_dict(..., strict=True) works) and a
                config.json beside it. Default output <run>/export/model.safetensors.

Options:
  --format F    onnx or safetensors (required)
  --out PATH    output file (config.json goes in the same folder)
  --force       overwrite existing files
  --softmax     onnx: append a Softmax; the output is named "probabilities"
  --fold-bn     onnx: fold BatchNormalization into the convolutions
  -h, --help    show this help

Files are written atomically: an error leaves no partial output.`;

const FORMATS = ["onnx", "safetensors"] as const;
type Format = typeof FORMATS[number];

/** One file an export writes. */
export interface ExportFile {
  /** Destination path. */
  path: string;
  /** Contents. */
  bytes: Uint8Array;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The default output of a checkpoint: `<run>/export/model.<ext>`, where `<run>` is the
 * folder holding `checkpoints/` (or the checkpoint's own folder when it is not named so).
 */
export function defaultOutPath(checkpointJson: string, format: Format): string {
  let dir = dirOf(checkpointJson);
  if (dir.replace(/\/+$/, "").endsWith("checkpoints")) dir = dirOf(dir.replace(/\/+$/, ""));
  return `${dir}/export/model.${format === "onnx" ? "onnx" : "safetensors"}`;
}

/**
 * Writes `files` all or nothing: each goes to a temporary file beside it (fsync), then all
 * are renamed into place. On any error the temporary files, and files renamed so far that
 * did not exist before, are removed, and the error names the path.
 */
export function writeAllAtomic(files: readonly ExportFile[], options: { force: boolean }): void {
  for (const f of files) {
    if (!options.force && exists(f.path)) {
      throw new Error(`"${f.path}" already exists (use --force to overwrite)`);
    }
  }
  const temps: string[] = [];
  const placed: string[] = [];
  const madeDirs: string[] = [];
  const existed = files.map((f) => exists(f.path));
  let current = "";
  try {
    for (const f of files) {
      current = f.path;
      // Remember which folders this creates, deepest last, to remove them on failure.
      const missing: string[] = [];
      for (let d = dirOf(f.path); !exists(d); d = dirOf(d)) missing.unshift(d);
      Deno.mkdirSync(dirOf(f.path), { recursive: true });
      madeDirs.push(...missing);
      const tmp = `${dirOf(f.path)}/.${f.path.slice(f.path.lastIndexOf("/") + 1)}.${Deno.pid}.tmp`;
      temps.push(tmp);
      const h = Deno.openSync(tmp, { write: true, create: true, truncate: true });
      try {
        let at = 0;
        while (at < f.bytes.length) at += h.writeSync(f.bytes.subarray(at));
        h.syncSync();
      } finally {
        h.close();
      }
    }
    files.forEach((f, i) => {
      current = f.path;
      Deno.renameSync(temps[i], f.path);
      if (!existed[i]) placed.push(f.path);
    });
  } catch (e) {
    for (const p of [...temps, ...placed, ...madeDirs.reverse()]) {
      try {
        Deno.removeSync(p); // a folder only if empty
      } catch { /* not created, or not empty */ }
    }
    throw new Error(`cannot write "${current}": ${(e as Error).message.split("\n")[0]}`);
  }
}

/** The deployment facts of a trained model: its class names and its config's input pipeline. */
export function exportOptionsOf(t: TrainedModel): ExportOptions {
  const facts = resnetFacts(t.model);
  const d = t.config.data;
  const norm = channelNorm({ ...d, channels: facts.inChannels });
  return {
    classNames: t.classNames,
    inputSize: d.imageSize,
    mean: Array.from(norm.mean),
    std: Array.from(norm.std),
    resize: d.augment.resize,
  };
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** Runs the command with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: "boolean", short: "h" },
      format: { type: "string" },
      out: { type: "string" },
      force: { type: "boolean", default: false },
      softmax: { type: "boolean", default: false },
      "fold-bn": { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(
      `error: expected one checkpoint (a run folder or a checkpoint .json), got ${positionals.length} arguments\n\n${HELP}`,
    );
    return 2;
  }
  const format = values.format as Format;
  if (!FORMATS.includes(format)) {
    console.error(
      `error: --format: expected "onnx" or "safetensors", got ${
        values.format === undefined ? "nothing" : `"${values.format}"`
      }`,
    );
    return 2;
  }
  if (format !== "onnx" && (values.softmax || values["fold-bn"])) {
    console.error(
      `error: --${values.softmax ? "softmax" : "fold-bn"} applies to --format onnx only`,
    );
    return 2;
  }
  // Resolve the paths and refuse to overwrite before the (slow) load.
  const jsonPath = resolveCheckpointPath(positionals[0]);
  const out = values.out ?? defaultOutPath(jsonPath, format);
  const paths = format === "onnx" ? [out] : [out, `${dirOf(out)}/config.json`];
  for (const p of paths) {
    if (!values.force && exists(p)) {
      throw new Error(`"${p}" already exists (use --force to overwrite)`);
    }
  }
  await getDevice();
  const t = await loadTrained(jsonPath);
  try {
    const options = exportOptionsOf(t);
    const facts = resnetFacts(t.model);
    const files: ExportFile[] = [];
    let outputDesc: string;
    if (format === "onnx") {
      const softmax = values.softmax;
      files.push({
        path: out,
        bytes: await exportOnnx(t.model, { ...options, softmax, foldBn: values["fold-bn"] }),
      });
      outputDesc = `${softmax ? "probabilities" : "logits"} [N, ${facts.numClasses}]`;
    } else {
      const config = torchExportConfig(t.model, options);
      files.push({ path: out, bytes: await exportTorchSafetensors(t.model, options) });
      files.push({
        path: paths[1],
        bytes: new TextEncoder().encode(JSON.stringify(config, null, 1) + "\n"),
      });
      outputDesc = `logits [N, ${facts.numClasses}]`;
    }
    writeAllAtomic(files, { force: values.force });
    const s = options.inputSize;
    for (const f of files) console.log(`wrote ${f.path} (${formatBytes(f.bytes.length)})`);
    console.log(
      `${facts.architecture} from ${t.path} (epoch ${t.epoch}): input images [N, ${facts.inChannels}, ${s}, ${s}] f32 -> ${outputDesc}`,
    );
  } finally {
    t.model.dispose();
  }
  return 0;
}

if (import.meta.main) await runMain(() => main(Deno.args));
