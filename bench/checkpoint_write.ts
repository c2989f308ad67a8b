/**
 * Checkpoint write cost: `writeCheckpoint` of ResNet-18 (4 classes) with AdamW moments
 * (weights 45 MB + optimizer tensors 90 MB), timed per write in wall and process CPU time
 * (all threads, from /proc/self/stat; Linux only, else CPU is shown as n/a).
 *
 *   deno run -A bench/checkpoint_write.ts [writes=4]
 */
import { getDevice } from "../src/gpu/device.ts";
import { Tensor } from "../src/gpu/tensor.ts";
import { ResNet18Model } from "../src/models/resnet_models.ts";
import { type CheckpointContents, writeCheckpoint } from "../src/train/checkpoint.ts";

/** CPU ms of this process so far (user + system), or NaN where /proc is missing. */
function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

const writes = Number(Deno.args[0] ?? 4);
await getDevice();
const model = new ResNet18Model({ numClasses: 4 });
const moment = (p: Tensor, v: number) =>
  Tensor.fromArray(new Float32Array(p.size).fill(v), p.shape).keep();
const optimizer = {
  step: 1,
  state: model.parameters().map((p) => ({
    step: 1,
    expAvg: moment(p, 0.1),
    expAvgSq: moment(p, 0.2),
  })),
};
const dir = await Deno.makeTempDir({ prefix: "checkpoint_write_" });
const contents = (step: number): CheckpointContents => ({
  stateDict: model.stateDict(),
  optimizer,
  state: {
    epoch: 0,
    globalStep: step,
    scheduler: {},
    rng: { seed: 0, nextEpoch: 1 },
    hparams: model.hparams as unknown as Record<string, unknown>,
    classNames: ["a", "b", "c", "d"],
    config: {},
    callbacks: {},
    metrics: {},
  },
});
for (let i = 0; i < writes; i++) {
  const t = performance.now();
  const c = cpuMs();
  await writeCheckpoint(`${dir}/last`, contents(i + 1));
  console.log(
    `write ${i + 1}: ${(performance.now() - t).toFixed(0)} ms wall, ${cpuMs() - c} ms CPU`,
  );
}
await Deno.remove(dir, { recursive: true });
