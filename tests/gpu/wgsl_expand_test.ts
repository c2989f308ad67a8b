/**
 * The WGSL pre-processor (src/gpu/wgsl_expand.ts) and the uniform layouts (src/gpu/params.ts):
 * the expanded conv and register-matmul kernels compute bit for bit what the formerly
 * generated ones did, and the expander's marks (and `f16Form`) behave as documented.
 */
import assert from "node:assert/strict";
import { goldenHashes } from "./wgsl_golden_cases.ts";
import { evaluate, expandWgsl, f16Form } from "../../src/gpu/wgsl_expand.ts";
import { params } from "../../src/gpu/params.ts";
import { setSubgroupBroadcasts, subgroupBroadcasts } from "../../src/kernels/broadcast.ts";

const GOLDEN = JSON.parse(
  await Deno.readTextFile(new URL("./wgsl_golden.json", import.meta.url)),
) as { hashes: Record<string, string> };

// Where subgroups have 8 lanes (lavapipe) this runs the subgroup-broadcast forms
// (`src/kernels/broadcast.ts`); the next test runs the plain kernels there.
Deno.test("expanded conv and matmul kernels match the generated ones bit for bit", async () => {
  const got = await goldenHashes();
  assert.deepEqual(Object.keys(got).sort(), Object.keys(GOLDEN.hashes).sort());
  for (const [name, hash] of Object.entries(GOLDEN.hashes)) {
    assert.equal(got[name], hash, `${name}: output bytes differ from the recorded kernels'`);
  }
});

Deno.test({
  name: "the plain kernels (subgroup broadcasts off) match the same bits",
  ignore: !subgroupBroadcasts(),
  fn: async () => {
    const was = setSubgroupBroadcasts(false);
    try {
      const got = await goldenHashes();
      for (const [name, hash] of Object.entries(GOLDEN.hashes)) {
        assert.equal(got[name], hash, `${name}: output bytes differ from the recorded kernels'`);
      }
    } finally {
      setSubgroupBroadcasts(was);
    }
  },
});

