/**
 * Run-folder metric files: `metrics.csv` (Lightning CSVLogger layout: one row per logging
 * event, columns are the sorted union of every metric name, `epoch` and `step` included,
 * empty cells where a row lacks a metric) and `metrics.jsonl` (one JSON object per event),
 * rewritten with atomic writes (`src/io/atomic.ts`, re-exported here).
 *
 * @module
 */

import { denoFs, type PlatformFs } from "../platform/fs.ts";

/** One logging event: metric values at a global step of an epoch. */
export interface MetricRecord {
  /** Epoch (0-based) the values belong to. */
  epoch: number;
  /** Global (optimizer) step when they were logged. */
  step: number;
  /** Metric values by name (NaN and ±Infinity allowed). */
  metrics: Record<string, number>;
}

export { atomicWrite, type AtomicWriteOptions } from "../io/atomic.ts";

function csvNumber(v: number | undefined): string {
  if (v === undefined) return "";
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return String(v);
}

/** Renders records as Lightning's CSVLogger would: sorted columns, one row per record. */
export function toCsv(records: readonly MetricRecord[]): string {
  const keys = new Set<string>(["epoch", "step"]);
  for (const r of records) for (const k of Object.keys(r.metrics)) keys.add(k);
  const cols = [...keys].sort();
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = [cols.map(quote).join(",")];
  for (const r of records) {
    const row: Record<string, number> = { ...r.metrics, epoch: r.epoch, step: r.step };
    lines.push(cols.map((c) => csvNumber(row[c])).join(","));
  }
  return lines.join("\n") + "\n";
}

/** Parses a `metrics.csv` written by `toCsv` (empty cells are absent metrics). */
export function parseCsv(text: string): MetricRecord[] {
  const lines = text.split("\n").filter((l) => l.length > 0);
  if (!lines.length) return [];
  const cols = lines[0].split(",");
  const num = (s: string) =>
    s === "nan" ? NaN : s === "inf" ? Infinity : s === "-inf" ? -Infinity : Number(s);
  return lines.slice(1).map((l) => {
    const cells = l.split(",");
    const metrics: Record<string, number> = {};
    cols.forEach((c, i) => {
      if (cells[i] !== "" && cells[i] !== undefined) metrics[c] = num(cells[i]);
    });
    const { epoch, step, ...rest } = metrics;
    return { epoch, step, metrics: rest };
  });
}

function jsonValue(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** One `metrics.jsonl` line (non-finite values become the strings "NaN", "Infinity"). */
export function toJsonLine(r: MetricRecord, wallTime: number): string {
  const m: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(r.metrics)) m[k] = jsonValue(v);
  return JSON.stringify({ epoch: r.epoch, step: r.step, time: wallTime, ...m }) + "\n";
}

/** Parses `metrics.jsonl`. */
export function parseJsonl(text: string): MetricRecord[] {
  return text.split("\n").filter((l) => l.trim()).map((l) => {
    const o = JSON.parse(l) as Record<string, number | string>;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === "epoch" || k === "step" || k === "time") continue;
      metrics[k] = typeof v === "number" ? v : Number(v);
    }
    return { epoch: Number(o.epoch), step: Number(o.step), metrics };
  });
}

/** Options of `MetricFiles`. */
export interface MetricFilesOptions {
  /** Write `metrics.csv`. */
  csv: boolean;
  /** Write `metrics.jsonl`. */
  jsonl: boolean;
}

/**
 * Keeps every record of a run and mirrors it to `metrics.csv` (rewritten atomically, since
 * a new metric name adds a column) and `metrics.jsonl` (appended).
 */
export class MetricFiles {
  /** All records so far, in order. */
  readonly records: MetricRecord[] = [];
  readonly #dir: string;
  readonly #opts: MetricFilesOptions;
  readonly #fs: PlatformFs;

  /** Creates the writer for run folder `dir` (which must exist). */
  constructor(dir: string, options: MetricFilesOptions, fs: PlatformFs = denoFs) {
    this.#dir = dir;
    this.#opts = options;
    this.#fs = fs;
  }

  /** Appends a record and updates the files. */
  add(record: MetricRecord): void {
    this.records.push(record);
    if (this.#opts.jsonl) {
      this.#fs.appendText(`${this.#dir}/metrics.jsonl`, toJsonLine(record, Date.now() / 1000));
    }
    if (this.#opts.csv) this.#fs.writeAtomic(`${this.#dir}/metrics.csv`, toCsv(this.records));
  }
}
