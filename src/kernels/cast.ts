/**
 * Conversions between f32 and i32 tensors.
 *
 * @module
 */

import src from "../../shaders/cast.wgsl" with { type: "text" };
import { dispatch, gridFor, Uniforms } from "../gpu/dispatch.ts";
import { type DType, Tensor } from "../gpu/tensor.ts";
import { clone } from "./copy.ts";

/** A copy of `x` converted to `dtype` (f32 → i32 truncates toward zero). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return clone(x);
  const out = Tensor.empty(x.shape, dtype);
  dispatch({
    kernel: `cast.${x.dtype}_to_${dtype}`,
    code: src,
    overrides: { TO_F32: dtype === "f32" ? 1 : 0 },
    uniform: new Uniforms().u32(x.size).bytes(),
    buffers: [x.buffer, out.buffer],
    workgroups: gridFor(x.size, 256),
  });
  return out;
}
