/**
 * tests/helpers.ts for the browser bundle (the bundle's import map points the real file
 * here): the same exports, but `assertClose` also records the largest |actual − expected|
 * of the test that is running, for the check table.
 *
 * @module
 */
import * as real from "../../tests/helpers.ts";

export type { ConvCase } from "../../tests/helpers.ts";
export const { golden, flat, t, rand, numericGrad } = real;

/** Largest |actual − expected| seen by `assertClose` since the last `resetMaxError()`. */
export const errorStats = { maxAbs: 0, compared: 0 };

/** Starts a new test's error tally. */
export function resetMaxError(): void {
  errorStats.maxAbs = 0;
  errorStats.compared = 0;
}

/** tests/helpers.ts `assertClose`, recording the largest absolute error first. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: unknown,
  opts: { rtol?: number; atol?: number; msg?: string } = {},
): void {
  const e = real.flat(expected);
  const n = Math.min(actual.length, e.length);
  for (let i = 0; i < n; i++) {
    const d = Math.abs(actual[i] - e[i]);
    if (d > errorStats.maxAbs || Number.isNaN(d)) errorStats.maxAbs = Number.isNaN(d) ? NaN : d;
  }
  errorStats.compared += n;
  real.assertClose(actual, expected, opts);
}
