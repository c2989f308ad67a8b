/**
 * Optimiser and learning-rate schedules.
 *
 * @module
 */

export * from "./adamw.ts";
export * from "./lr_scheduler.ts";
export * from "./clip.ts";
export * from "./grad_scaler.ts";
