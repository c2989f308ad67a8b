/**
 * Classification metrics accumulated on the GPU.
 *
 * @module
 */

export * from "./accuracy.ts";
export * from "./confusion.ts";
