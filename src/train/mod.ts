/**
 * Training: the YAML config, the Lightning-style trainer, run-folder logs (CSV, JSONL,
 * TensorBoard), checkpoints with exact resume, and the HTML report.
 *
 * @module
 */

export * from "./config.ts";
export * from "./trainer.ts";
export * from "./checkpoint.ts";
export * from "./loggers.ts";
export * from "./tensorboard.ts";
export * from "./report.ts";
export * from "./progress.ts";
export * from "./metric_sink.ts";
export * from "./callbacks.ts";
export * from "./resume.ts";
export * from "./run_dir.ts";
export * from "./config_checks.ts";
