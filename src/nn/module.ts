/**
 * `Module`: the base of every layer and model. It owns its parameters and buffers
 * (long-lived GPU tensors, outside any `scope()`), frees them in `dispose()`, and
 * enumerates them in PyTorch's `state_dict` order: own parameters, own buffers, then each
 * child in registration order, depth first.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";
import { clone, stridedCopy } from "../kernels/copy.ts";
import { fmt, stridesOf } from "../kernels/shape.ts";

/** A state dict: names to tensors, in PyTorch's order. */
export type StateDict = Map<string, Tensor>;

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /** Reject missing and unexpected keys (default true). Shape mismatches always fail. */
  strict?: boolean;
}

/** Base class of layers and models. */
export abstract class Module {
  /** Training mode (BatchNorm uses batch statistics, …). */
  training = true;
  /**
   * Frozen: `train()` leaves this module in eval mode, so a frozen BatchNorm keeps using (and
   * never updates) its running statistics. Set by `setFrozen` (models/freeze.ts).
   */
  frozen = false;
  #params = new Map<string, Tensor>();
  #buffers = new Map<string, Tensor>();
  #children = new Map<string, Module>();

  /** Computes the output for `x`. */
  abstract forward(x: Tensor): Tensor;

  /** Registers a trainable parameter (marked `requiresGrad`, kept past scopes). */
  protected registerParameter(name: string, t: Tensor): Tensor {
    this.#checkName(name);
    t.keep();
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** Registers a non-trainable buffer (running statistics, class weights, …). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.#checkName(name);
    t.keep();
    this.#buffers.set(name, t);
    return t;
  }

  /** Replaces a registered buffer's tensor, disposing the old one. */
  protected replaceBuffer(name: string, t: Tensor): Tensor {
    const old = this.#buffers.get(name);
    if (!old) throw new Error(`replaceBuffer: no buffer named "${name}"`);
    if (old !== t) old.dispose();
    t.keep();
    this.#buffers.set(name, t);
    return t;
  }

  /** Registers a child module under `name`. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.#checkName(name);
    this.#children.set(name, m);
    return m;
  }

  #checkName(name: string): void {
    if (this.#params.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`"${name}" is already registered on ${this.constructor.name}`);
    }
  }

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  /** This module and all descendants, with dotted names ("" for this one). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.#children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Parameters with dotted names, in state-dict order. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, t] of m.#params) out.push([prefix ? `${prefix}.${n}` : n, t]);
    }
    return out;
  }

  /** Parameters in state-dict order (the order AdamW sees). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Buffers with dotted names. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, t] of m.#buffers) out.push([prefix ? `${prefix}.${n}` : n, t]);
    }
    return out;
  }

  /** The state dict (parameters and buffers, PyTorch's order); tensors are shared, not copied. */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    const walk = (m: Module, prefix: string) => {
      for (const [n, t] of m.#params) out.set(prefix + n, t);
      for (const [n, t] of m.#buffers) out.set(prefix + n, t);
      for (const [n, c] of m.#children) walk(c, `${prefix}${n}.`);
    };
    walk(this, "");
    return out;
  }

  /**
   * Copies tensors into this module's parameters and buffers (on the GPU). A missing or
   * unexpected key (when strict) or a mis-shaped tensor is an error naming the key.
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, opts: LoadStateDictOptions = {}): void {
    const strict = opts.strict ?? true;
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    if (strict) {
      for (const k of own.keys()) {
        if (!src.has(k)) throw new Error(`loadStateDict: missing key "${k}"`);
      }
      for (const k of src.keys()) {
        if (!own.has(k)) throw new Error(`loadStateDict: unexpected key "${k}"`);
      }
    }
    for (const [k, target] of own) {
      const t = src.get(k);
      if (!t) continue;
      if (t.size !== target.size || (t.ndim > 0 && fmt(t.shape) !== fmt(target.shape))) {
        throw new Error(
          `loadStateDict: "${k}" has shape ${fmt(t.shape)}, expected ${fmt(target.shape)}`,
        );
      }
      if (t.dtype !== target.dtype) {
        throw new Error(`loadStateDict: "${k}" has dtype ${t.dtype}, expected ${target.dtype}`);
      }
      const s = stridesOf([target.size]);
      stridedCopy(t, target, { shape: [target.size], srcStrides: s, dstStrides: s });
    }
  }

  /** A deep copy of the state dict (new tensors, owned by the caller). */
  cloneStateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [k, t] of this.stateDict()) out.set(k, clone(t).keep());
    return out;
  }

  /** Sets training mode on this module and its descendants (frozen ones stay in eval mode). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode && !m.frozen;
    return this;
  }

  /** Sets evaluation mode (same as `train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((a, t) => a + t.size, 0);
  }

  /** `using t = …` disposes the module at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Frees parameters (with their gradients), buffers and children. */
  dispose(): void {
    for (const t of this.#params.values()) t.dispose();
    for (const t of this.#buffers.values()) t.dispose();
    for (const c of this.#children.values()) c.dispose();
    this.#params.clear();
    this.#buffers.clear();
    this.#children.clear();
  }
}
