import assert from "node:assert/strict";
import { printReport, rejectionClass, runFuzz } from "../../tools/fuzz.ts";
import { mutate } from "../../tools/fuzz/mutate.ts";
import { TARGETS } from "../../tools/fuzz/targets.ts";
import { Rng } from "../../src/data/rng.ts";

Deno.test("fuzz: inputs are a function of (seed, target, index) only", async () => {
  for (const t of TARGETS) {
    const seeds = await t.seeds();
    assert.ok(seeds.length >= 1, `${t.name} has seeds`);
    const a = mutate(seeds[0], seeds, Rng.from(5, 1, 2));
    const b = mutate(seeds[0], seeds, Rng.from(5, 1, 2));
    assert.deepEqual(a, b);
    // Every seed itself is accepted (the mutations start from valid inputs).
    const tmp = await Deno.makeTempDir({ prefix: "ct_fuzz_seed_" });
    try {
      for (const s of seeds) {
        if (t.name === "config") continue; // seeds may name data folders absent here
        await t.run(s.bytes, tmp);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }
  assert.equal(
    rejectionClass("DataError", "IDX file /tmp/x/y: truncated (header says 12 bytes, file has 3)"),
    "DataError: IDX file <path>: truncated",
  );
});

Deno.test("fuzz: a short seeded run of every parser holds all properties", async () => {
  const iterations = 300; // about 15 s on 2 loaded cores
  const report = await runFuzz({ iterations, seed: 1 });
  const lines: string[] = [];
  printReport(report, (s) => lines.push(s));
  for (const t of TARGETS) {
    assert.equal(report.inputs[t.name], iterations, t.name);
    const rejected = Object.values(report.rejections[t.name]).reduce((a, b) => a + b, 0);
    // Most mutations break the file; a run where they do not would test little.
    assert.ok(rejected >= iterations / 2, `${t.name}: only ${rejected} rejections`);
  }
  assert.deepEqual(report.violations, [], lines.join("\n"));
  const classes = Object.keys(report.rejections.image).join("\n");
  assert.match(classes, /truncated JPEG/);
  assert.match(classes, /corrupt PNG/);
});

Deno.test("fuzz: the inputs longer runs found hold all properties now", async () => {
  // (seed, target, index) of violations found by `deno task fuzz --iterations 5000`: a null
  // augment.mean reaching a cross-field check (TypeError), a YAML alias before its anchor
  // (the yaml package's ReferenceError), an override quoted twice past the length limit, and
  // a .pth storage key holding a newline (a two-line message), and a .pth global name whose
  // escaped control characters made the message too long. Inputs are a function of
  // (seed, target, index) and the seed files, so each reruns exactly while those stay.
  const found: [number, string, number][] = [
    [6, "config", 2933],
    [7, "config", 2882],
    [11, "config", 3349],
    [10, "pth", 4418],
    [7, "pth", 3424],
  ];
  for (const [seed, target, only] of found) {
    const report = await runFuzz({ iterations: only + 1, seed, targets: [target], only });
    assert.equal(report.inputs[target], 1, `${target}:${only}`);
    assert.deepEqual(report.violations, [], `seed ${seed} ${target}:${only}`);
  }
});
