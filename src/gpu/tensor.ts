/**
 * `Tensor`: contiguous f32, i32 or f16 data in a pooled GPU buffer, with shape, reference-counted
 * storage (reshapes share it), and the fields the autograd tape fills in. Memory is
 * released deterministically: by `dispose()`, or by the enclosing `scope()`.
 *
 * @module
 */

import { acquireBuffer, poolStats, releaseBuffer, resetPeak as resetPoolPeak } from "./pool.ts";
import { readBuffer } from "./dispatch.ts";
import { gpu } from "./device.ts";

/**
 * Element type of a tensor. `f16` (mixed precision, needs the adapter feature `shader-f16`)
 * is stored as element pairs, 2 bytes each; only casts and the mixed-precision ops read it.
 */
export type DType = "f32" | "i32" | "f16";

/** Bytes of `n` elements of `dtype` as stored (f16 pairs padded to whole 4-byte words). */
export function storageBytes(n: number, dtype: DType): number {
  return dtype === "f16" ? Math.ceil(n / 2) * 4 : n * 4;
}

/** A recorded operation: its inputs and how to turn the output gradient into theirs. */
export interface GradNode {
  /** Op name, for error messages. */
  name: string;
  /** Inputs of the op, in order. */
  inputs: Tensor[];
  /** Gradients for each input (null where not needed), given the output gradient. */
  backward: (grad: Tensor) => (Tensor | null)[];
}

class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer) {}
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const scopeStack: Set<Tensor>[] = [];
let liveTensors = 0;
let nextId = 1;
const leakRegistry = new FinalizationRegistry<string>((desc) => {
  console.warn(`classifier-training: a tensor ${desc} was garbage-collected without dispose()`);
});

/** Options for creating a tensor from host data. */
export interface FromArrayOptions {
  /** Element type; defaults to i32 for an Int32Array, f32 otherwise (f16 rounds to nearest). */
  dtype?: DType;
  /** Marks the tensor as a leaf that collects gradients. */
  requiresGrad?: boolean;
}

/** An n-dimensional array in GPU memory. */
export class Tensor {
  /** Unique id, for debugging. */
  readonly id: number = nextId++;
  /** Dimensions, outermost first; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor, or null. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when recorded on the tape. */
  node: GradNode | null = null;
  #storage: Storage | null;
  #scope: Set<Tensor> | null = null;
  #token = {};

