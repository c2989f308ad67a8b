/**
 * Prints the WGSL a pipeline compiles for one kernel variant: the shader with its injected
 * `struct Params`, and for shaders with expansion marks the unrolled form for the given
 * override values (defaults for the rest).
 *
 * Usage: `deno task wgsl:dump <kernel> [NAME=value ...]`, e.g.
 * `deno task wgsl:dump conv2d_forward KH=7 KW=7 TM4=2 TN=8`; without a kernel it lists them.
 */
import "../mod.ts";
import "../src/optim/adamw.ts";
import { definedKernels } from "../src/gpu/kernel.ts";
import { expandWgsl, hasExpansionMarks } from "../src/gpu/wgsl_expand.ts";

const [name, ...assignments] = Deno.args;
const kernels = definedKernels();
const kernel = name === undefined ? undefined : kernels.get(name);
if (!kernel) {
  if (name !== undefined) console.error(`wgsl:dump: no kernel named "${name}"`);
  console.error(`kernels: ${[...kernels.keys()].sort().join(", ")}`);
  Deno.exit(name === undefined ? 0 : 1);
}
const overrides: Record<string, number> = {};
for (const a of assignments) {
  const m = /^(\w+)=(-?\d+)$/.exec(a);
  if (!m) {
    console.error(`wgsl:dump: expected NAME=integer, got "${a}"`);
    Deno.exit(1);
  }
  overrides[m[1]] = Number(m[2]);
}
console.log(
  hasExpansionMarks(kernel.code) ? expandWgsl(kernel.code, overrides, kernel.name) : kernel.code,
);
