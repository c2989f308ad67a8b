/**
 * Kernel definitions: a shader source joined with its uniform layout, registered by name so
 * tools (`deno task wgsl:dump`) can list and expand every kernel the library defines.
 *
 * @module
 */

import { params, type ParamsLayout, type ParamType } from "./params.ts";

/** One shader with its uniform fields; `code` has `struct Params` injected. */
export interface KernelDef<F extends Record<string, ParamType>> {
  /** Kernel name (the shader file's stem). */
  readonly name: string;
  /** WGSL source with the `struct Params` of `params` injected. */
  readonly code: string;
  /** The uniform layout bound at binding 0. */
  readonly params: ParamsLayout<F>;
}

const registry = new Map<string, KernelDef<Record<string, ParamType>>>();

/**
 * Defines the kernel `name` from its WGSL `source` (which must not declare `struct Params`)
 * and its uniform `fields` (names and types, in memory order).
 */
export function defineKernel<F extends Record<string, ParamType>>(
  name: string,
  source: string,
  fields: F,
): KernelDef<F> {
  const layout = params(fields);
  const def: KernelDef<F> = { name, code: layout.inject(source, name), params: layout };
  if (registry.has(name)) throw new Error(`defineKernel: kernel ${name} is defined twice`);
  registry.set(name, def as unknown as KernelDef<Record<string, ParamType>>);
  return def;
}

/** Every kernel defined so far, by name. */
export function definedKernels(): ReadonlyMap<string, KernelDef<Record<string, ParamType>>> {
  return registry;
}
