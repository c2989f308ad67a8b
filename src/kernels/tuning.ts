/**
 * The kernel families the autotuner measures (see `src/gpu/tune.ts`), and the switch that
 * turns measured choice on for them. Today: `matmul` (`register` vs `tiled`, bucketed by
 * [M, N, K]); conv's direct vs im2col choice is the next family (hook: `useIm2col`).
 *
 * @module
 */

import { type ChoiceTable, enableTuning, registerTuneFamily } from "../gpu/tune.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "./elementwise.ts";
import { matmul } from "./matmul.ts";

/** Candidates of the `matmul` family. */
export const MATMUL_CANDIDATES = ["register", "tiled"] as const;

let registered = false;

/** Registers the families (idempotent). */
export function registerKernelFamilies(): void {
  if (registered) return;
  registered = true;
  registerTuneFamily("matmul", {
    candidates: MATMUL_CANDIDATES,
    bench([m, n, k], candidate) {
      const a = fillInPlace(Tensor.empty([m, k]), 0.5).keep();
      const b = fillInPlace(Tensor.empty([k, n]), 0.25).keep();
      const variant = candidate as (typeof MATMUL_CANDIDATES)[number];
      return {
        run: () => matmul(a, b, { variant }).dispose(),
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
  });
}

/**
 * Turns measured kernel choice on for every family here, starting from `choices` (a cache
 * file's table or a resumed run's). NOTE: tests leave it off, so they exercise the
 * heuristics unless a test turns it on.
 */
export function enableKernelTuning(choices: ChoiceTable = {}): void {
  registerKernelFamilies();
  enableTuning(choices);
}
