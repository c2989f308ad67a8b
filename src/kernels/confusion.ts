/**
 * The confusion matrix accumulated on the GPU, so that it reads back once per epoch.
 *
 * @module
 */

import confusionSrc from "../../shaders/confusion_update.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { checkCounterUpdate } from "./topk.ts";

const CONFUSION = defineKernel("confusion_update", confusionSrc, { n: "u32", c: "u32" });

/**
 * Adds one batch to a confusion matrix `counts` (i32 `[C, C]`, rows = target, columns =
 * argmax prediction, first maximum on ties), in place. Targets outside [0, C) are skipped.
 */
export function confusionUpdate(logits: Tensor, targets: Tensor, opts: { counts: Tensor }): void {
  const c = logits.shape[1];
  checkCounterUpdate("confusionUpdate", logits, targets, opts.counts, c * c);
  const n = logits.shape[0];
  dispatch({
    kernel: CONFUSION.name,
    code: CONFUSION.code,
    uniform: CONFUSION.params.pack({ n, c }),
    buffers: [logits.buffer, targets.buffer, opts.counts.buffer],
    workgroups: gridFor(n, 64),
  });
}