  /** Wraps storage; use `Tensor.empty`, `Tensor.fromArray` or ops instead. */
  private constructor(storage: Storage, shape: readonly number[], dtype: DType) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new RangeError(`invalid shape [${shape.join(", ")}]: dims must be integers >= 0`);
      }
    }
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = numel(shape);
    liveTensors++;
    const top = scopeStack[scopeStack.length - 1];
    if (top) {
      top.add(this);
      this.#scope = top;
    }
    leakRegistry.register(this, `[${shape.join(", ")}] ${dtype}`, this.#token);
  }

  /**
   * An uninitialised tensor of the given shape, for GPU work to write. Its buffer may be one
   * that recorded, unsubmitted dispatches still read, so never fill it with
   * `queue.writeBuffer`: use `Tensor.fromArray` to upload host data.
   */
  static empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
    return Tensor.#alloc(shape, dtype, false);
  }

  static #alloc(shape: readonly number[], dtype: DType, hostWrite: boolean): Tensor {
    const bytes = Math.max(4, storageBytes(numel(shape), dtype));
    return new Tensor(new Storage(acquireBuffer(bytes, "storage", { hostWrite })), shape, dtype);
  }

  /** Uploads host data; `data.length` must equal the product of `shape`. */
  static fromArray(
    data: ArrayLike<number>,
    shape: readonly number[],
    options: FromArrayOptions = {},
  ): Tensor {
    const dtype = options.dtype ?? (data instanceof Int32Array ? "i32" : "f32");
    const n = numel(shape);
    if (data.length !== n) {
      throw new RangeError(
        `Tensor.fromArray: shape [${shape.join(", ")}] needs ${n} elements, got ${data.length}`,
      );
    }
    const t = Tensor.#alloc(shape, dtype, true);
    if (n > 0) {
      const host = dtype === "f32"
        ? (data instanceof Float32Array ? data : Float32Array.from(data))
        : dtype === "f16"
        ? Float16Array.from({ length: 2 * Math.ceil(n / 2) }, (_, i) => i < n ? data[i] : 0)
        : (data instanceof Int32Array ? data : Int32Array.from(data));
      gpu().device.queue.writeBuffer(
        t.buffer,
        0,
        host.buffer as ArrayBuffer,
        host.byteOffset,
        storageBytes(n, dtype),
      );
    }
    t.requiresGrad = options.requiresGrad ?? false;
    return t;
  }

  /** The GPU buffer holding the data (may be larger than `storageBytes(size, dtype)`). */
  get buffer(): GPUBuffer {
    if (!this.#storage) {
      throw new Error(`tensor [${this.shape.join(", ")}] ${this.dtype} was already disposed`);
    }
    return this.#storage.buffer;
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** True once `dispose()` ran. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** A tensor of a new shape sharing this storage (no copy, no tape record). */
  view(shape: readonly number[]): Tensor {
    const n = numel(shape);
    if (n !== this.size) {
      throw new RangeError(
        `cannot view [${this.shape.join(", ")}] (${this.size} elements) as [${shape.join(", ")}]`,
      );
    }
    const s = this.#storage;
    if (!s) throw new Error("view of a disposed tensor");
    s.refs++;
    return new Tensor(s, shape, this.dtype);
  }

  /** Reads the data back to the host (f16 widened to f32): the one readback path (~11 ms). */
  async toArray(): Promise<Float32Array | Int32Array> {
    const bytes = await readBuffer(this.buffer, storageBytes(this.size, this.dtype));
    if (this.dtype === "f16") return Float32Array.from(new Float16Array(bytes, 0, this.size));
    return this.dtype === "f32" ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`item() needs 1 element, got [${this.shape}]`);
    return (await this.toArray())[0];
  }

  /** `using t = …` disposes the tensor at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Releases the GPU memory now (idempotent); the gradient is disposed with it. */
  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    liveTensors--;
    leakRegistry.unregister(this.#token);
    this.#scope?.delete(this);
    this.#scope = null;
    this.node = null;
    if (--s.refs === 0) releaseBuffer(s.buffer);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Removes this tensor from its scope so it outlives it; returns itself. */
  keep(): this {
    this.#scope?.delete(this);
    this.#scope = null;
    return this;
  }

  /** @internal moves this tensor into `target` (used when a scope returns it). */
  adoptInto(target: Set<Tensor> | null): void {
    this.#scope?.delete(this);
    this.#scope = target;
    target?.add(this);
  }

  /** Short description, e.g. `Tensor([2, 3] f32)`. */
  toString(): string {
    return `Tensor([${this.shape.join(", ")}] ${this.dtype})`;
  }
}

/** Keeps `t` alive past the enclosing scope; returns it. */
export function keep<T extends Tensor>(t: T): T {
  return t.keep();
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function closeScope(s: Set<Tensor>, result: unknown): void {
  const idx = scopeStack.lastIndexOf(s);
  if (idx !== scopeStack.length - 1) {
    throw new Error("scope() closed out of order: concurrent async scopes are not supported");
  }
  scopeStack.pop();
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = scopeStack[scopeStack.length - 1] ?? null;
  // Only tensors made in this scope move to the parent: returning a tensor that already
  // belonged elsewhere (a parameter, an outer scope's input) must not change its owner.
  for (const t of survivors) if (!t.disposed && s.has(t)) t.adoptInto(parent);
  for (const t of [...s]) if (!survivors.has(t)) t.dispose();
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those returned (found in
 * the result, arrays and plain objects included) and those passed to `keep()`. Works
 * across `await` when `fn` is async (one async scope at a time per nesting level).
 */
export function scope<T>(fn: () => T): T {
  const s = new Set<Tensor>();
  scopeStack.push(s);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(s, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (r) => {
        closeScope(s, r);
        return r;
      },
      (e) => {
        closeScope(s, undefined);
        throw e;
      },
    ) as T;
  }
  closeScope(s, result);
  return result;
}

/** Live tensors, buffers and bytes: what a test asserts stays flat. */
export interface MemoryStats {
  /** Tensors not yet disposed. */
  liveTensors: number;
  /** GPU buffers in use. */
  liveBuffers: number;
  /** Bytes of buffers in use. */
  liveBytes: number;
  /** Idle buffers in the pool. */
  pooledBuffers: number;
  /** Bytes of idle buffers. */
  pooledBytes: number;
  /**
   * Highest bytes in use since start or the last `resetPeak()`: the GPU memory a step needs,
   * counted in pool buckets (what is allocated), idle pooled buffers excluded.
   */
  peakBytes: number;
}

/** Restarts `memoryStats().peakBytes` at the bytes in use now. */
export function resetPeak(): void {
  resetPoolPeak();
}

/** Current memory statistics. */
export function memoryStats(): MemoryStats {
  return { liveTensors, ...poolStats() };
}
