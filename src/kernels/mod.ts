/**
 * Raw kernels (no tape): each wraps one `shaders/*.wgsl` family.
 *
 * @module
 */

export * from "./elementwise.ts";
export * from "./copy.ts";
export * from "./reduce.ts";
export * from "./matmul.ts";
export * from "./cast.ts";
export * from "./shape.ts";
export * from "./conv.ts";
export * from "./batch_norm.ts";
export * from "./pool.ts";
export * from "./mixed.ts";
