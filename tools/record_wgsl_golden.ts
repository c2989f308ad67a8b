/**
 * Records tests/gpu/wgsl_golden.json: the SHA-256 of the conv and register-matmul outputs on
 * the fixed cases of tests/gpu/wgsl_golden_cases.ts. Run once against a kernel version taken
 * as the reference: `deno run -A tools/record_wgsl_golden.ts`.
 */
import { gpu } from "../src/gpu/device.ts";
import { goldenHashes } from "../tests/gpu/wgsl_golden_cases.ts";

const hashes = await goldenHashes();
const path = new URL("../tests/gpu/wgsl_golden.json", import.meta.url);
const doc = { adapter: gpu().adapter.description, hashes };
await Deno.writeTextFile(path, JSON.stringify(doc, null, 2) + "\n");
console.log(`wrote ${Object.keys(hashes).length} hashes to ${path.pathname}`);
