/**
 * Conversions between f32 and i32 tensors, and between f32 and f16 (mixed precision; the
 * f16 kernels need the adapter feature `shader-f16`).
 *
 * @module
 */

import src from "../../shaders/cast.wgsl" with { type: "text" };
import toF16Src from "../../shaders/cast_f32_to_f16.wgsl" with { type: "text" };
import fromF16Src from "../../shaders/cast_f16_to_f32.wgsl" with { type: "text" };
import { gpu } from "../gpu/device.ts";
import { copyBuffer, dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { type DType, storageBytes, Tensor } from "../gpu/tensor.ts";
import { clone } from "./copy.ts";

const CAST = defineKernel("cast", src, { n: "u32" });
const TO_F16 = defineKernel("cast_f32_to_f16", toF16Src, { n: "u32" });
const FROM_F16 = defineKernel("cast_f16_to_f32", fromF16Src, { n: "u32" });

/** Whether this adapter can run the f16 kernels (`shader-f16`). */
export function hasShaderF16(): boolean {
  return gpu().adapter.features.includes("shader-f16");
}

/**
 * A copy of `x` converted to `dtype`. f32 → i32 truncates toward zero; f32 → f16 rounds to
 * nearest even, with ±inf beyond f16's range (±65504) and NaN kept; f16 → f32 is exact.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype && dtype === "f16") {
    // Element pairs: a copy of the bytes (the strided copy kernel moves 4-byte elements).
    const out = Tensor.empty(x.shape, "f16");
    const size = storageBytes(x.size, "f16");
    if (size > 0) copyBuffer(x.buffer, out.buffer, { size });
    return out;
  }
  if (x.dtype === dtype) return clone(x);
  if (x.dtype === "f16" || dtype === "f16") return castF16(x, dtype);
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

function castF16(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === "i32" || dtype === "i32") {
    throw new TypeError(`cast: expected f32 ↔ f16, got ${x.dtype} → ${dtype}`);
  }
  if (!hasShaderF16()) {
    throw new Error(`cast: f16 needs the adapter feature shader-f16, which this adapter lacks`);
  }
  const def = dtype === "f16" ? TO_F16 : FROM_F16;
  const out = Tensor.empty(x.shape, dtype);
  dispatch({
    kernel: def.name,
    code: def.code,
    uniform: def.params.pack({ n: x.size }),
    buffers: [x.buffer, out.buffer],
    // One invocation per element pair.
    workgroups: gridFor(Math.ceil(x.size / 2), 256),
  });
  return out;
}

/**
 * `x` (f32) rounded to the nearest f16 value, kept in f32 (±inf beyond f16's range): what a
 * kernel reading f16 inputs sees, for kernels that read f32.
 */
export function roundToF16(x: Tensor): Tensor {
  const h = cast(x, "f16");
  const r = cast(h, "f32");
  h.dispose();
  return r;
}
