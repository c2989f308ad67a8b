/**
 * The WGSL pre-processor (src/gpu/wgsl_expand.ts) and the uniform layouts (src/gpu/params.ts):
 * the expanded conv and register-matmul kernels compute bit for bit what the formerly
 * generated ones did, and the expander's marks behave as documented.
 */
import assert from "node:assert/strict";
import { goldenHashes } from "./wgsl_golden_cases.ts";

const GOLDEN = JSON.parse(
  await Deno.readTextFile(new URL("./wgsl_golden.json", import.meta.url)),
) as { hashes: Record<string, string> };

Deno.test("expanded conv and matmul kernels match the generated ones bit for bit", async () => {
  const got = await goldenHashes();
  assert.deepEqual(Object.keys(got).sort(), Object.keys(GOLDEN.hashes).sort());
  for (const [name, hash] of Object.entries(GOLDEN.hashes)) {
    assert.equal(got[name], hash, `${name}: output bytes differ from the recorded kernels'`);
  }
});
