/**
 * Portability check of our WGSL on a second WebGPU implementation: bundles
 * tools/browser_check/entry.ts (a representative set of our test files plus conv with each
 * algorithm forced, against tests/golden/{core,nn,model}.json), serves it on 127.0.0.1 and
 * runs it in headless Chromium (Dawn/Tint, SwiftShader; launched by `tools/cdp.ts`, the web
 * app tests' client), then prints one row per check.
 * Not part of `deno task test`: CI must not depend on Chromium.
 *
 *   deno run -A tools/browser_check.ts [--chromium=/usr/bin/chromium] [--only=<substring>]
 *     [--timeout=900] [--keep-bundle=<dir>] [--flags="extra chromium flags"]
 *
 * Exits 1 when a check fails or the page never finishes.
 *
 * @module
 */
import type { CheckRow } from "./browser_check/entry.ts";
import { bundleForBrowser } from "../web/build.ts";
import { CHROMIUM, CHROMIUM_FLAGS, launchChromium } from "./cdp.ts";

const root = new URL("../", import.meta.url);
const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const chromium = arg("chromium") ?? CHROMIUM;
const timeoutS = Number(arg("timeout") ?? 900);
const only = arg("only");

const work = await Deno.makeTempDir({ prefix: "browser_check_" });

/**
 * Bundles `entry` for the browser with the web build's import map (the browser host seam), plus
 * tests/helpers.ts swapped for the shim.
 */
function bundle(entry: string, out: string): Promise<void> {
  const helpers = new URL("tests/helpers.ts", root).href;
  return bundleForBrowser(entry, out, {
    minify: false,
    imports: { [helpers]: new URL("tools/browser_check/helpers_shim.ts", root).href },
    // The shim itself wraps the real helpers.
    scopes: { [new URL("tools/browser_check/", root).href]: { [helpers]: helpers } },
  });
}

await bundle("tools/browser_check/entry.ts", `${work}/bundle.js`);
await bundle("tools/browser_check/assert_shim.ts", `${work}/assert.js`);

const INDEX = `<!doctype html><html><head><meta charset="utf-8">
<script type="importmap">{"imports":{"node:assert/strict":"/assert.js"}}</script>
<script>
const fatal = (m) => fetch("/fatal", { method: "POST", body: JSON.stringify({ message: String(m) }) });
addEventListener("error", (e) => fatal(e.error?.stack ?? e.message));
addEventListener("unhandledrejection", (e) => fatal(e.reason?.stack ?? e.reason));
</script>
<script type="module" src="/bundle.js" onerror="fatal('could not load /bundle.js')"></script></head><body>browser_check</body></html>`;

const rows: CheckRow[] = [];
let adapter: unknown = null;
let finished: (why: string) => void = () => {};
const done = new Promise<string>((resolve) => finished = resolve);

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
  const path = new URL(req.url).pathname;
  if (req.method === "POST") {
    const body = await req.json();
    if (path === "/adapter") {
      adapter = body;
      console.log(`adapter: ${JSON.stringify(body)}`);
    } else if (path === "/row") {
      const r = body as CheckRow;
      rows.push(r);
      const err = r.maxAbsError === null ? "-" : r.maxAbsError.toExponential(2);
      console.log(`${r.status.toUpperCase().padEnd(4)} ${err.padStart(9)} ${r.name}`);
      if (r.message && r.status === "fail") console.log(`     ${r.message}`);
    } else if (path === "/done") finished("done");
    else if (path === "/fatal") {
      console.log(`fatal: ${body.message}`);
      finished("fatal");
    }
    return new Response("ok");
  }
  if (path === "/" || path === "/index.html") {
    return new Response(INDEX, { headers: { "content-type": "text/html" } });
  }
  if (path === "/bundle.js" || path === "/assert.js") {
    return new Response(await Deno.readFile(`${work}${path}`), {
      headers: { "content-type": "text/javascript" },
    });
  }
  const m = path.match(/^\/golden\/(core|nn|model|resnet)\.json$/);
  if (m) {
    return new Response(await Deno.readFile(new URL(`tests/golden/${m[1]}.json`, root)), {
      headers: { "content-type": "application/json" },
    });
  }
  return new Response("not found", { status: 404 });
});

const url = `http://127.0.0.1:${server.addr.port}/${
  only ? `?only=${encodeURIComponent(only)}` : ""
}`;
const extraFlags = arg("flags")?.split(" ").filter(Boolean) ?? [];
console.log(`${chromium} ${[...CHROMIUM_FLAGS, ...extraFlags].join(" ")} ${url}`);
const browser = await launchChromium({
  profileDir: `${work}/profile`,
  chromium,
  flags: extraFlags,
  url,
  captureStderr: true,
});
const timer = setTimeout(() => finished("timeout"), timeoutS * 1000);
browser.exited.then((code) => finished(`chromium exited (${code})`));
const why = await done;
clearTimeout(timer);
await browser.close();
await server.shutdown();

const pass = rows.filter((r) => r.status === "pass").length;
const fail = rows.filter((r) => r.status === "fail");
const skip = rows.filter((r) => r.status === "skip");
console.log(`\n${why}: ${pass} passed, ${fail.length} failed, ${skip.length} skipped`);
for (const r of skip) console.log(`skipped: ${r.name}: ${r.message}`);
if (why !== "done") {
  console.log(`chromium stderr (tail):\n${await browser.stderrTail(30)}`);
}
const keep = arg("keep-bundle");
if (keep) await Deno.rename(work, keep);
else {
  // Chromium may still be writing into its profile there for a moment after it exits.
  await Deno.remove(work, { recursive: true }).catch(async () => {
    await new Promise((r) => setTimeout(r, 1000));
    await Deno.remove(work, { recursive: true }).catch((e) =>
      console.warn(`could not remove ${work}: ${e.message}`)
    );
  });
}
if (adapter === null || why !== "done" || fail.length > 0) Deno.exit(1);
