/**
 * Child process of the run-folder race test: waits until the shared start time, claims the
 * next `version_N` under `<root>/race` and prints it.
 *
 * Usage: deno run --allow-read --allow-write claim_run_dir.ts <root> <startEpochMs>
 */
import { claimVersionDir } from "../../../src/train/run_dir.ts";

const [root, start] = Deno.args;
while (Date.now() < Number(start)) { /* spin to the common start */ }
console.log(claimVersionDir(root, "race"));
