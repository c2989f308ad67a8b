/**
 * The kernel families the autotuner measures (see `src/gpu/tune.ts`), and the switch that
 * turns measured choice on for them. Today: `matmul` (`register`, `tiled` with its heuristic
 * tile, or `tiled:<tile>` with one of the `GEMM_TILES`, bucketed by [M, N, K, batch]),
 * `bn_reduce` (the workgroup size of BatchNorm's per-channel reductions, bucketed by
 * [N, C, HW]), `conv2d` (direct vs im2col vs implicit GEMM, `igemm` with its heuristic tiles
 * or `igemm:<tile>`, and `unfold` where a tiny plane allows it, for convs that are not a plain 1×1 matmul, bucketed by N, C, H, W, O up
 * to powers of two with the kernel, stride, padding and dilation kept exact; timed over
 * forward, dgrad and wgrad) and `reduce` (the serial reduction with scalar or vec4 loads,
 * bucketed by [outer, r, inner]). Tile candidates that exceed the device's workgroup limits
 * are not listed for it. Every kernel whose variant the adapter kind (`isCpu`) used to decide
 * asks the table first; the heuristic is only the fallback.
 *
 * @module
 */

import {
  type ChoiceTable,
  enableTuning,
  type EnableTuningOptions,
  refinedCandidate,
  registerTuneFamily,
  shapeBucket,
  splitCandidate,
} from "../gpu/tune.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fillInPlace } from "./elementwise.ts";
import { GEMM_TILE_NAMES, gemmTilesFor, matmul, matmulCandidateOptions } from "./matmul.ts";
import { batchNormBackward, batchNormStats, BN_REDUCE_WORKGROUPS } from "./batch_norm.ts";
import {
  conv2d,
  conv2dInputGrad,
  conv2dWeightGrad,
  convCandidateOptions,
  IM2COL_MAX_COLS,
} from "./conv.ts";
import { reduce } from "./reduce.ts";
import { DIRECT_MAX_KW } from "./conv_direct.ts";
import { conv2dGeometry } from "./conv_geometry.ts";
import { isUnfoldConv } from "./conv_unfold.ts";

/**
 * Candidates of the `conv2d` family: the kernel families, igemm with each tile shape, and the
 * weight unfolded over the plane (listed only for convs it applies to: `isUnfoldConv`).
 */
export const CONV_CANDIDATES: readonly string[] = [
  "direct",
  "im2col",
  "igemm",
  ...GEMM_TILE_NAMES.map((t) => refinedCandidate("igemm", t)),
  "unfold",
];

/** Candidates of the `reduce` family (`serial4`: vec4 loads). */
export const REDUCE_CANDIDATES = ["serial", "serial4"] as const;

/** Candidates of the `matmul` family: the kernels, then the tiled one with each tile shape. */
export const MATMUL_CANDIDATES: readonly string[] = [
  "register",
  "tiled",
  ...GEMM_TILE_NAMES.map((t) => refinedCandidate("tiled", t)),
];

/** `candidates` less the tile refinements whose tile exceeds this device's limits. */
function fittingTiles(candidates: readonly string[]): string[] {
  const fit = new Set<string>(gemmTilesFor());
  return candidates.filter((c) => {
    const { detail } = splitCandidate(c);
    return detail === undefined || fit.has(detail);
  });
}

let registered = false;

/** Registers the families (idempotent). */
export function registerKernelFamilies(): void {
  if (registered) return;
  registered = true;
  registerTuneFamily("matmul", {
    candidates: MATMUL_CANDIDATES,
    candidatesFor: () => fittingTiles(MATMUL_CANDIDATES),
    // 64 rows (or one batch entry) show a kernel that is far off without paying for the
    // whole product.
    probe: ([m, n, k, batch = 1]) =>
      m > 64
        ? { dims: [64, n, k, batch], scale: m / 64 }
        : batch > 1
        ? { dims: [m, n, k, 1], scale: batch }
        : undefined,
    bench([m, n, k, batch = 1], candidate) {
      // A shared A and a batch of Bs: the pointwise conv's product (W · X[n]).
      const a = fillInPlace(Tensor.empty([m, k]), 0.5).keep();
      const b = fillInPlace(Tensor.empty(batch > 1 ? [batch, k, n] : [k, n]), 0.25).keep();
      const opts = matmulCandidateOptions(candidate);
      return {
        run: () => matmul(a, b, opts).dispose(),
        dispose: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
  });
  registerTuneFamily("conv2d", {
    candidates: CONV_CANDIDATES,
    bucket: (d) => [...shapeBucket(d.slice(0, 5)), ...d.slice(5)],
    probe: (d) => (d[0] > 1 ? { dims: [1, ...d.slice(1)], scale: d[0] } : undefined),
    candidatesFor(d) {
      const [n, c, h, w, , kh, kw, sh, sw, ph, pw, dh, dw] = d;
      const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
      const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
      const fits = n * oh * ow * c * kh * kw <= IM2COL_MAX_COLS;
      const unfolds = isUnfoldConv(
        conv2dGeometry([n, c, h, w], [d[4], c, kh, kw], {
          stride: [sh, sw],
          padding: [ph, pw],
          dilation: [dh, dw],
        }),
      );
      return fittingTiles(CONV_CANDIDATES).filter((a) =>
        a === "direct"
          ? kw <= DIRECT_MAX_KW
          : a === "im2col"
          ? fits
          : a === "unfold"
          ? unfolds
          : true
      );
    },
    bench([n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw], candidate) {
      const opts = {
        stride: [sh, sw] as const,
        padding: [ph, pw] as const,
        dilation: [dh, dw] as const,
        ...convCandidateOptions(candidate),
      };
      const x = fillInPlace(Tensor.empty([n, c, h, w]), 0.5).keep();
      const wt = fillInPlace(Tensor.empty([o, c, kh, kw]), 0.01).keep();
      const y = conv2d(x, wt, opts).keep();
      const dy = fillInPlace(Tensor.empty(y.shape), 0.1).keep();
      y.dispose();
      return {
        run: () => {
          conv2d(x, wt, opts).dispose();
          conv2dInputGrad(dy, wt, { ...opts, inputShape: x.shape }).dispose();
          conv2dWeightGrad(x, dy, { ...opts, weightShape: wt.shape }).dispose();
        },
        dispose: () => {
          for (const t of [x, wt, dy]) t.dispose();
        },
      };
    },
  });
  registerTuneFamily("reduce", {
    candidates: REDUCE_CANDIDATES,
    bench([outer, r, inner], candidate) {
      const x = fillInPlace(Tensor.empty([outer, r, inner]), 0.5).keep();
      const vec4 = candidate === "serial4";
      return {
        run: () => reduce("sum", x, { axis: 1, vec4 }).values.dispose(),
        dispose: () => x.dispose(),
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
export function enableKernelTuning(
  choices: ChoiceTable = {},
  opts: EnableTuningOptions = {},
): void {
  registerKernelFamilies();
  enableTuning(choices, opts);
}
