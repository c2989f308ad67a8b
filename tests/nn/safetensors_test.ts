import assert from "node:assert/strict";
import "../helpers.ts";
import { memoryStats, Tensor } from "../../src/gpu/tensor.ts";
import {
  f16ToF32,
  f32ToF16,
  hostToFloat32,
  hostToInt32,
  loadSafetensors,
  parseSafetensors,
  SafetensorsError,
  saveSafetensors,
  serializeSafetensors,
  serializeTensors,
  toHostTensor,
  toHostTensors,
} from "../../src/nn/safetensors.ts";

/** Builds a file from a raw header object and a data section. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint) {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function expectError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => parseSafetensors(bytes, "bad.safetensors"), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one-line message");
    return true;
  });
}

Deno.test("safetensors: host round trip of every dtype", () => {
  const f = [1.5, -2.25, 0, 3e-5, 65504, -1e9];
  const entries = new Map([
    ["a.f32", toHostTensor(f, [2, 3], "F32")],
    ["b.f16", toHostTensor([1, -0.5, 0.333251953125, 65504], [4], "F16")],
    ["c.bf16", toHostTensor([1, -2, 3.140625], [3], "BF16")],
    ["d.i64", toHostTensor([7], [], "I64")],
    ["e.i32", toHostTensor([-3, 4], [2], "I32")],
    ["empty", toHostTensor([], [0, 5], "F32")],
  ]);
  const bytes = serializeSafetensors(entries, { metadata: { format: "pt", note: "x" } });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0, "header padded to 8 bytes");
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt", note: "x" });
  assert.deepEqual([...tensors.keys()], [...entries.keys()]);
  assert.deepEqual(
    Array.from(hostToFloat32(tensors.get("a.f32")!)),
    Array.from(Float32Array.from(f)),
  );
  assert.deepEqual(Array.from(hostToFloat32(tensors.get("b.f16")!)), [
    1,
    -0.5,
    0.333251953125,
    65504,
  ]);
  assert.deepEqual(Array.from(hostToFloat32(tensors.get("c.bf16")!)), [1, -2, 3.140625]);
  assert.deepEqual(Array.from(hostToInt32(tensors.get("d.i64")!)), [7]);
  assert.deepEqual(tensors.get("d.i64")!.shape, []);
  assert.deepEqual(Array.from(hostToInt32(tensors.get("e.i32")!)), [-3, 4]);
  assert.deepEqual(tensors.get("empty")!.shape, [0, 5]);
});

Deno.test("safetensors: f16 conversion is exact for every half value", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16ToF32(h);
    if (Number.isNaN(v)) continue;
    assert.equal(f32ToF16(v), h, `half 0x${h.toString(16)} = ${v}`);
  }
  assert.equal(f32ToF16(65520), 0x7c00, "rounds to +inf past the max");
  assert.equal(f32ToF16(2 ** -25), 0, "half of the smallest subnormal ties to even (0)");
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00, "tie to even");
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02, "tie to even (up)");
});

Deno.test("safetensors: GPU save/load round trip, num_batches_tracked as I64, atomic", async () => {
  const dir = await Deno.makeTempDir();
  const before = memoryStats().liveBuffers;
  const w = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  const n = Tensor.fromArray(new Int32Array([3]), []);
  const k = Tensor.fromArray(new Int32Array([-1, 2]), [2]);
  const path = `${dir}/m.safetensors`;
  await saveSafetensors(path, { "fc.weight": w, "bn1.num_batches_tracked": n, idx: k }, {
    metadata: { epoch: "3" },
  });
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.safetensors"]);
  const parsed = parseSafetensors(await Deno.readFile(path));
  assert.equal(parsed.tensors.get("bn1.num_batches_tracked")!.dtype, "I64");
  assert.equal(parsed.tensors.get("idx")!.dtype, "I32");
  assert.equal(parsed.tensors.get("fc.weight")!.dtype, "F32");
  assert.deepEqual(parsed.metadata, { epoch: "3" });
  const loaded = await loadSafetensors(path);
  assert.equal(loaded.get("bn1.num_batches_tracked")!.dtype, "i32");
  assert.deepEqual(loaded.get("bn1.num_batches_tracked")!.shape, []);
  assert.deepEqual(Array.from(await loaded.get("bn1.num_batches_tracked")!.toArray()), [3]);
  assert.deepEqual(Array.from(await loaded.get("fc.weight")!.toArray()), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(await loaded.get("idx")!.toArray()), [-1, 2]);
  // F16 storage option
  await saveSafetensors(path, { w }, { floatDType: "F16" });
  const half = await loadSafetensors(path);
  assert.deepEqual(Array.from(await half.get("w")!.toArray()), [1, 2, 3, 4, 5, 6]);
  for (const t of [w, n, k, ...loaded.values(), ...half.values()]) t.dispose();
  assert.equal(memoryStats().liveBuffers, before);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("safetensors: GPU tensors serialize to the bytes of an independent writer", async () => {
  // Both fixtures come from tests/golden/export_resnet.py's own minimal writer (Python, not
  // this module): F32 and I64 without metadata, and F16 with {"format": "pt"}.
  const fixtures: [string, "F32" | "F16", Record<string, string> | undefined][] = [
    ["resnet18_c10_seed0_prefix.ref.safetensors", "F32", undefined],
    ["resnet18_c10_seed0_prefix.f16.safetensors", "F16", { format: "pt" }],
  ];
  for (const [name, floatDType, metadata] of fixtures) {
    const file = await Deno.readFile(new URL(`../fixtures/${name}`, import.meta.url));
    const loaded = await loadSafetensors(file);
    try {
      const dtypes = new Set([...parseSafetensors(file).tensors.values()].map((t) => t.dtype));
      assert.ok(dtypes.has(floatDType) && dtypes.has("I64"), `${name}: ${[...dtypes]}`);
      const gpu = await serializeTensors(loaded, { floatDType, metadata });
      assert.equal(gpu.byteLength, file.byteLength, name);
      assert.ok(gpu.every((b, i) => b === file[i]), `${name}: GPU path bytes differ`);
      const host = serializeSafetensors(await toHostTensors(loaded, { floatDType }), { metadata });
      assert.ok(host.every((b, i) => b === file[i]), `${name}: host path bytes differ`);
    } finally {
      for (const t of loaded.values()) t.dispose();
    }
  }
});

Deno.test("safetensors: hostile and malformed headers give one-line errors", () => {
  const f32 = (shape: number[], offs: unknown) => ({ dtype: "F32", shape, data_offsets: offs });
  const data16 = new Uint8Array(16);
  expectError(new Uint8Array(5), /5 bytes, expected at least 8/);
  expectError(rawFile({}, data16, 1n << 62n), /header length \d+ exceeds/);
  expectError(rawFile({}, data16, 1000n), /header length 1000 exceeds the \d+ bytes after/);
  expectError(rawFile('{"a": ', data16), /not valid JSON/);
  const badUtf8 = rawFile("{}    ");
  badUtf8[9] = 0xff;
  expectError(badUtf8, /not valid UTF-8/);
  expectError(rawFile([1, 2]), /must be a JSON object, got array/);
  expectError(rawFile("null"), /must be a JSON object/);
  expectError(rawFile({ w: 3 }), /tensor "w" must be an object/);
  expectError(
    rawFile({ w: { dtype: "Q4", shape: [1], data_offsets: [0, 4] } }, data16),
    /"w" has dtype "Q4"/,
  );
  expectError(
    rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, data16),
    /"w" has dtype undefined/,
  );
  expectError(rawFile({ w: f32([-1], [0, 4]) }, data16), /"w" field "shape" has -1/);
  expectError(rawFile({ w: f32([1.5], [0, 4]) }, data16), /"w" field "shape" has 1.5/);
  expectError(rawFile({ w: f32(["2"] as unknown as number[], [0, 4]) }, data16), /"shape" has "2"/);
  expectError(
    rawFile({ w: { dtype: "F32", shape: 4, data_offsets: [0, 16] } }, data16),
    /"shape" must be an array/,
  );
  expectError(
    rawFile({ w: f32([2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }, data16),
    /"w" field "shape" .* too large/,
  );
  expectError(
    rawFile({ w: f32([4], [0, 32]) }, data16),
    /"w" field "data_offsets" \[0, 32\] exceeds the 16-byte/,
  );
  expectError(rawFile({ w: f32([0], [8, 4]) }, data16), /begin > end/);
  expectError(
    rawFile({ w: f32([1], [0]) }, data16),
    /"data_offsets" must be two non-negative integers/,
  );
  expectError(rawFile({ w: f32([1], [-4, 0]) }, data16), /"data_offsets" must be two/);
  expectError(rawFile({ w: f32([1], [0, 1e300]) }, data16), /"data_offsets" must be two/);
  expectError(
    rawFile({ w: f32([3], [0, 16]) }, data16),
    /"w" has shape \[3\] F32 \(12 bytes\) but data_offsets span 16/,
  );
  expectError(
    rawFile({ a: f32([2], [0, 8]), b: f32([0], [8, 8]), c: f32([2], [4, 12]) }, data16),
    /tensor "c" data \[4, 12\] overlaps tensor "a" \[0, 8\]/,
  );
  expectError(rawFile({ __metadata__: { a: 1 } }), /"__metadata__"."a" must be a string/);
  expectError(rawFile({ __metadata__: ["x"] }), /"__metadata__" must be an object/);
  // valid edge cases still parse
  const ok = parseSafetensors(rawFile({ a: f32([2], [8, 16]), b: f32([0], [0, 0]) }, data16));
  assert.deepEqual([...ok.tensors.keys()], ["b", "a"]);
});

Deno.test("safetensors: I64 values outside i32 are rejected on load, naming the key", async () => {
  const big = toHostTensor([0], [1], "I64");
  new DataView(big.data.buffer).setBigInt64(0, 1n << 40n, true);
  const bytes = serializeSafetensors({ "bn.num_batches_tracked": big });
  const before = memoryStats().liveBuffers;
  await assert.rejects(
    () => loadSafetensors(bytes),
    /"bn.num_batches_tracked" element 0 = 1099511627776 does not fit in i32/,
  );
  assert.equal(memoryStats().liveBuffers, before, "nothing half-loaded");
  await assert.rejects(() => loadSafetensors("/nonexistent/x.safetensors"), /cannot read/);
});
