/**
 * Class predictions (argmax of the logits) of a model over a loader, in loader order: the
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

/** The argmax class of every image the loader yields (the lower index wins ties). */
export async function predictClasses(
  model: ForwardModel,
  loader: AsyncIterable<Batch>,
): Promise<number[]> {
  model.eval();
  const out: number[] = [];
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
      }
    } finally {
      logits.dispose();
    }
  }
  return out;
}