Deno.test("expandWgsl unrolls marked loops and turns @registers arrays into variables", () => {
  const src = [
    "override N: u32 = 2u;",
    "override M: u32 = N + 1u;",
    "fn f() -> f32 {",
    "  var acc: array<array<f32, M>, N>; // @registers",
    "  // @unroll",
    "  for (var i = 0u; i < N; i++) {",
    "    const s = i * 2u;",
    "    // @unroll",
    "    for (var j = 0u; j < M; j++) {",
    "      acc[i][(s + j) % M] = f32(i + j);",
    "    }",
    "  }",
    "  // @unroll if N > 3u",
    "  for (var k = 0u; k < N; k++) {",
    "  }",
    "  return acc[1][2];",
    "}",
  ].join("\n");
  const out = expandWgsl(src, { N: 2 });
  assert.match(out, /^const N: u32 = 2u;$/m);
  assert.match(out, /^const M: u32 = N \+ 1u;|^const M: u32 = 3u;$/m);
  assert.doesNotMatch(out, /override|@unroll|@registers|acc\[/);
  // 2 × 3 registers, each zeroed where declared.
  assert.equal(out.match(/var acc_\d_\d = f32\(\);/g)?.length, 6);
  // i = 1: s = 2, so j = 0, 1, 2 write acc_1_2, acc_1_0, acc_1_1.
  assert.match(out, /acc_1_2 = f32\(1u \+ 0u\);/);
  assert.match(out, /acc_1_0 = f32\(1u \+ 1u\);/);
  // The loop whose condition fails stays a loop.
  assert.match(out, /for \(var k = 0u; k < N; k\+\+\) \{/);
  assert.match(out, /return acc_1_2;/);
  assert.equal(expandWgsl(src, { N: 2 }), out, "expansion is deterministic");
});

Deno.test("expandWgsl rejects what it cannot make constant, naming the shader", () => {
  const src =
    "override N: u32 = 2u;\nvar r: array<f32, N>; // @registers\nfn f(x: u32) {\n  r[x] = 1.0;\n}";
  assert.throws(() => expandWgsl(src, {}, "demo"), /demo: "x" is not a constant/);
  assert.throws(() => expandWgsl(src, { K: 1 }, "demo"), /demo: constant K names no override/);
  assert.throws(
    () => expandWgsl("var r: array<f32, 2>; // @registers\nfn f() { r[2] = 1.0; }", {}, "demo"),
    /demo: index 2 of r is outside \[0, 2\)/,
  );
  assert.throws(
    () => expandWgsl("fn f() {\n  // @unroll\n  let a = 1;\n}", {}, "demo"),
    /demo: line 3 follows \/\/ @unroll/,
  );
  assert.equal(evaluate("min(7u, 2u * 3u) + (5 / 2) - 9 % 4", new Map()), 7);
  assert.equal(evaluate("A > 2u && !(B == 1u) || false", new Map([["A", 3], ["B", 0]])), 1);
  // Values of literal-only expressions are kept between calls; those naming constants are
  // evaluated afresh (the same text may see another value), and errors are not kept.
  assert.equal(evaluate("4u * 2u + 1u", new Map()), 9);
  assert.equal(evaluate("4u * 2u + 1u", new Map()), 9);
  assert.equal(evaluate("N * 2u", new Map([["N", 3]])), 6);
  assert.equal(evaluate("N * 2u", new Map([["N", 5]])), 10);
  assert.throws(() => evaluate("1u / 0u", new Map()), /division by zero/);
  assert.throws(() => evaluate("1u / 0u", new Map()), /division by zero/);
  // Nested unrolled loops whose inner bound uses the outer index.
  const tri = "fn f() {\n  // @unroll\n  for (var i = 0u; i < 3u; i++) {\n    // @unroll\n" +
    "    for (var j = 0u; j < i; j++) {\n      g(i, j);\n    }\n  }\n}";
  const calls = [...expandWgsl(tri, {}).matchAll(/g\((\d+)u, (\d+)u\)/g)].map((m) => m[1] + m[2]);
  assert.deepEqual(calls, ["10", "20", "21"]);
});

Deno.test("f16Form switches the marked alias to f16 and enables f16, nothing else", () => {
  const src = "// header\nalias T = f32; // @f16: inputs\nalias U = f32;\nvar<private> x: T;";
  assert.equal(
    f16Form(src, "demo"),
    "enable f16;\n// header\nalias T = f16; // @f16: inputs\nalias U = f32;\nvar<private> x: T;",
  );
  assert.throws(() => f16Form("alias T = f32;", "demo"), /demo: has no "alias T = f32; \/\/ @f16"/);
});

Deno.test("params layouts give the WGSL struct and the packing from one declaration", () => {
  const layout = params({ n: "u32", bias: "i32", scale: "f32", dims: "u32x8" });
  // u32x8 starts at the next 16-byte boundary: 3 scalars, 1 implicit slot, 8 values.
  assert.equal(layout.slots, 12);
  assert.equal(
    layout.wgsl,
    "struct Params {\n  n: u32,\n  bias: i32,\n  scale: f32,\n  dims: array<vec4<u32>, 2>,\n}\n",
  );
  const bytes = layout.pack({ n: 7, bias: -3, scale: 0.5, dims: [2, 3, 4] });
  const v = new DataView(bytes);
  assert.equal(bytes.byteLength, 48);
  assert.deepEqual([v.getUint32(0, true), v.getInt32(4, true), v.getFloat32(8, true)], [
    7,
    -3,
    0.5,
  ]);
  assert.deepEqual([16, 20, 24, 28].map((o) => v.getUint32(o, true)), [2, 3, 4, 0]);
  const short = params({ a: "u32" });
  assert.equal(
    short.wgsl,
    "struct Params {\n  a: u32,\n  _pad1: u32,\n  _pad2: u32,\n  _pad3: u32,\n}\n",
  );
  const src = "override WG: u32 = 64u;\n@group(0) @binding(0) var<uniform> P: Params;\n";
  assert.match(short.inject(src), /struct Params \{[^}]*\}\n\n@group\(0\) @binding\(0\)/);
  assert.throws(
    () =>
      short.inject("struct Params { a: u32 }\n@group(0) @binding(0) var<uniform> P: Params;", "k"),
    /k: declares struct Params itself/,
  );
  assert.throws(() => params({ Bad: "u32" }), /field name "Bad"/);
});
