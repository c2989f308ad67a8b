/**
 * Differentiable ops: each forward calls a kernel and records, right beside it, the rule
 * that maps the output gradient to the input gradients.
 *
 * @module
 */

import { Tensor } from "../gpu/tensor.ts";
import { binary, type BinaryOp, full, unary } from "../kernels/elementwise.ts";
import * as copy from "../kernels/copy.ts";
import { reduce } from "../kernels/reduce.ts";
import { matmul as matmulKernel } from "../kernels/matmul.ts";
import { fmt, normAxis, numel } from "../kernels/shape.ts";
import { record } from "./tape.ts";
import { cast } from "../kernels/cast.ts";

/** Sums `g` over the dims that broadcasting added or stretched, giving `shape`. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (fmt(g.shape) === fmt(shape)) return g.view(shape);
  let cur = g.view(g.shape);
  while (cur.ndim > shape.length) {
    const next = reduce("sum", cur, { axis: 0 }).values;
    cur.dispose();
    cur = next;
  }
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && cur.shape[i] !== 1) {
      const next = reduce("sum", cur, { axis: i, keepDim: true }).values;
      cur.dispose();
      cur = next;
    }
  }
  return cur;
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor, back: (g: Tensor) => [Tensor, Tensor]) {
  if (a.dtype === "f16" || b.dtype === "f16") {
    throw new TypeError(
      `${op}: expected f32 tensors, got ${a.dtype} and ${b.dtype} (cast f16 first)`,
    );
  }
  return record(binary(op, a, b), [a, b], op, (g) => {
    const [ga, gb] = back(g);
    const ra = sumToShape(ga, a.shape);
    const rb = sumToShape(gb, b.shape);
    ga.dispose();
    gb.dispose();
    return [ra, rb];
  });
}

/** a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryOp("add", a, b, (g) => [g.view(g.shape), g.view(g.shape)]);
}

/** a − b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binaryOp("sub", a, b, (g) => [g.view(g.shape), unary("neg", g)]);
}

/** a · b elementwise (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binaryOp("mul", a, b, (g) => [binary("mul", g, b), binary("mul", g, a)]);
}

/** a / b elementwise (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  return binaryOp("div", a, b, (g) => {
    const ga = binary("div", g, b);
    // d(a/b)/db = -a/b² = -(g/b)·(a/b)
    const q = binary("div", a, b);
    const t = binary("mul", ga, q);
    const gb = unary("neg", t);
    q.dispose();
    t.dispose();
    return [ga, gb];
  });
}

/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  return record(unary("relu", x), [x], "relu", (g) => [binary("reluGrad", g, x)]);
}

/** −x. */
export function neg(x: Tensor): Tensor {
  return record(unary("neg", x), [x], "neg", (g) => [unary("neg", g)]);
}

/** eˣ. */
export function exp(x: Tensor): Tensor {
  const out = unary("exp", x);
  return record(out, [x], "exp", (g) => [binary("mul", g, out)]);
}

/** ln x. */
export function log(x: Tensor): Tensor {
  return record(unary("log", x), [x], "log", (g) => [binary("div", g, x)]);
}

/** c · t as a new tensor; disposes `t`. */
function scaleConsuming(t: Tensor, c: number): Tensor {
  const r = unary("affine", t, c, 0);
  t.dispose();
  return r;
}

/** √x. */
export function sqrt(x: Tensor): Tensor {
  const out = unary("sqrt", x);
  return record(out, [x], "sqrt", (g) => [scaleConsuming(binary("div", g, out), 0.5)]);
}

/** x². */
export function square(x: Tensor): Tensor {
  return record(unary("square", x), [x], "square", (g) => [scaleConsuming(binary("mul", g, x), 2)]);
}

/** x + c. */
export function addScalar(x: Tensor, c: number): Tensor {
  return record(unary("affine", x, 1, c), [x], "addScalar", (g) => [g.view(g.shape)]);
}

/** x · c. */
export function mulScalar(x: Tensor, c: number): Tensor {
  return record(unary("affine", x, c, 0), [x], "mulScalar", (g) => [unary("affine", g, c, 0)]);
}

/** xᵖ for a constant p. */
export function powScalar(x: Tensor, p: number): Tensor {
  return record(unary("powScalar", x, p), [x], "powScalar", (g) => {
    const d = unary("powScalar", x, p - 1);
    const s = unary("affine", d, p, 0);
    const r = binary("mul", g, s);
    d.dispose();
    s.dispose();
    return [r];
  });
}

/** Options of the axis reductions. */
export interface AxisOptions {
  /** Axis to reduce; all elements when omitted. */
  axis?: number;
  /** Keep the reduced axis as size 1. */
  keepDim?: boolean;
}

function reducedShape(x: Tensor, opts: AxisOptions): readonly number[] {
  if (opts.axis === undefined) return opts.keepDim ? x.shape.map(() => 1) : [];
  const ax = normAxis(opts.axis, x.ndim, "reduce");
  return opts.keepDim
    ? x.shape.map((d, i) => (i === ax ? 1 : d))
    : x.shape.filter((_, i) => i !== ax);
}

function reduceForward(op: "sum" | "mean" | "max", x: Tensor, opts: AxisOptions) {
  const src = opts.axis === undefined ? x.view([x.size]) : x.view(x.shape);
  const axis = opts.axis === undefined ? 0 : opts.axis;
  const r = reduce(op, src, { axis });
  src.dispose();
  const shape = reducedShape(x, opts);
  const values = r.values.view(shape);
  r.values.dispose();
  return { values, indices: r.indices };
}

