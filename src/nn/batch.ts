/**
 * The mini-batch type that data produces and models consume. It lives here, below both
 * (`models` and `data` import `nn`; `models` must not import `data`).
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";

/** One mini-batch: images `[N, C, H, W]` f32 and labels `[N]` i32. */
export interface Batch {
  /** Images, f32 `[N, C, H, W]`. */
  images: Tensor;
  /** Class indices, i32 `[N]`. */
  labels: Tensor;
}
