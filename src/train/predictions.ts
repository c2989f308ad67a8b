/**
 * Class predictions (logits and their argmax) of a model over a loader, in loader order: the
 * web app publishes them and its test compares them with a checkpoint loaded in Deno.
 *
 * @module
 */

import { scope } from "../gpu/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Batch } from "../models/types.ts";

/** What `predictClasses` needs of a model. */
export interface ForwardModel {
  /** Logits `[N, classes]` of images `[N, C, H, W]`. */
  forward(x: Tensor): Tensor;
  /** Switches to evaluation mode (BatchNorm running statistics). */
  eval(): void;
}

/** Predictions over a loader: each image's logits and argmax class. */
export interface Predictions {
  /** Argmax class of each image (the lower index wins ties). */
  classes: number[];
  /** Logits of each image. */
  logits: number[][];
}

/** The logits and argmax class of every image the loader yields, in order. */
export async function predictClasses(
  model: ForwardModel,
  loader: AsyncIterable<Batch>,
): Promise<Predictions> {
  model.eval();
  const out: number[] = [];
  const rows: number[][] = [];
  for await (const batch of loader) {
    let logits: Tensor;
    try {
      logits = scope(() => noGrad(() => model.forward(batch.images)));
    } finally {
      batch.images.dispose();
      batch.labels.dispose();
    }
    try {
      const [n, c] = logits.shape;
      const v = await logits.toArray();
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let j = 1; j < c; j++) if (v[i * c + j] > v[i * c + best]) best = j;
        out.push(best);
        rows.push(Array.from(v.subarray(i * c, (i + 1) * c)));
      }
    } finally {
      logits.dispose();
    }
  }
  return { classes: out, logits: rows };
}
