/**
 * Progress display: a one-line bar redrawn in place on a TTY (epoch, step, loss, images/s,
 * ETA), plain periodic lines otherwise. The loss shown is the last value read back at a
 * logging interval; nothing here reads from the GPU.
 *
 * @module
 */

import type { ProgressMode } from "./config.ts";
import { host, type HostStream } from "../platform/host.ts";

/** Where progress text goes (tests capture it). */
export interface TextSink {
  /** Writes text as is. */
  write(text: string): void;
  /** Whether this is a terminal (bar mode in `auto`). */
  isTerminal: boolean;
  /** Receives every progress snapshot, whatever the mode (a web page draws its own bar). */
  state?(s: ProgressState): void;
}

function streamSink(stream: HostStream): TextSink {
  return { write: (text) => stream.write(text), isTerminal: stream.isTerminal };
}

/** Standard output as a `TextSink`. */
export function stdoutSink(): TextSink {
  return streamSink(host.stdout);
}

/** Standard error as a `TextSink` (progress beside a machine-readable stdout). */
export function stderrSink(): TextSink {
  return streamSink(host.stderr);
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  const t = Math.round(s);
  if (t >= 3600) {
    return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (t >= 60) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${t}s`;
}

/** Formats a metric value compactly. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(4);
}

/** A progress snapshot. */
export interface ProgressState {
  /** Phase shown at the start of the line. */
  phase: string;
  /** Current epoch (0-based). */
  epoch: number;
  /** Epochs in the run. */
  maxEpochs: number;
  /** Batches done in this phase. */
  batch: number;
  /** Batches in this phase. */
  batches: number;
  /** Values shown (e.g. `loss`), last read back. */
  values: Record<string, number>;
  /** Images per second over the recent window. */
  imagesPerSec: number;
  /** Estimated seconds left in this phase. */
  etaSec: number;
}

/** Draws progress in the chosen mode. */
export class Progress {
  readonly #out: TextSink;
  readonly #mode: "bar" | "lines" | "none";
  #lastDraw = -Infinity;
  #barOpen = false;

  /** `auto` becomes `bar` on a terminal and `lines` otherwise. */
  constructor(mode: ProgressMode, out: TextSink = stdoutSink()) {
    this.#out = out;
    this.#mode = mode === "auto" ? (out.isTerminal ? "bar" : "lines") : mode;
  }

  /** The effective mode. */
  get mode(): "bar" | "lines" | "none" {
    return this.#mode;
  }

  #line(s: ProgressState): string {
    const vals = Object.entries(s.values).map(([k, v]) => `${k} ${formatValue(v)}`).join(" ");
    const ips = s.imagesPerSec > 0 ? ` ${s.imagesPerSec.toFixed(1)} img/s` : "";
    return `${s.phase} epoch ${s.epoch + 1}/${s.maxEpochs} step ${s.batch}/${s.batches}` +
      `${vals ? " " + vals : ""}${ips} ETA ${formatDuration(s.etaSec)}`;
  }

  /** Redraws the bar (throttled to 10 Hz) in bar mode; nothing in lines mode. */
  tick(s: ProgressState): void {
    this.#out.state?.(s);
    if (this.#mode !== "bar") return;
    const now = performance.now();
    if (now - this.#lastDraw < 100 && s.batch < s.batches) return;
    this.#lastDraw = now;
    const width = 24;
    const done = s.batches ? Math.round((s.batch / s.batches) * width) : 0;
    const bar = "[" + "#".repeat(done) + "-".repeat(width - done) + "]";
    this.#out.write(`\r\x1b[2K${bar} ${this.#line(s)}`);
    this.#barOpen = true;
  }

  /** A periodic plain line (at each logging interval) in lines mode. */
  periodic(s: ProgressState): void {
    if (this.#mode === "lines") {
      this.#out.state?.(s);
      this.#out.write(this.#line(s) + "\n");
    } else this.tick(s);
  }

  /** A message on its own line (epoch summaries, warnings); shown in every mode but none. */
  message(text: string): void {
    if (this.#mode === "none") return;
    if (this.#barOpen) {
      this.#out.write("\r\x1b[2K");
      this.#barOpen = false;
    }
    this.#out.write(text + "\n");
  }
}
