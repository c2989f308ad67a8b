/**
 * `deno task tune [resnet18|resnet50] [size] [batch] [small]`: measures the kernel choices a
 * ResNet training step needs on this adapter ahead of time and stores them in the user's
 * per-adapter cache, where training picks them up. `CT_TUNE=0` makes it a no-op.
 *
 * @module
 */

import { getDevice } from "../gpu/device.ts";
import { sync } from "../gpu/dispatch.ts";
import { scope, Tensor } from "../gpu/tensor.ts";
import { adapterIdentity, choiceTable, tunePending } from "../gpu/tune.ts";
import { enableKernelTuning } from "../kernels/tuning.ts";
import { backward } from "../autograd/tape.ts";
import { crossEntropy } from "../autograd/loss.ts";
import { resnet18, resnet50 } from "../nn/resnet.ts";
import { loadTuneCache, saveTuneCache, tuneCacheDir, tuneWanted } from "../train/tune_cache.ts";

/** Tunes the buckets of one ResNet training step; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [arch = "resnet18", sizeArg = "32", batchArg = "32", stem = ""] = args;
  if (arch !== "resnet18" && arch !== "resnet50") {
    console.error(`tune: expected resnet18 or resnet50, got ${arch}`);
    return 2;
  }
  const size = Number(sizeArg);
  const batch = Number(batchArg);
  if (!(Number.isInteger(size) && size >= 16 && Number.isInteger(batch) && batch >= 2)) {
    console.error(`tune: expected size >= 16 and batch >= 2, got ${sizeArg} and ${batchArg}`);
    return 2;
  }
  if (!tuneWanted()) {
    console.log("tune: CT_TUNE=0, nothing to do");
    return 0;
  }
  const ctx = await getDevice();
  const identity = adapterIdentity(ctx.adapter);
  const dir = tuneCacheDir();
  if (!dir) {
    console.error("tune: no cache folder (set HOME or XDG_CACHE_HOME)");
    return 1;
  }
  enableKernelTuning(loadTuneCache(dir, identity));
  const build = arch === "resnet50" ? resnet50 : resnet18;
  const net = build({ numClasses: 10, smallInput: stem === "small", seed: 0 });
  const x = Tensor.fromArray(new Float32Array(batch * 3 * size * size).fill(0.5), [
    batch,
    3,
    size,
    size,
  ]);
  const y = Tensor.fromArray(new Int32Array(batch), [batch]);
  try {
    // One step with the current choices notes every bucket not measured yet.
    scope(() => backward(crossEntropy(net.forward(x), y)));
    await sync();
    for (const p of net.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
    const results = await tunePending();
    for (const r of results) {
      const times = Object.entries(r.ms).map(([c, ms]) => `${c} ${ms.toFixed(2)} ms`).join(", ");
      const out = Object.keys(r.pruned);
      const left = out.length ? `; left out: ${out.join(", ")}` : "";
      console.log(`${r.key}: ${r.choice} (${times}${left})`);
    }
    const path = saveTuneCache(dir, identity, choiceTable());
    console.log(`tune: ${results.length} new, ${Object.keys(choiceTable()).length} in ${path}`);
  } finally {
    net.dispose();
    x.dispose();
    y.dispose();
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
