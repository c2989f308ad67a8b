/**
 * Run-folder metric files: `metrics.csv` (Lightning CSVLogger layout: one row per logging
 * event, columns are the sorted union of every metric name, `epoch` and `step` included,
 * empty cells where a row lacks a metric) and `metrics.jsonl` (one JSON object per event),
 * plus atomic file writes (temp file, fsync, rename, directory fsync).
 *
 * @module
 */

/** One logging event: metric values at a global step of an epoch. */
export interface MetricRecord {
  /** Epoch (0-based) the values belong to. */
  epoch: number;
  /** Global (optimizer) step when they were logged. */
  step: number;
  /** Metric values by name (NaN and ±Infinity allowed). */
  metrics: Record<string, number>;
}

let tmpCounter = 0;

/** Options of `atomicWrite`. */
export interface AtomicWriteOptions {
  /**
   * Test hook: called with the temp file's path after the data is written and synced but
   * before the rename (throwing here simulates a crash mid-write).
   */
  beforeRename?: (tmpPath: string) => void;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/**
 * Writes `data` to `path` so that readers see the old file or the new one, never a mix:
 * a temp file in the same folder, fsync, rename over `path`, fsync of the folder.
 */
export function atomicWrite(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const dir = dirOf(path);
  const base = path.slice(path.lastIndexOf("/") + 1);
  const tmp = `${dir}/.${base}.tmp-${Deno.pid}-${tmpCounter++}`;
  const f = Deno.openSync(tmp, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
    f.syncSync();
  } finally {
    f.close();
  }
  try {
    options.beforeRename?.(tmp);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw e;
  }
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch {
    // Directory fsync is best effort (not every platform allows opening a folder).
  }
}

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

  /** Creates the writer for run folder `dir` (which must exist). */
  constructor(dir: string, options: MetricFilesOptions) {
    this.#dir = dir;
    this.#opts = options;
  }

  /** Appends a record and updates the files. */
  add(record: MetricRecord): void {
    this.records.push(record);
    if (this.#opts.jsonl) {
      Deno.writeTextFileSync(`${this.#dir}/metrics.jsonl`, toJsonLine(record, Date.now() / 1000), {
        append: true,
      });
    }
    if (this.#opts.csv) atomicWrite(`${this.#dir}/metrics.csv`, toCsv(this.records));
  }
}
