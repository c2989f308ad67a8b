import assert from "node:assert/strict";
import { formatDuration, Progress } from "../../src/train/progress.ts";

const state = {
  phase: "train",
  epoch: 0,
  maxEpochs: 3,
  batch: 5,
  batches: 10,
  values: { loss: 1.25 },
  imagesPerSec: 123.45,
  etaSec: 65,
};

Deno.test("progress: a bar redrawn in place on a terminal", () => {
  let text = "";
  const p = new Progress("auto", { isTerminal: true, write: (t) => (text += t) });
  assert.equal(p.mode, "bar");
  p.tick(state);
  assert.equal(
    text,
    "\r\x1b[2K[############------------] train epoch 1/3 step 5/10 loss 1.2500 123.5 img/s ETA 1m05s",
  );
  p.message("epoch 1/3 done");
  assert.ok(text.endsWith("\r\x1b[2Kepoch 1/3 done\n"));
});

Deno.test("progress: plain periodic lines when not a terminal", () => {
  let text = "";
  const p = new Progress("auto", { isTerminal: false, write: (t) => (text += t) });
  assert.equal(p.mode, "lines");
  p.tick(state); // no redraws in lines mode
  p.periodic(state);
  assert.equal(text, "train epoch 1/3 step 5/10 loss 1.2500 123.5 img/s ETA 1m05s\n");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(12.4), "12s");
});
