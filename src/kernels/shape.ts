/**
 * Shape helpers shared by the kernel wrappers: broadcasting and contiguous strides.
 *
 * @module
 */

/** Formats a shape for error messages: `[2, 3]`. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Row-major strides of a contiguous tensor. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** NumPy broadcast of two shapes; throws naming both when incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op = "op"): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides to read `shape` as if broadcast to `target` (0 along broadcast dims). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const s = stridesOf(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => {
    const j = i - off;
    if (j < 0 || shape[j] === 1) return 0;
    return s[j];
  });
}

/** Product of dims. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Normalises a possibly negative axis; throws when out of range. */
export function normAxis(axis: number, ndim: number, op = "op"): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(ndim, 1)) {
    throw new RangeError(`${op}: axis ${axis} out of range for ${ndim} dims`);
  }
  return a;
}

/** Pads a list to 8 entries (uniform arrays of two vec4). */
export function pad8(v: readonly number[]): number[] {
  if (v.length > 8) throw new RangeError(`at most 8 dims are supported, got ${v.length}`);
  return [...v, ...new Array(8 - v.length).fill(0)];
}

/**
 * Merges adjacent dims that every stride list walks contiguously (`s[i] = s[i+1]·shape[i+1]`)
 * and drops dims of size 1, so strided kernels decompose fewer coordinates per element.
 * Returns the new shape and one stride list per input list; the element order is unchanged.
 */
export function collapseDims(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (
      last >= 0 &&
      strides.every((s, k) => outStrides[k][last] === s[i] * shape[i])
    ) {
      outShape[last] *= shape[i];
      strides.forEach((s, k) => (outStrides[k][last] = s[i]));
    } else {
      outShape.push(shape[i]);
      strides.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * How the vec4 broadcast kernels (`binary_broadcast4.wgsl`) read each operand of a collapsed broadcast (`strides[k]` per
 * operand) when the output's last dim is a multiple of 4: `splat` for stride 0 along it,
 * `vec4` for stride 1 with every other stride a multiple of 4; null when some operand is
 * neither, or the last dim is not a multiple of 4 (then the scalar kernel runs).
 */
export function vec4Modes(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): ("vec4" | "splat")[] | null {
  const last = shape.length - 1;
  if (last < 0 || shape[last] % 4 !== 0) return null;
  const modes: ("vec4" | "splat")[] = [];
  for (const s of strides) {
    if (s[last] === 0) modes.push("splat");
    else if (s[last] === 1 && s.every((v, d) => d === last || v % 4 === 0)) modes.push("vec4");
    else return null;
  }
  return modes;
}

/** `shape` and `strides` of a collapsed view with the last dim counted in vec4s. */
export function perVec4(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const last = shape.length - 1;
  return {
    shape: shape.map((d, i) => (i === last ? d / 4 : d)),
    strides: strides.map((s) => s.map((v, i) => (i === last ? 4 * v : v))),
  };
}
