/**
 * Classification counters accumulated on the GPU (top-k hits and support per class, the
 * confusion matrix), so that metrics read back once per epoch, not per step.
 *
 * @module
 */

import topkSrc from "../../shaders/topk_update.wgsl" with { type: "text" };
import { dispatch, gridFor, Uniforms } from "../gpu/dispatch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { fmt } from "./shape.ts";

function check(op: string, logits: Tensor, targets: Tensor, counts: Tensor, size: number): void {
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
  check("topkUpdate", logits, targets, opts.counts, 2 * c);
  if (!Number.isInteger(opts.k) || opts.k < 1) {
    throw new RangeError(`topkUpdate: k must be an integer >= 1, got ${opts.k}`);
  }
  const n = logits.shape[0];
  dispatch({
    kernel: "topk_update.topk",
    code: topkSrc,
    overrides: { MODE: 0 },
    uniform: new Uniforms().u32(n).u32(c).u32(opts.k).bytes(),
    buffers: [logits.buffer, targets.buffer, opts.counts.buffer],
    workgroups: gridFor(n, 64),
  });
}

/**
 * Adds one batch to a confusion matrix `counts` (i32 `[C, C]`, rows = target, columns =
 * argmax prediction, first maximum on ties), in place. Targets outside [0, C) are skipped.
 */
export function confusionUpdate(logits: Tensor, targets: Tensor, opts: { counts: Tensor }): void {
  const c = logits.shape[1];
  check("confusionUpdate", logits, targets, opts.counts, c * c);
  const n = logits.shape[0];
  dispatch({
    kernel: "topk_update.confusion",
    code: topkSrc,
    overrides: { MODE: 1 },
    uniform: new Uniforms().u32(n).u32(c).u32(1).bytes(),
    buffers: [logits.buffer, targets.buffer, opts.counts.buffer],
    workgroups: gridFor(n, 64),
  });
}
