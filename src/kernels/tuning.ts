/**
 * The kernel families the autotuner measures (see `src/gpu/tune.ts`), and the switch that
 * turns measured choice on for them. Today: `matmul` (`register` vs `tiled`, bucketed by
 * [M, N, K]) and `bn_reduce` (the workgroup size of BatchNorm's per-channel reductions,
 * bucketed by [N, C, HW]); conv's direct vs im2col choice is the next family (hook:
 * `useIm2col` in conv.ts).
 *
 * @module
 */

import { type ChoiceTable, enableTuning, registerTuneFamily } from "../gpu/tune.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { batchNormBackward, batchNormStats, BN_REDUCE_WORKGROUPS } from "./batch_norm.ts";

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
  registerTuneFamily("bn_reduce", {
    candidates: BN_REDUCE_WORKGROUPS,
    bench([n, c, hw], candidate) {
      const workgroup = Number(candidate);
      const x = fillInPlace(Tensor.empty([n, c, hw]), 0.5).keep();
      const g = fillInPlace(Tensor.empty([n, c, hw]), 0.25).keep();
      const weight = fillInPlace(Tensor.empty([c]), 1).keep();
      return {
        // Forward statistics and the backward sums: both reductions a training step runs.
        run: () => {
          const stats = batchNormStats(x, { eps: 1e-5, momentum: 0.1, workgroup });
          const r = batchNormBackward(x, g, {
            stats,
            weight,
            eps: 1e-5,
            needInput: false,
            workgroup,
          });
          for (const t of [stats.s1, stats.s2, r.dweight, r.dbias]) t.dispose();
        },
        dispose: () => {
          for (const t of [x, g, weight]) t.dispose();
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
