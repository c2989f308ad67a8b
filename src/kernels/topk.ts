/**
 * Top-k hit counters accumulated on the GPU (hits and support per class), so that accuracy
 * reads back once per epoch, not per step.
 *
 * @module
 */

import topkSrc from "../../shaders/topk_update.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { fmt } from "./shape.ts";

const TOPK = defineKernel("topk_update", topkSrc, { n: "u32", c: "u32", k: "u32" });

/**
 * Checks the operands of a counter update: f32 logits [N, C], i32 targets [N] and i32
 * counters of `size` elements.
 */
export function checkCounterUpdate(
  op: string,
  logits: Tensor,
  targets: Tensor,
  counts: Tensor,
  size: number,
): void {
  if (logits.ndim !== 2 || logits.dtype !== "f32") {
    throw new TypeError(
      `${op}: logits must be f32 [N, C], got ${fmt(logits.shape)} ${logits.dtype}`,
    );
  }
  const n = logits.shape[0];
  if (targets.dtype !== "i32" || targets.ndim !== 1 || targets.shape[0] !== n) {
    throw new TypeError(
      `${op}: targets must be i32 [${n}], got ${fmt(targets.shape)} ${targets.dtype}`,
    );
  }
  if (counts.dtype !== "i32" || counts.size !== size) {
    throw new TypeError(
      `${op}: counters must be i32 with ${size} elements, got ${fmt(counts.shape)} ${counts.dtype}`,
    );
  }
}

/**
 * Adds one batch to `counts` (i32 `[2, C]`: hits then support per target class), in place.
 * A sample hits when its target is among the `k` highest logits; ties go to the lower class
 * index, so `k = 1` is argmax. Targets outside [0, C) are skipped.
 */
export function topkUpdate(
  logits: Tensor,
  targets: Tensor,
  opts: { counts: Tensor; k: number },
): void {
  const c = logits.shape[1];
  checkCounterUpdate("topkUpdate", logits, targets, opts.counts, 2 * c);
  if (!Number.isInteger(opts.k) || opts.k < 1) {
    throw new RangeError(`topkUpdate: k must be an integer >= 1, got ${opts.k}`);
  }
  const n = logits.shape[0];
  dispatch({
    kernel: TOPK.name,
    code: TOPK.code,
    uniform: TOPK.params.pack({ n, c, k: opts.k }),
    buffers: [logits.buffer, targets.buffer, opts.counts.buffer],
    workgroups: gridFor(n, 64),
  });
}
