/**
 * Shared test helpers: device set-up, golden-value loading, closeness checks,
 * finite differences.
 */
import { getDevice, setAdapterClass } from "../src/gpu/device.ts";
import { Tensor } from "../src/gpu/tensor.ts";

// Tests see the kernel heuristics (deterministic choices, no writes to the user's cache
// folder): measured kernel choice is off here and in the processes tests start, unless a test
// turns it on itself.
Deno.env.set("CT_TUNE", "0");

// CT_ADAPTER_CLASS=gpu runs the GPU kernel choices on a CPU adapter (what
// tools/gpu_session.sh runs on a GPU), =cpu the reverse.
const adapterClass = Deno.env.get("CT_ADAPTER_CLASS");
if (adapterClass === "gpu" || adapterClass === "cpu") setAdapterClass(adapterClass);
else if (adapterClass) {
  throw new Error(`CT_ADAPTER_CLASS: expected "gpu" or "cpu", got "${adapterClass}"`);
}

await getDevice();

/** Loads `tests/golden/<name>.json` (written by tests/golden/generate.py). */
export function golden<T = Record<string, unknown>>(name: string): T {
  const url = new URL(`./golden/${name}.json`, import.meta.url);
  return JSON.parse(Deno.readTextFileSync(url)) as T;
}

/** One conv2d case of `golden("nn").conv` (tests/golden/gen_nn.py): inputs, outputs, grads. */
export interface ConvCase {
  name: string;
  x: unknown;
  xShape: number[];
  w: unknown;
  wShape: number[];
  stride: number | [number, number];
  padding: number | [number, number];
  dilation: number | [number, number];
  y: unknown;
  yShape: number[];
  gy: unknown;
  dx: unknown;
  dw: unknown;
}

/** Flattens nested number arrays. */
export function flat(x: unknown): number[] {
  if (typeof x === "number") return [x];
  if (Array.isArray(x)) return x.flatMap(flat);
  if (ArrayBuffer.isView(x)) return Array.from(x as Float32Array);
  throw new TypeError(`not numeric: ${typeof x}`);
}

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise, with a message naming the worst index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: unknown,
  opts: { rtol?: number; atol?: number; msg?: string } = {},
): void {
  const e = flat(expected);
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  if (actual.length !== e.length) {
    throw new Error(`${opts.msg ?? ""} length ${actual.length} != expected ${e.length}`);
  }
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < e.length; i++) {
    const err = Math.abs(actual[i] - e[i]) - (atol + rtol * Math.abs(e[i]));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${opts.msg ?? "values differ"}: at ${worst} got ${actual[worst]}, expected ${
        e[worst]
      } (rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** Uploads a nested/flat array with its shape. */
export function t(data: unknown, shape: number[], requiresGrad = false): Tensor {
  return Tensor.fromArray(flat(data), shape, { requiresGrad });
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function rand(n: number, seed = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    out[i] = (((r ^ (r >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * Central finite differences of a scalar function of host data, in f64 on the host
 * side of the perturbation (the function itself runs on the GPU in f32).
 */
export async function numericGrad(
  f: (x: Float32Array) => Promise<number>,
  x: Float32Array,
  eps = 1e-2,
): Promise<Float32Array> {
  const g = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xp = x.slice();
    xp[i] += eps;
    const xm = x.slice();
    xm[i] -= eps;
    g[i] = ((await f(xp)) - (await f(xm))) / (2 * eps);
  }
  return g;
}

/**
 * Resolves once tests/fixtures/large/ is complete. .ci/run writes those fixtures
 * (tests/golden/export_full.py) while the tests already run, and names in
 * CT_LARGE_FIXTURES_DONE the file it creates once the export has ended, whether or not it
 * succeeded: the full-size tests wait for it before they look for their files, so they neither
 * read a half-written file nor skip a fixture that is still on its way. Without the variable
 * (a plain `deno test`) it resolves at once.
 */
export async function largeFixturesReady(): Promise<void> {
  const marker = Deno.env.get("CT_LARGE_FIXTURES_DONE");
  if (!marker) return;
  const limitMs = 15 * 60_000;
  const start = Date.now();
  for (;;) {
    try {
      Deno.statSync(marker);
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (Date.now() - start > limitMs) {
      throw new Error(
        `largeFixturesReady: CT_LARGE_FIXTURES_DONE file ${marker} still missing after ${
          limitMs / 60_000
        } min: the fixture export did not end`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
