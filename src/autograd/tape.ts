/**
 * The autograd tape. Each differentiable op records a `GradNode` on its output (see
 * `ops.ts`, where every forward sits beside its backward); `backward(loss)` walks the
 * nodes in reverse topological order, frees each intermediate gradient as soon as it is
 * consumed, and accumulates into `.grad` of leaves until `zeroGrad()`.
 *
 * @module
 */

import { type GradNode, keep, type Tensor } from "../gpu/tensor.ts";
import { binary, full } from "../kernels/elementwise.ts";
import { fmt } from "../kernels/shape.ts";

let gradEnabled = true;

/** Whether ops currently record onto the tape. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording (async functions too: recording resumes when it settles). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      gradEnabled = prev;
    }) as T;
  }
  gradEnabled = prev;
  return result;
}

/** Attaches a backward rule to `out` when recording and an input needs gradients. */
export function record(
  out: Tensor,
  inputs: Tensor[],
  name: string,
  backwardFn: GradNode["backward"],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { name, inputs, backward: backwardFn };
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/** a + b as a new tensor; disposes both. */
function addConsuming(a: Tensor, b: Tensor): Tensor {
  const sum = binary("add", a, b);
  a.dispose();
  b.dispose();
  return sum;
}

/** Options of `backward`. */
export interface BackwardOptions {
  /**
   * Dispose each intermediate tensor of the graph (an op's output, not a leaf, not `loss`)
   * as soon as its gradient has been propagated, instead of at the end of the enclosing
   * scope: the saved activations then stop adding up while the gradients grow, which lowers
   * the peak memory of a training step. Views of them stay valid (storage is shared). Use
   * it when nothing reads those tensors after `backward` (read them, or record the reads,
   * before). Default false.
   */
  releaseGraph?: boolean;
}

/**
 * Back-propagates from `loss` (a scalar unless `grad` is given). Leaves accumulate into
 * `.grad` (kept past any scope); intermediate gradients are disposed once consumed and
 * the graph is released afterwards.
 */
export function backward(loss: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!loss.requiresGrad) {
    throw new Error("backward: the tensor does not require grad (no recorded op leads to it)");
  }
  if (!grad && loss.size !== 1) {
    throw new RangeError(`backward: a gradient is needed for non-scalar ${fmt(loss.shape)}`);
  }
  const order = topoOrder(loss);
  const grads = new Map<Tensor, Tensor>();
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    grads.set(loss, grad ? grad.view(loss.shape) : full(loss.shape, 1));
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        t.grad = keep(t.grad ? addConsuming(t.grad, g) : g);
        continue;
      }
      const node = t.node;
      const inGrads = node.backward(g);
      g.dispose();
      node.inputs.forEach((inp, i) => {
        const gi = inGrads[i];
        if (!gi) return;
        if (!inp.requiresGrad) {
          gi.dispose();
          return;
        }
        if (fmt(gi.shape) !== fmt(inp.shape)) {
          throw new Error(
            `backward of ${node.name}: gradient ${fmt(gi.shape)} for input ${fmt(inp.shape)}`,
          );
        }
        const have = grads.get(inp);
        grads.set(inp, have ? addConsuming(have, gi) : gi);
      });
      t.node = null;
      // Every node that saved t consumed it (as an input) and so ran before t's own node.
      if (opts.releaseGraph && t !== loss) t.dispose();
    }
  } finally {
    gradEnabled = prev;
    for (const g of grads.values()) g.dispose();
  }
}

/** Disposes and clears the gradients of `params`. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}
