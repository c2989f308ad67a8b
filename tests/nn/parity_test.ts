/**
 * Parity with torchvision: weights exported by tests/golden/export_resnet.py (torchvision
 * ResNets, torch.manual_seed(0) init, running statistics warmed by two train-mode
 * forwards) are loaded with loadSafetensors and must reproduce torchvision's outputs.
 *
 * Always run (committed, F16 weights, references computed with the F16-rounded weights):
 * the stem + layer1 + layer2 of resnet18(num_classes=10) and resnet50(num_classes=10).
 * Run when present (`/usr/bin/python3 tests/golden/export_resnet.py --full`, gitignored, F32):
 * the whole networks, comparing logits.
 */
import assert from "node:assert/strict";
import { assertClose, largeFixturesReady } from "../helpers.ts";
import { memoryStats, scope, type Tensor } from "../../src/gpu/tensor.ts";
import { loadSafetensors, type ResNet, resnet18, resnet50 } from "../../src/nn/mod.ts";

const FIX = new URL("../fixtures/", import.meta.url);

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

// The large fixtures may still be on their way (CI writes them alongside the test run).
await largeFixturesReady();

function disposeAll(m: Map<string, Tensor>): void {
  for (const t of m.values()) t.dispose();
}

async function checkParity(
  build: () => ResNet,
  weightsUrl: URL,
  refUrl: URL,
  run: (net: ResNet, x: Tensor) => Tensor,
  what: string,
): Promise<void> {
  const before = memoryStats().liveBuffers;
  const net = build();
  const weights = await loadSafetensors(weightsUrl.pathname);
  const ref = await loadSafetensors(refUrl.pathname);
  try {
    const own = net.stateDict();
    for (const k of weights.keys()) assert.ok(own.has(k), `fixture key "${k}" exists in the model`);
    net.loadStateDict(weights, { strict: weights.size === own.size });
    net.eval();
    await scope(async () => {
      const y = run(net, ref.get("x_eval")!);
      assert.deepEqual(y.shape, ref.get("out_eval")!.shape);
      assertClose(await y.toArray(), await ref.get("out_eval")!.toArray(), {
        atol: 1e-4,
        rtol: 1e-4,
        msg: `${what} eval`,
      });
    });
    net.train();
    await scope(async () => {
      const y = run(net, ref.get("x_train") ?? ref.get("x_eval")!);
      assertClose(await y.toArray(), await ref.get("out_train")!.toArray(), {
        atol: 1e-3,
        rtol: 1e-3,
        msg: `${what} train`,
      });
    });
    for (const [k, t] of ref) {
      if (!k.startsWith("after_train.")) continue;
      const name = k.slice("after_train.".length);
      assertClose(await own.get(name)!.toArray(), await t.toArray(), {
        atol: 1e-4,
        rtol: 1e-4,
        msg: `${what} ${name} after the train-mode forward`,
      });
    }
  } finally {
    disposeAll(weights);
    disposeAll(ref);
    net.dispose();
  }
  assert.equal(memoryStats().liveBuffers, before);
}

for (const [name, build] of [["resnet18", resnet18], ["resnet50", resnet50]] as const) {
  Deno.test(`parity: torchvision ${name} stem + layer1 + layer2 (F16 weights, committed)`, () =>
    checkParity(
      () => build({ numClasses: 10 }),
      new URL(`${name}_c10_seed0_prefix.f16.safetensors`, FIX),
      new URL(`${name}_c10_seed0_prefix.ref.safetensors`, FIX),
      (net, x) => net.forwardFeatures(x, { stages: 2 }),
      name,
    ));

  const weights = new URL(`large/${name}_c10_seed0.safetensors`, FIX);
  Deno.test({
    name: `parity: torchvision ${name}(num_classes=10) logits (F32, generated locally)`,
    ignore: !exists(weights),
    fn: () =>
      checkParity(
        () => build({ numClasses: 10 }),
        weights,
        new URL(`large/${name}_c10_seed0.ref.safetensors`, FIX),
        (net, x) => net.forward(x),
        name,
      ),
  });
}
