/**
 * Fine-tuning with frozen layers: two training steps with `conv1`, `bn1`, `layer1` frozen
 * leave their weights and BatchNorm running statistics bit-equal and move everything else;
 * frozen parameters get no gradient and no AdamW moments; `freezeBackboneEpochs` trains the
 * head only; the head's parameter group gets its own lr.
 */
import assert from "node:assert/strict";
import { rand } from "../helpers.ts";
import { scope, Tensor } from "../../src/gpu/tensor.ts";
import { backward } from "../../src/autograd/tape.ts";
import { ResNet18Model } from "../../src/models/resnet_models.ts";
import { freezeForEpoch, matchesPrefix, paramGroupsFor } from "../../src/models/freeze.ts";
import { readBackAll } from "../../src/train/checkpoint.ts";

async function snapshot(m: ResNet18Model): Promise<Map<string, Float32Array | Int32Array>> {
  const sd = m.stateDict();
  const v = await readBackAll([...sd.values()]);
  return new Map([...sd.keys()].map((k, i) => [k, v[i]]));
}

const FROZEN = ["conv1", "bn1", "layer1"];

Deno.test("freeze: prefixes match dotted names with or without model.", () => {
  assert.ok(matchesPrefix("model.layer1.0.conv1.weight", "layer1"));
  assert.ok(matchesPrefix("model.layer1.0.conv1.weight", "model.layer1.0"));
  assert.ok(!matchesPrefix("model.layer10.weight", "layer1"));
  assert.ok(matchesPrefix("model.fc", "fc"));
});

Deno.test("freeze: two steps with frozen BN leave stats and frozen weights bit-equal, move the rest", async () => {
  using m = new ResNet18Model({ numClasses: 3, smallInput: true, inChannels: 1, seed: 1 });
  const s = freezeForEpoch(m, { freeze: FROZEN }, 0);
  assert.ok(s.frozenParams.includes("model.layer1.1.bn2.weight"));
  assert.ok(!s.frozenParams.includes("model.layer2.0.conv1.weight"));
  const { optimizer } = m.configureOptimizers(10, {
    paramGroups: [{ match: "fc", learningRate: 1e-2 }],
  });
  m.train();
  assert.equal(m.resnet.bn1.training, false, "frozen BN stays in eval mode");
  assert.equal(m.resnet.stages[1].training, true);
  const before = await snapshot(m);
  for (let step = 0; step < 2; step++) {
    optimizer.zeroGrad();
    scope(() => {
      const batch = {
        images: Tensor.fromArray(rand(4 * 8 * 8, 10 + step), [4, 1, 8, 8]),
        labels: Tensor.fromArray(Int32Array.from([0, 1, 2, 1]), [4], { dtype: "i32" }),
      };
      backward(m.trainingStep(batch, step));
    });
    for (const [name, p] of m.namedParameters()) {
      assert.equal(p.grad === null, FROZEN.some((f) => matchesPrefix(name, f)), `grad of ${name}`);
    }
    optimizer.step();
  }
  const after = await snapshot(m);
  let moved = 0;
  for (const [k, v] of after) {
    const frozen = FROZEN.some((f) => matchesPrefix(k, f));
    if (frozen || k === "class_weights") {
      assert.deepEqual(v, before.get(k), `${k} unchanged`);
    } else if (!k.endsWith("num_batches_tracked")) {
      assert.notDeepEqual(v, before.get(k), `${k} moved`);
      moved++;
    } else {
      assert.equal(v[0], 2, `${k} counts the 2 steps`);
    }
  }
  assert.ok(moved > 50);
  // No moments for frozen parameters; moments for the rest.
  const names = m.namedParameters().map(([n]) => n);
  const byTensor = new Map(m.namedParameters().map(([n, t]) => [t, n]));
  const st = optimizer.stateDict();
  optimizer.params.forEach((p, i) => {
    const n = byTensor.get(p)!;
    const frozen = FROZEN.some((f) => matchesPrefix(n, f));
    assert.equal(st.state[i].expAvg === null, frozen, n);
  });
  // The head is its own group at 10× the lr (the second group), the rest at the base lr.
  assert.deepEqual(optimizer.paramGroups.map((g) => g.params.length), [names.length - 2, 2]);
  assert.equal(optimizer.paramGroups[1].initialLr, 1e-2);
  assert.equal(optimizer.paramGroups[0].initialLr, 1e-4);
  optimizer.dispose();
});

Deno.test("freeze: freezeBackboneEpochs trains the head only, then everything but model.freeze", () => {
  using m = new ResNet18Model({ numClasses: 3, smallInput: true });
  const trainable = () => m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
  freezeForEpoch(m, { freeze: ["conv1"], freezeBackboneEpochs: 1 }, 0);
  assert.deepEqual(trainable(), ["model.fc.weight", "model.fc.bias"]);
  m.train();
  assert.ok(m.namedModules().filter(([n]) => n.includes("bn")).every(([, b]) => !b.training));
  freezeForEpoch(m, { freeze: ["conv1"], freezeBackboneEpochs: 1 }, 1);
  assert.deepEqual(trainable().length, m.namedParameters().length - 1);
  assert.ok(!trainable().includes("model.conv1.weight"));
  assert.equal(m.training, true);
  assert.equal(m.resnet.bn1.training, true);
  assert.throws(
    () => freezeForEpoch(m, { freeze: ["layer9"] }, 0),
    /"layer9" matches no parameter/,
  );
  assert.throws(
    () => paramGroupsFor(m, [{ match: "head" }], 1e-4, 0),
    /paramGroups\[0\]\.match "head" matches no parameter/,
  );
});
