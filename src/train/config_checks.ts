/**
 * Cross-field checks of the training config that concern the trainer's callbacks. The
 * config validator calls them, so their errors carry the file:line of the field.
 *
 * @module
 */

import type { TrainConfig } from "./config.ts";

/** A failed cross-field check: the field's dot path and what is wrong with it. */
export interface ConfigCheckIssue {
  /** Path of the field to blame (for file:line). */
  path: string[];
  /** What was expected and what was got. */
  message: string;
}

/**
 * With `trainer.limitValBatches: 0` there is no validation, so no `val/` metric is ever
 * logged: a `val/` monitor that is used (`checkpoint.saveBest`, `earlyStopping`) cannot
 * work. Returns the first such monitor, or null.
 */
export function checkValidationMonitors(cfg: TrainConfig): ConfigCheckIssue | null {
  if (cfg.trainer.limitValBatches !== 0 || cfg.trainer.fastDevRun > 0) return null;
  const why = "trainer.limitValBatches is 0, so validation never runs and no val/ metric is " +
    "logged";
  if (cfg.checkpoint.saveBest && cfg.checkpoint.monitor.startsWith("val/")) {
    return {
      path: ["checkpoint", "monitor"],
      message: `expected a metric logged without validation (e.g. train/loss_epoch with mode ` +
        `min) or checkpoint.saveBest: false, got "${cfg.checkpoint.monitor}": ${why}`,
    };
  }
  if (cfg.earlyStopping?.monitor.startsWith("val/")) {
    return {
      path: ["earlyStopping", "monitor"],
      message: `expected a metric logged without validation (e.g. train/loss_epoch with mode ` +
        `min), got "${cfg.earlyStopping.monitor}": ${why}`,
    };
  }
  return null;
}
