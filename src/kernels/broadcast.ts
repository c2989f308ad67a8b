/**
 * The subgroup-broadcast forms of the CPU kernels (`matmul_register_sg`,
 * `conv2d_forward_sg`, `conv2d_wgrad_nhwc_sg`): where subgroups have a fixed `SG_LANES` lanes
 * (lavapipe at 256 bits), a value every lane of a workgroup reads is loaded once and broadcast
 * instead of being loaded by every lane, with the same sums in the same order (the same bits).
 *
 * @module
 */

import { gpu } from "../gpu/device.ts";

/** Lanes of the subgroup (= invocations of the workgroup) the `_sg` kernels are written for. */
export const SG_LANES = 8;

let allowed = true;
const sources = new Map<string, string>();

/**
 * Whether the `_sg` kernels run: on devices whose subgroups have exactly `SG_LANES` lanes
 * (`AdapterFacts.subgroupLanes`), unless turned off with `setSubgroupBroadcasts(false)`.
 */
export function subgroupBroadcasts(): boolean {
  return allowed && gpu().adapter.subgroupLanes === SG_LANES;
}

/**
 * Allows (the default) or forbids the `_sg` kernels, so tests and benches can run the plain
 * ones on an adapter that has subgroups; returns the previous setting.
 */
export function setSubgroupBroadcasts(on: boolean): boolean {
  const was = allowed;
  allowed = on;
  return was;
}

/** A kernel's name and WGSL (what `defineKernel` returns). */
export interface KernelSource {
  /** Kernel name. */
  readonly name: string;
  /** WGSL source. */
  readonly code: string;
}

/**
 * The WGSL of a kernel that uses subgroup operations, with `enable subgroups;` in front where
 * the WGSL compiler requires it (Tint), built once per kernel.
 */
export function subgroupCode(kernel: KernelSource): string {
  let s = sources.get(kernel.name);
  if (s === undefined) {
    s = gpu().adapter.subgroupsDirective ? `enable subgroups;\n${kernel.code}` : kernel.code;
    sources.set(kernel.name, s);
  }
  return s;
}

/** The form a dispatch runs: `broadcast` where `subgroupBroadcasts()`, `plain` otherwise. */
export function broadcastForm(
  plain: KernelSource,
  broadcast: KernelSource,
): { kernel: string; code: string; sg: boolean } {
  return subgroupBroadcasts()
    ? { kernel: broadcast.name, code: subgroupCode(broadcast), sg: true }
    : { kernel: plain.name, code: plain.code, sg: false };
}
