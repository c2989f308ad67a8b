/**
 * Re-export of `src/io/safetensors.ts`, where the safetensors reader and writer live (kept
 * so that existing imports keep working).
 *
 * @module
 */

export * from "../io/safetensors.ts";
