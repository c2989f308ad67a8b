import assert from "node:assert/strict";
import { atomicWrite } from "../../src/io/atomic.ts";
import { host as memoryHost, mountFile } from "../../src/platform/host_browser.ts";

const bytes = (...v: number[]) => new Uint8Array(v);

Deno.test("atomicWrite: a list of pieces is written in order, atomically", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/x.safetensors`;
  atomicWrite(path, [bytes(1, 2), bytes(), bytes(3), bytes(4, 5, 6)]);
  assert.deepEqual(Deno.readFileSync(path), bytes(1, 2, 3, 4, 5, 6));
  // A crash before the rename keeps the old file, and no temp file is left.
  assert.throws(
    () =>
      atomicWrite(path, [bytes(9), bytes(9)], {
        beforeRename: (tmp) => {
          assert.deepEqual(Deno.readFileSync(tmp), bytes(9, 9), "temp file holds all pieces");
          throw new Error("simulated crash");
        },
      }),
    /simulated crash/,
  );
  assert.deepEqual(Deno.readFileSync(path), bytes(1, 2, 3, 4, 5, 6));
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["x.safetensors"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("browser host: written pieces are joined and copied; appends extend the file", () => {
  mountFile("/t/keep.txt", bytes(0));
  const a = bytes(1, 2);
  const b = bytes(3);
  memoryHost.writeFileSync("/t/f", [a, b]);
  a[0] = 7; // the caller's arrays stay the caller's
  assert.deepEqual(memoryHost.readFileSync("/t/f"), bytes(1, 2, 3));
  memoryHost.writeFileSync("/t/f", bytes(4), { append: true });
  memoryHost.writeFileSync("/t/f", [bytes(5), bytes(6)], { append: true });
  assert.deepEqual(memoryHost.readFileSync("/t/f"), bytes(1, 2, 3, 4, 5, 6));
  memoryHost.writeFileSync("/t/f", bytes(8));
  assert.deepEqual(memoryHost.readFileSync("/t/f"), bytes(8));
  assert.throws(() => memoryHost.writeFileSync("/nowhere/f", bytes(1)), /No such file/);
});
