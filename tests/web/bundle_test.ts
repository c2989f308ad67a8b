/**
 * One code base: the library core and the web app's training worker bundle for the browser
 * with nothing Deno-specific in them, and the only modules of the worker's import graph that
 * call `Deno.*` are the platform modules the web build swaps out (`BROWSER_SWAPS`).
 */
import assert from "node:assert/strict";
import { BROWSER_SWAPS, bundleForBrowser } from "../../web/build.ts";

const root = new URL("../../", import.meta.url);
/** A call or property of the Deno namespace (`Deno.readFile`), not the word in prose. */
const DENO_API = /\bDeno\.[a-zA-Z]/;

for (const entry of ["mod.ts", "web/worker.ts", "web/main.ts"]) {
  Deno.test(`web build: ${entry} bundled for the browser contains no Deno API`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "web_bundle_" });
    try {
      const out = `${dir}/bundle.js`;
      await bundleForBrowser(entry, out);
      const code = await Deno.readTextFile(out);
      assert.ok(code.length > 10_000, `bundle of ${entry} is suspiciously small`);
      const m = code.match(new RegExp(`.{0,60}${DENO_API.source}.{0,40}`));
      assert.equal(m, null, `bundle of ${entry} uses the Deno API: …${m?.[0]}…`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("web build: in the worker's import graph only swapped platform modules call Deno.*", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "web/worker.ts"],
    cwd: root.pathname,
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string; local?: string }[];
  };
  const ours = info.modules.filter((m) => m.specifier.startsWith(root.href));
  assert.ok(ours.length > 50, `expected the whole core in the graph, got ${ours.length} modules`);
  const users: string[] = [];
  for (const m of ours) {
    const text = await Deno.readTextFile(new URL(m.specifier));
    // Comments may mention Deno; code may not.
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    if (DENO_API.test(code)) users.push(m.specifier.slice(root.href.length));
  }
  assert.ok(users.includes("src/platform/host.ts"), `Deno users: ${users}`);
  const unswapped = users.filter((u) => !(u in BROWSER_SWAPS));
  assert.deepEqual(unswapped, [], "modules calling Deno.* that the web build does not replace");
});
