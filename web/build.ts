/**
 * Builds the web app into a static folder (default `dist/web/`): `index.html`, `app.js` (the
 * page), `worker.js` (training) and the image decoders' wasm files. Both scripts are bundled
 * from the same `src/` modules as the CLI with `deno bundle --platform=browser`; the import
 * map puts the browser host seam (`src/platform/host_browser.ts`) in place of `host.ts` (see
 * `BROWSER_SWAPS`), so nothing Deno-specific is bundled. Nothing is fetched from a CDN.
 *
 *   deno task web:build [--out=dist/web]
 *
 * @module
 */

const root = new URL("../", import.meta.url);

/**
 * The platform modules the browser build replaces (repository paths): the host seam, and the
 * pretrained-weights reader `src/models/pretrained.ts` imports lazily (once that has landed).
 */
export const BROWSER_SWAPS: Readonly<Record<string, string>> = {
  "src/platform/host.ts": "src/platform/host_browser.ts",
  "src/models/pretrained_source_deno.ts": "src/platform/pretrained_source_browser.ts",
};

/** The import map of the browser build: the project's imports plus `BROWSER_SWAPS`. */
export async function browserImportMap(): Promise<{ imports: Record<string, string> }> {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const swaps = Object.entries(BROWSER_SWAPS).map(([from, to]) => [
    new URL(from, root).href,
    new URL(to, root).href,
  ]);
  return { imports: { ...denoJson.imports, ...Object.fromEntries(swaps) } };
}

/** Options of {@link bundleForBrowser}. */
export interface BundleOptions {
  /** Minify the output (default true). */
  minify?: boolean;
  /** Entries added to the import map's `imports` (e.g. a test shim). */
  imports?: Record<string, string>;
  /** The import map's `scopes`. */
  scopes?: Record<string, Record<string, string>>;
}

/**
 * Bundles `entry` (a path relative to the repository root) for the browser into `out`, with
 * the browser build's import map (`browserImportMap`) plus `opts.imports` / `opts.scopes`.
 */
export async function bundleForBrowser(
  entry: string,
  out: string,
  opts: BundleOptions = {},
): Promise<void> {
  const mapPath = await Deno.makeTempFile({ prefix: "web_import_map_", suffix: ".json" });
  try {
    const map = {
      imports: { ...(await browserImportMap()).imports, ...opts.imports },
      scopes: opts.scopes ?? {},
    };
    await Deno.writeTextFile(mapPath, JSON.stringify(map));
    // `deno bundle` sets up its esbuild binary on each start; two bundles starting at once
    // (the parallel test run bundles in two files) can find it half set up ("failed to start
    // esbuild: No such file or directory"). That is retried; any other failure is not.
    for (let attempt = 1;; attempt++) {
      const { code, stderr } = await bundleOnce(entry, out, mapPath, opts);
      if (code === 0) return;
      const message = new TextDecoder().decode(stderr);
      if (attempt < 4 && /failed to start esbuild/.test(message)) {
        await new Promise((r) => setTimeout(r, 500 * attempt));
        continue;
      }
      throw new Error(`deno bundle ${entry} failed (exit ${code}): ${message}`);
    }
  } finally {
    await Deno.remove(mapPath).catch(() => {});
  }
}

function bundleOnce(
  entry: string,
  out: string,
  mapPath: string,
  opts: BundleOptions,
): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--format=esm",
      ...(opts.minify ?? true ? ["--minify"] : []),
      `--import-map=${mapPath}`,
      "-o",
      out,
      new URL(entry, root).pathname,
    ],
    cwd: new URL(".", root).pathname,
    stdout: "inherit",
    stderr: "piped",
  }).output();
}

/** The decoders' wasm files (loaded next to the bundle through `import.meta.url`). */
async function wasmFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const spec of ["@jsquash/png", "@jsquash/jpeg"]) {
    // The package's entry resolves inside its folder in Deno's npm cache.
    const entry = new URL(import.meta.resolve(spec));
    let dir = entry.pathname.slice(0, entry.pathname.lastIndexOf("/"));
    while (!(await exists(`${dir}/package.json`))) dir = dir.slice(0, dir.lastIndexOf("/"));
    await walk(dir, out);
  }
  return out;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) await walk(p, out);
    else if (e.name.endsWith(".wasm") && !/_enc|encode/.test(e.name)) out.push(p);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes the static site into `outDir`; returns the files written with their sizes. */
export async function buildWeb(outDir: string): Promise<{ name: string; bytes: number }[]> {
  await Deno.mkdir(outDir, { recursive: true });
  await bundleForBrowser("web/main.ts", `${outDir}/app.js`);
  await bundleForBrowser("web/worker.ts", `${outDir}/worker.js`);
  await Deno.copyFile(new URL("web/index.html", root), `${outDir}/index.html`);
  for (const p of await wasmFiles()) {
    await Deno.copyFile(p, `${outDir}/${p.slice(p.lastIndexOf("/") + 1)}`);
  }
  const out: { name: string; bytes: number }[] = [];
  for await (const e of Deno.readDir(outDir)) {
    if (e.isFile) out.push({ name: e.name, bytes: (await Deno.stat(`${outDir}/${e.name}`)).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** `--out=DIR` of the command line, else `dist/web` under the repository root. */
export function outDirArg(args: readonly string[]): string {
  const a = args.find((x) => x.startsWith("--out="));
  return a ? a.slice(6) : new URL("dist/web", root).pathname;
}

if (import.meta.main) {
  const out = outDirArg(Deno.args);
  const files = await buildWeb(out);
  for (const f of files) console.log(`${String(f.bytes).padStart(10)}  ${out}/${f.name}`);
  console.log(`${String(files.reduce((a, f) => a + f.bytes, 0)).padStart(10)}  total`);
}