/** Gradient of a reduction broadcast back over the reduced axis, times `scale`. */
function spread(g: Tensor, x: Tensor, opts: AxisOptions, scale: number): Tensor {
  const kept = opts.axis === undefined
    ? g.view(x.shape.map(() => 1))
    : g.view(reducedShape(x, { ...opts, keepDim: true }));
  const e = copy.expand(kept, x.shape);
  kept.dispose();
  return scale === 1 ? e : scaleConsuming(e, scale);
}

/** Sum over an axis, or over everything. */
export function sum(x: Tensor, opts: AxisOptions = {}): Tensor {
  const { values } = reduceForward("sum", x, opts);
  return record(values, [x], "sum", (g) => [spread(g, x, opts, 1)]);
}

/** Mean over an axis, or over everything. */
export function mean(x: Tensor, opts: AxisOptions = {}): Tensor {
  const { values } = reduceForward("mean", x, opts);
  const n = opts.axis === undefined ? x.size : x.shape[normAxis(opts.axis, x.ndim)];
  return record(values, [x], "mean", (g) => [spread(g, x, opts, 1 / n)]);
}

/** Max over an axis (gradient to the first maximum), or over everything. */
export function max(x: Tensor, opts: AxisOptions = {}): Tensor {
  const { values, indices } = reduceForward("max", x, opts);
  return record(values, [x], "max", (g) => {
    // one-hot of the argmax along the axis, times g broadcast.
    const ax = opts.axis === undefined ? 0 : normAxis(opts.axis, x.ndim);
    const flat = opts.axis === undefined;
    const xShape = flat ? [x.size] : x.shape;
    const keptShape = xShape.map((d, i) => (i === ax ? 1 : d));
    const idx = indices!.view(keptShape);
    const iota = arangeAlong(xShape, ax);
    const idxF = cast(idx, "f32");
    const mask = binary("eq", iota, idxF);
    const gk = g.view(keptShape);
    const r = binary("mul", mask, gk);
    for (const t of [idx, iota, idxF, mask, gk]) t.dispose();
    const shaped = r.view(x.shape);
    r.dispose();
    return [shaped];
  });
}

function arangeAlong(shape: readonly number[], axis: number): Tensor {
  const n = shape[axis];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  const line = Tensor.fromArray(data, shape.map((d, i) => (i === axis ? d : 1)));
  const e = copy.expand(line, shape);
  line.dispose();
  return e;
}

/** Matrix product over the last two dims (see kernels/matmul for shapes). */
export function matmul(
  a: Tensor,
  b: Tensor,
  opts: { transA?: boolean; transB?: boolean } = {},
): Tensor {
  const out = matmulKernel(a, b, opts);
  return record(out, [a, b], "matmul", (g) => {
    // C = op(A)·op(B): dA = g·op(B)ᵀ (transposed back if A was), dB likewise.
    const ga = opts.transA
      ? matmulKernel(b, g, { transA: !!opts.transB, transB: true })
      : matmulKernel(g, b, { transB: !opts.transB });
    const gb = opts.transB
      ? matmulKernel(g, a, { transA: true, transB: !!opts.transA })
      : matmulKernel(a, g, { transA: !opts.transA });
    return [reduceBatch(ga, a.shape), reduceBatch(gb, b.shape)];
  });
}

function reduceBatch(g: Tensor, shape: readonly number[]): Tensor {
  if (g.ndim === shape.length) return g;
  const r = sumToShape(g, shape);
  g.dispose();
  return r;
}

/** Same data, new shape (one dim may be −1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = numel(shape.filter((d) => d !== -1));
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  const out = x.view(resolved);
  return record(out, [x], "reshape", (g) => [g.view(x.shape)]);
}

/** Reorders dims. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return record(copy.permute(x, perm), [x], "permute", (g) => [copy.permute(g, inv)]);
}

/** Swaps the last two dims. */
export function transpose(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[x.ndim - 1] = x.ndim - 2;
  perm[x.ndim - 2] = x.ndim - 1;
  return permute(x, perm);
}

/** Narrows `axis` to `[start, start + length)`. */
export function slice(x: Tensor, axis: number, start: number, length: number): Tensor {
  const ax = normAxis(axis, x.ndim, "slice");
  return record(copy.slice(x, ax, start, length), [x], "slice", (g) => {
    const z = full(x.shape, 0);
    copy.writeSlice(z, g, ax, start);
    return [z];
  });
}

/** Concatenates along `axis`. */
export function concat(xs: Tensor[], axis: number): Tensor {
  const ax = normAxis(axis, xs[0]?.ndim ?? 1, "concat");
  return record(copy.concat(xs, ax), xs, "concat", (g) => {
    let at = 0;
    return xs.map((t) => {
      const s = copy.slice(g, ax, at, t.shape[ax]);
      at += t.shape[ax];
      return s;
    });
  });
}

/** Broadcasts to `shape` (materialised). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return record(copy.expand(x, shape), [x], "broadcastTo", (g) => [sumToShape(g, x.shape)]);
}

/** A tensor sharing data with `x` but cut from the tape. */
export function detach(x: Tensor): Tensor {
  return x.view(x.shape);
}
