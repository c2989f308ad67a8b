/**
 * The web app's training step in headless Chromium (WebGPU on SwiftShader): bundles
 * tools/browser_bench/entry.ts, runs it in a fresh browser per variant, and prints the page's
 * wall time and the browser's CPU seconds (all its processes, read from /proc) per phase:
 * the first step (pipelines compiled), the later steps, and an evaluation forward.
 *
 *   deno run -A tools/browser_bench.ts [--steps=4] [--variants="profile=1;cpu=0"] [--chromium=…]
 *
 * `--variants` is a semicolon-separated list of page queries (see the entry's doc; the empty
 * one: as the web app runs). `BENCH_THREADS=1` adds CPU seconds per thread of each process.
 *
 * @module
 */
import { bundleForBrowser } from "../web/build.ts";
import { CHROMIUM, launchChromium } from "./cdp.ts";

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const chromium = arg("chromium") ?? CHROMIUM;
const steps = Number(arg("steps") ?? 4);
const variants = (arg("variants") ?? "").split(";");

const work = await Deno.makeTempDir({ prefix: "browser_bench_" });
await bundleForBrowser("tools/browser_bench/entry.ts", `${work}/bundle.js`, { minify: false });

const INDEX = `<!doctype html><html><head><meta charset="utf-8">
<script type="module" src="/bundle.js"></script></head><body>browser_bench</body></html>`;

const TICK = 100; // USER_HZ on Linux

/** CPU seconds of `root` and its descendants (live ones, plus the reaped ones via cutime). */
function treeCpu(root: number): number {
  const stats = new Map<number, { ppid: number; cpu: number }>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const s = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      // Fields after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
      stats.set(Number(e.name), {
        ppid: Number(f[1]),
        cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK,
      });
    } catch { /* gone */ }
  }
  let sum = 0;
  for (const [pid, s] of stats) {
    for (let p = pid; p > 1;) {
      if (p === root) {
        sum += s.cpu;
        break;
      }
      p = stats.get(p)?.ppid ?? 0;
    }
  }
  return sum;
}

let onPost: (path: string, body: Record<string, unknown>) => void = () => {};
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
  const path = new URL(req.url).pathname;
  if (req.method === "POST") {
    onPost(path, await req.json());
    return new Response("ok");
  }
  if (path === "/") return new Response(INDEX, { headers: { "content-type": "text/html" } });
  if (path === "/bundle.js") {
    return new Response(await Deno.readFile(`${work}/bundle.js`), {
      headers: { "content-type": "text/javascript" },
    });
  }
  return new Response("not found", { status: 404 });
});

for (const v of variants) {
  const url = `http://127.0.0.1:${server.addr.port}/?steps=${steps}&${v}`;
  const browser = await launchChromium({
    profileDir: `${work}/profile_${Math.random()}`,
    chromium,
  });
  // The browser's pid: the launcher's child; found as the process whose profile we gave.
  const pid = findBrowserPid(work);
  let last = treeCpu(pid);
  console.log(`== variant "${v}" (chromium pid ${pid}, ${last.toFixed(1)} CPU-s at launch)`);
  const done = new Promise<string>((resolve) => {
    onPost = (path, body) => {
      if (path === "/mark") {
        const now = treeCpu(pid);
        console.log(
          `  ${String(body.what).padEnd(28)} ${
            (Number(body.ms) / 1000).toFixed(2).padStart(7)
          } s ` +
            `${(now - last).toFixed(1).padStart(6)} CPU-s  pipelines ${body.pipelines}`,
        );
        last = now;
      } else if (path === "/adapter") console.log(`  adapter ${JSON.stringify(body)}`);
      else if (path === "/table") {
        const rows = body.rows as [number, string][];
        console.log(
          `  compile alone: ${(Number(body.total) / 1000).toFixed(1)} s over ${rows.length}`,
        );
        for (const [ms, what] of rows) console.log(`    ${ms.toFixed(0).padStart(6)} ms  ${what}`);
      } else if (path === "/done") resolve("done");
      else if (path === "/fatal") resolve(`fatal: ${body.message}`);
    };
  });
  const page = await browser.newPage(url);
  const why = await done;
  console.log(`  ${why}; total ${treeCpu(pid).toFixed(1)} CPU-s`);
  if (Deno.env.get("BENCH_THREADS")) threadTable(pid);
  await page.close();
  await browser.close();
}
await server.shutdown();
await Deno.remove(work, { recursive: true }).catch(() => {});

function findBrowserPid(dir: string): number {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (
        cmd.some((a) => a.startsWith(`--user-data-dir=${dir}`)) &&
        !cmd.some((a) => a.startsWith("--type="))
      ) {
        return Number(e.name);
      }
    } catch { /* gone */ }
  }
  throw new Error("chromium's browser process not found");
}

/** CPU seconds per thread name of each process of the tree (diagnostics). */
function threadTable(root: number): void {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (!inTree(Number(e.name), root)) continue;
      const type = cmd.find((a) => a.startsWith("--type="))?.slice(7) ?? "browser";
      const by = new Map<string, number>();
      for (const t of Deno.readDirSync(`/proc/${e.name}/task`)) {
        const comm = Deno.readTextFileSync(`/proc/${e.name}/task/${t.name}/comm`).trim();
        const st = Deno.readTextFileSync(`/proc/${e.name}/task/${t.name}/stat`);
        const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
        by.set(comm, (by.get(comm) ?? 0) + (Number(f[11]) + Number(f[12])) / TICK);
      }
      const rows = [...by].filter(([, v]) => v >= 0.2).sort((a, b) => b[1] - a[1]);
      console.log(
        `  ${type} ${e.name}: ${rows.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`,
      );
    } catch { /* gone */ }
  }
}

function inTree(pid: number, root: number): boolean {
  for (let p = pid; p > 1;) {
    if (p === root) return true;
    const st = Deno.readTextFileSync(`/proc/${p}/stat`);
    p = Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return false;
}
