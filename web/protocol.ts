/**
 * Messages between the web page and its training worker.
 *
 * @module
 */

import type { MetricRecord } from "../src/train/loggers.ts";
import type { ProgressState } from "../src/train/progress.ts";

/** A picked file and where it is mounted in the worker's in-memory file system. */
export interface PickedFile {
  /** Mount path, e.g. `/picked/flowers/train/rose/1.jpg`. */
  path: string;
  /** The file (read lazily in the worker). */
  file: Blob;
}

/** A file the worker hands back (checkpoint, report, ONNX). */
export interface ResultFile {
  /** File name (no folder). */
  name: string;
  /**
   * Contents. A Blob crosses to the page by reference (a checkpoint is ~135 MB: as bytes it
   * would be copied by the message and again into the download's Blob).
   */
  blob: Blob;
  /** What it is, for the page's download list. */
  kind: "checkpoint" | "report" | "onnx" | "log";
}

/** Page → worker. */
export type ToWorker =
  | {
    type: "start";
    /** Settings as YAML (the CLI's config format). */
    yaml: string;
    /** `key=value` dot-path overrides applied after the YAML. */
    overrides: string[];
    /** Picked data files to mount. */
    files: PickedFile[];
  }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "predict"; name: string; bytes: Uint8Array };

/** Everything the page draws from (report figures included). */
export interface ReportView {
  /** Class names, index order. */
  classNames: string[];
  /** Confusion matrix of the test (or val) evaluation. */
  confusion: number[][] | null;
  /** Per-class accuracy, index order. */
  perClass: number[] | null;
  /** Where they come from. */
  evalLabel: string;
}

/** Worker → page. */
export type FromWorker =
  | { type: "adapter"; description: string }
  | { type: "log"; text: string }
  | { type: "progress"; state: ProgressState }
  | { type: "records"; records: MetricRecord[] }
  | { type: "corrupt"; list: string[] }
  | { type: "stopped"; message: string; files: ResultFile[] }
  | {
    type: "done";
    summary: Record<string, unknown>;
    view: ReportView;
    files: ResultFile[];
  }
  | { type: "predicted"; name: string; top: { name: string; probability: number }[] }
  | {
    type: "error";
    message: string;
    /** "config": a settings error; "device": the GPU device was lost; "run": anything else. */
    kind: "config" | "device" | "run";
    /** The last checkpoint written, if any (still downloadable). */
    files: ResultFile[];
  };
