/**
 * `deno task web [--port=8000] [--hostname=127.0.0.1] [--out=dist/web]`: builds the web app
 * (see `build.ts`) and serves it on localhost with `Deno.serve`, printing the URL.
 *
 * @module
 */

import { buildWeb, outDirArg } from "./build.ts";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  wasm: "application/wasm",
  css: "text/css; charset=utf-8",
  json: "application/json",
};

/** Serves the static files of `dir` (no listing, no paths outside it). */
export function serveStatic(
  dir: string,
  options: { port: number; hostname: string; onListen?: (url: string) => void },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    port: options.port,
    hostname: options.hostname,
    onListen: ({ port }) => options.onListen?.(`http://${options.hostname}:${port}/`),
  }, async (req) => {
    let path = decodeURIComponent(new URL(req.url).pathname);
    if (path.endsWith("/")) path += "index.html";
    if (path.split("/").some((p) => p === ".." || p.startsWith("."))) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(`${dir}${path}`);
      const ext = path.slice(path.lastIndexOf(".") + 1);
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const arg = (name: string): string | undefined =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const port = Number(arg("port") ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`error: --port: expected an integer in 0..65535, got "${arg("port")}"`);
    Deno.exit(2);
  }
  const out = outDirArg(Deno.args);
  const files = await buildWeb(out);
  console.log(
    `built ${out}: ${files.map((f) => `${f.name} ${(f.bytes / 1024).toFixed(0)} KiB`).join(", ")}`,
  );
  serveStatic(out, {
    port,
    hostname: arg("hostname") ?? "127.0.0.1",
    onListen: (url) => console.log(`serving the web app at ${url}`),
  });
}
