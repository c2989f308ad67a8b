/**
 * Child process of the interruption test: the `train` command with the tiny test model
 * registered. Usage: deno run --allow-read --allow-write --allow-env train_cli.ts <args…>
 */
import "../fixtures.ts";
import { main } from "../../../src/cli/train.ts";
import { runMain } from "../../../src/cli/common.ts";

await runMain(() => main(Deno.args));
