/**
 * `deno task predict <checkpoint> <image-or-folder> [...]`: top-5 classes with probabilities
 * for PNG/JPEG images, as CSV or JSON.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getDevice } from "../gpu/device.ts";
import { scope, Tensor } from "../gpu/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import { decodeImage } from "../data/image.ts";
import { IMAGE_EXTENSIONS } from "../data/image.ts";
import { evalTransform } from "../data/transforms.ts";
import { loadTrained, runMain } from "./common.ts";
import { topK } from "../metrics/top_k.ts";

export { topK } from "../metrics/top_k.ts";

const HELP = `Usage: deno task predict <checkpoint> <image-or-folder> [more ...] [options]

Classifies PNG/JPEG images (folders are searched recursively) with a trained checkpoint
(a checkpoint .json, a checkpoints folder or a run folder) and prints the top-5 classes
(top-k with k = min(5, classes)) with their softmax probabilities. Images get the
evaluation transform of the checkpoint's config (resize, center crop, normalize).

Options:
  --format csv|json   output format on stdout (default csv)
  --batch-size N      images per forward pass (default 32)
  -h, --help          show this help`;

/** One image's prediction. */
export interface Prediction {
  /** The image path. */
  path: string;
  /** The top-k classes, most probable first. */
  top: { index: number; name: string; probability: number }[];
}

function collect(path: string, out: string[]): void {
  const st = Deno.statSync(path);
  if (st.isDirectory) {
    const entries = [...Deno.readDirSync(path)].map((e) => e.name).sort();
    for (const n of entries) {
      const p = `${path.replace(/\/+$/, "")}/${n}`;
      const s = Deno.statSync(p);
      if (s.isDirectory) collect(p, out);
      else if (IMAGE_EXTENSIONS.some((e) => n.toLowerCase().endsWith(e))) out.push(p);
    }
  } else out.push(path);
}

/** Renders predictions as CSV: `path,top1,p1,…,topK,pK`. */
export function toPredictionCsv(preds: readonly Prediction[], k: number): string {
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const head = ["path"];
  for (let i = 1; i <= k; i++) head.push(`top${i}`, `p${i}`);
  const lines = [head.join(",")];
  for (const p of preds) {
    lines.push(
      [q(p.path), ...p.top.flatMap((t) => [q(t.name), t.probability.toFixed(6)])].join(","),
    );
  }
  return lines.join("\n") + "\n";
}

/** Where `main` writes its output (default stdout). */
export interface PredictIo {
  /** Receives the CSV or JSON text. */
  write?: (text: string) => void;
}

/** Runs the command with `args`; returns the exit code. */
export async function main(args: string[], io: PredictIo = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: "boolean", short: "h" },
      format: { type: "string", default: "csv" },
      "batch-size": { type: "string", default: "32" },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length < 2) {
    console.error(
      `error: expected a checkpoint and at least one image or folder, got ${positionals.length} argument(s)\n\n${HELP}`,
    );
    return 2;
  }
  if (values.format !== "csv" && values.format !== "json") {
    console.error(`error: --format: expected "csv" or "json", got "${values.format}"`);
    return 2;
  }
  const bs = Number(values["batch-size"]);
  if (!(Number.isInteger(bs) && bs >= 1)) {
    console.error(
      `error: --batch-size: expected a positive integer, got "${values["batch-size"]}"`,
    );
    return 2;
  }
  const [ckpt, ...inputs] = positionals;
  const files: string[] = [];
  for (const p of inputs) {
    try {
      collect(p, files);
    } catch (e) {
      throw new Error(`${p}: cannot read (${(e as Error).message})`);
    }
  }
  if (!files.length) throw new Error(`no PNG or JPEG images found in ${inputs.join(", ")}`);
  await getDevice();
  const t = await loadTrained(ckpt);
  const d = t.config.data;
  const spec = { imageSize: d.imageSize, channels: d.channels, augment: d.augment };
  const per = d.channels * d.imageSize * d.imageSize;
  const k = Math.min(5, t.classNames.length);
  const preds: Prediction[] = [];
  try {
    for (let at = 0; at < files.length; at += bs) {
      const chunk = files.slice(at, at + bs);
      const host = new Float32Array(chunk.length * per);
      for (let i = 0; i < chunk.length; i++) {
        let raw;
        try {
          raw = await decodeImage(await Deno.readFile(chunk[i]), d.channels);
        } catch (e) {
          throw new Error(`${chunk[i]}: ${(e as Error).message}`);
        }
        evalTransform(raw, spec, host, i * per);
      }
      const logits = scope(() =>
        noGrad(() => {
          const x = Tensor.fromArray(host, [chunk.length, d.channels, d.imageSize, d.imageSize]);
          return t.model.forward(x);
        })
      );
      const values = (await logits.toArray()) as Float32Array;
      logits.dispose();
      topK(values, { rows: chunk.length, k }).forEach((top, i) => {
        preds.push({
          path: chunk[i],
          top: top.map(([index, probability]) => ({
            index,
            name: t.classNames[index],
            probability,
          })),
        });
      });
    }
  } finally {
    t.model.dispose();
  }
  const text = values.format === "json"
    ? JSON.stringify({ checkpoint: t.path, predictions: preds }, null, 1) + "\n"
    : toPredictionCsv(preds, k);
  if (io.write) io.write(text);
  else {
    const bytes = new TextEncoder().encode(text);
    for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  }
  return 0;
}

if (import.meta.main) await runMain(() => main(Deno.args));
