/**
 * The pretrained-weights downloader against a loopback HTTP server the test starts: one
 * download into the cache, atomically, then cache hits; the sha256 prefix in the file name is
 * checked and a mismatch deletes the file. No GPU and no internet needed.
 */
import assert from "node:assert/strict";
import {
  defaultCacheDir,
  downloadToCache,
  hashPrefixOf,
  readPretrainedSource,
} from "../../src/models/pretrained_source_deno.ts";

const FIX = new URL("../fixtures/pth/", import.meta.url);

async function sha256Hex(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", b);
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Serves `files` on 127.0.0.1 (random port); counts requests per path. */
function serve(files: Record<string, Uint8Array<ArrayBuffer>>) {
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const p = new URL(req.url).pathname;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    const body = files[p];
    return body
      ? new Response(body, { headers: { "content-length": String(body.length) } })
      : new Response("not found", { status: 404 });
  });
  return { server, hits, base: `http://127.0.0.1:${server.addr.port}` };
}

async function listDir(d: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(d)) out.push(e.name);
  return out.sort();
}

Deno.test("download: hash prefix from torchvision file names", () => {
  assert.equal(hashPrefixOf("resnet18-f37072fd.pth"), "f37072fd");
  assert.equal(hashPrefixOf("resnet50-11ad3fa6.pth"), "11ad3fa6");
  assert.equal(hashPrefixOf("weights.pth"), null);
  assert.ok(defaultCacheDir().endsWith("/classifier-training/pretrained"));
});

Deno.test("download: once into the cache, checked against the sha256 prefix", async () => {
  const bytes = Deno.readFileSync(new URL("resnet18_prefix.pth", FIX));
  const hash = await sha256Hex(bytes);
  const good = `/models/resnet18-${hash.slice(0, 8)}.pth`;
  const wrong = `/models/resnet18-${hash[0] === "0" ? "1" : "0"}${hash.slice(1, 8)}.pth`;
  const { server, hits, base } = serve({ [good]: bytes, [wrong]: bytes });
  const cacheDir = await Deno.makeTempDir();
  try {
    const p1 = await downloadToCache(base + good, { cacheDir, progress: false });
    assert.equal(p1, `${cacheDir}/resnet18-${hash.slice(0, 8)}.pth`);
    assert.deepEqual(Deno.readFileSync(p1), bytes);
    const again = await readPretrainedSource(base + good, { cacheDir, progress: false });
    assert.deepEqual(again.bytes, bytes);
    assert.equal(hits.get(good), 1, "the second read is served from the cache");
    // A file whose content does not match its name's hash prefix is deleted, with a message.
    await assert.rejects(
      () => downloadToCache(base + wrong, { cacheDir, progress: false }),
      /sha256 [0-9a-f]{16}… does not start with [0-9a-f]{8}.*the download was deleted/,
    );
    assert.deepEqual(await listDir(cacheDir), [p1.split("/").pop()!], "no partial or bad file");
    await assert.rejects(
      () => downloadToCache(`${base}/models/missing-12345678.pth`, { cacheDir, progress: false }),
      /HTTP 404/,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("download: the cache folder follows $XDG_CACHE_HOME", () => {
  const old = Deno.env.get("XDG_CACHE_HOME");
  try {
    Deno.env.set("XDG_CACHE_HOME", "/tmp/xdg-test");
    assert.equal(defaultCacheDir(), "/tmp/xdg-test/classifier-training/pretrained");
  } finally {
    if (old === undefined) Deno.env.delete("XDG_CACHE_HOME");
    else Deno.env.set("XDG_CACHE_HOME", old);
  }
});
