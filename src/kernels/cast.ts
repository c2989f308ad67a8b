/**
 * Conversions between f32 and i32 tensors.
 *
 * @module
 */

import src from "../../shaders/cast.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { type DType, Tensor } from "../gpu/tensor.ts";
import { clone } from "./copy.ts";

const CAST = defineKernel("cast", src, { n: "u32" });

/** A copy of `x` converted to `dtype` (f32 → i32 truncates toward zero). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return clone(x);
  const out = Tensor.empty(x.shape, dtype);
  dispatch({
    kernel: `cast.${x.dtype}_to_${dtype}`,
    code: CAST.code,
    overrides: { TO_F32: dtype === "f32" ? 1 : 0 },
    uniform: CAST.params.pack({ n: x.size }),
    buffers: [x.buffer, out.buffer],
    workgroups: gridFor(x.size, 256),
  });
  return out;
}
