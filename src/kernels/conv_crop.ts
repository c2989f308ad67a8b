/**
 * Tap cropping for convs on planes so small that some taps only ever read zero padding
 * (`tapCrop` in conv_geometry.ts decides which): the weight's kept taps are copied out for the
 * smaller conv, and its weight gradient is written back into full kernels with zeros in the
 * cropped taps (their gradient is exactly 0). Both through `shaders/conv2d_tap_window.wgsl`.
 *
 * @module
 */

import tapWindowSrc from "../../shaders/conv2d_tap_window.wgsl" with { type: "text" };
import { dispatch, gridFor } from "../gpu/dispatch.ts";
import { defineKernel } from "../gpu/kernel.ts";
import { Tensor } from "../gpu/tensor.ts";
import type { Conv2dGeometry, TapCrop } from "./conv_geometry.ts";
import { stridedCopy } from "./copy.ts";
import { fillInPlace } from "./elementwise.ts";

const TAP_WINDOW = defineKernel("conv2d_tap_window", tapWindowSrc, { groups: "u32" });

/**
 * Copies the kept taps of `src` [O, C, kh, kw] into `dst` [O, C, crop.kh, crop.kw], or with
 * `expand` the reverse, zeros in the cropped taps (conv2d_tap_window.wgsl).
 */
function tapWindow(
  src: Tensor,
  dst: Tensor,
  g: Conv2dGeometry,
  crop: TapCrop,
  expand: boolean,
): void {
  const blocks = g.o * g.c;
  if (blocks % 4 !== 0) {
    // Kernels of 4-block groups only; the rare odd count takes strided copies.
    stridedWindow(src, dst, g, crop, expand);
    return;
  }
  dispatch({
    kernel: TAP_WINDOW.name,
    code: TAP_WINDOW.code,
    // The window is compiled in: one small unrolled variant per crop geometry.
    overrides: {
      EXPAND: expand ? 1 : 0,
      KH: g.kh,
      KW: g.kw,
      KH2: crop.kh,
      KW2: crop.kw,
      KY0: crop.ky0,
      KX0: crop.kx0,
    },
    uniform: TAP_WINDOW.params.pack({ groups: blocks / 4 }),
    buffers: [src.buffer, dst.buffer],
    workgroups: gridFor(blocks / 4, 64),
  });
}

/** `tapWindow` by strided copies (and a zero fill when expanding). */
function stridedWindow(
  src: Tensor,
  dst: Tensor,
  g: Conv2dGeometry,
  crop: TapCrop,
  expand: boolean,
): void {
  const full = [g.c * g.kh * g.kw, g.kh * g.kw, g.kw, 1];
  const kept = [g.c * crop.kh * crop.kw, crop.kh * crop.kw, crop.kw, 1];
  const offset = crop.ky0 * g.kw + crop.kx0;
  const shape = [g.o, g.c, crop.kh, crop.kw];
  if (expand) {
    fillInPlace(dst, 0);
    stridedCopy(src, dst, { shape, srcStrides: kept, dstStrides: full, dstOffset: offset });
  } else {
    stridedCopy(src, dst, { shape, srcStrides: full, srcOffset: offset, dstStrides: kept });
  }
}

/** The weight's kept taps [O, C, crop.kh, crop.kw]. */
export function cropWeight(weight: Tensor, g: Conv2dGeometry, crop: TapCrop): Tensor {
  const wc = Tensor.empty([g.o, g.c, crop.kh, crop.kw]);
  tapWindow(weight, wc, g, crop, false);
  return wc;
}

/**
 * The weight gradient [O, C, kh, kw] of the full kernel from `dwc`, the cropped conv's
 * [O, C, crop.kh, crop.kw]: zeros in the cropped taps.
 */
export function expandWeight(dwc: Tensor, g: Conv2dGeometry, crop: TapCrop): Tensor {
  const dw = Tensor.empty([g.o, g.c, g.kh, g.kw]);
  tapWindow(dwc, dw, g, crop, true);
  return dw;
}
