/**
 * Batched matrix multiply with transpose flags: the workhorse that convolution reuses as
 * implicit GEMM. The register-blocked variant serves CPU adapters (lavapipe, SwiftShader).
 *
 * @module
 */

import registerSrc from "../../shaders/matmul_register.wgsl" with { type: "text" };
import { dispatch, Uniforms } from "../gpu/dispatch.ts";
import { Tensor } from "../gpu/tensor.ts";
import { fmt } from "./shape.ts";

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` is stored as [..., K, M]. */
  transA?: boolean;
  /** Use Bᵀ: `b` is stored as [..., N, K]. */
  transB?: boolean;
  /** Add the product into this existing [.., M, N] tensor instead of allocating. */
  accumulateInto?: Tensor;
}

const TM = 4;
const TN = 4;
const WG = 8;

/**
 * C = op(A) · op(B) over the last two dims; a leading batch dim on either side
 * (or both, equal) is supported, a missing one broadcasts.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new TypeError(`matmul: expected f32 tensors, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.ndim < 2 || a.ndim > 3 || b.ndim < 2 || b.ndim > 3) {
    throw new RangeError(
      `matmul: expected 2-D or 3-D tensors, got ${fmt(a.shape)} and ${fmt(b.shape)}`,
    );
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = opts.transA ? ac : ar;
  const k = opts.transA ? ar : ac;
  const kb = opts.transB ? bc : br;
  const n = opts.transB ? br : bc;
  if (k !== kb) {
    throw new RangeError(
      `matmul: inner dims differ: ${fmt(a.shape)}${opts.transA ? "ᵀ" : ""} · ${fmt(b.shape)}${
        opts.transB ? "ᵀ" : ""
      } (${k} vs ${kb})`,
    );
  }
  const ba = a.ndim === 3 ? a.shape[0] : 1;
  const bb = b.ndim === 3 ? b.shape[0] : 1;
  if (ba !== bb && ba !== 1 && bb !== 1) {
    throw new RangeError(`matmul: batch dims differ: ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  const batch = Math.max(ba, bb);
  const outShape = a.ndim === 3 || b.ndim === 3 ? [batch, m, n] : [m, n];
  let out: Tensor;
  if (opts.accumulateInto) {
    out = opts.accumulateInto;
    if (out.size !== batch * m * n) {
      throw new RangeError(
        `matmul: accumulateInto has shape ${fmt(out.shape)}, expected ${fmt(outShape)}`,
      );
    }
  } else {
    out = Tensor.empty(outShape);
  }
  dispatch({
    kernel: "matmul_register",
    code: registerSrc,
    overrides: {
      TRANS_A: opts.transA ? 1 : 0,
      TRANS_B: opts.transB ? 1 : 0,
      ACCUMULATE: opts.accumulateInto ? 1 : 0,
      WG_X: WG,
      WG_Y: WG,
    },
    uniform: new Uniforms().u32(m).u32(n).u32(k).u32(batch)
      .u32(ba === 1 ? 0 : m * k).u32(bb === 1 ? 0 : k * n).u32(m * n).bytes(),
    buffers: [a.buffer, b.buffer, out.buffer],
    workgroups: [Math.ceil(n / (TN * WG)), Math.ceil(m / (TM * WG)), batch],
  });
  return out;
}
