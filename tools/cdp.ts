/**
 * A small Chrome DevTools Protocol client, shared by the web app's tests (`tests/web/`) and the
 * WGSL portability check (`tools/browser_check.ts`): launches headless Chromium with WebGPU on
 * SwiftShader, and talks to the browser over one WebSocket. Pages are attached as flat sessions
 * (`Target.attachToTarget` with `flatten`), so one browser serves many pages, each in its own
 * browser context when isolation is wanted.
 *
 * ```ts
 * const browser = await launchChromium({ profileDir });
 * const page = await browser.newPage(url, { isolated: true });
 * await page.waitFor(`document.readyState === "complete"`, 60_000);
 * await browser.close();
 * ```
 *
 * @module
 */

/** Where Debian installs Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether an executable exists at `path`. */
export function hasChromium(path: string = CHROMIUM): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Chromium flags for WebGPU on SwiftShader without a display. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-unsafe-swiftshader",
  "--disable-gpu-sandbox",
  "--use-angle=swiftshader",
  "--enable-features=Vulkan",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // Background tabs and timers must not be throttled: pages train for minutes.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--window-size=1400,1000",
];

/** Options of {@link launchChromium}. */
export interface LaunchOptions {
  /** The browser profile folder (`--user-data-dir`); a fresh one gives an empty profile. */
  profileDir: string;
  /** The executable (default {@link CHROMIUM}). */
  chromium?: string;
  /** Flags added after {@link CHROMIUM_FLAGS}. */
  flags?: readonly string[];
  /** The URL of the first tab (default `about:blank`). */
  url?: string;
  /** Keep Chromium's stderr for {@link Chromium.stderrTail} (default: discarded). */
  captureStderr?: boolean;
  /** How long to wait for the DevTools port, in ms (default 60 000). */
  startTimeoutMs?: number;
}

/** The parameters and result of a CDP message, as JSON. */
type Json = Record<string, unknown>;

/** What a page (or the browser) answers commands with. */
interface Session {
  send<T = Json>(method: string, params?: Json): Promise<T>;
}

/** A page target attached as a flat session: commands, evaluation and its console. */
export interface Page extends Session {
  /** The CDP target id. */
  readonly targetId: string;
  /** Evaluates an expression in the page (promises awaited); resolves with its JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /**
   * Resolves with the value of `expression` once it is truthy; rejects after `timeoutMs`.
   * The page itself polls (a promise evaluated in the page), so a change is seen within a
   * frame, without a round trip per check.
   */
  waitFor<T = unknown>(expression: string, timeoutMs: number): Promise<T>;
  /** Console messages and uncaught exceptions of the page so far. */
  readonly console: string[];
  /** Closes the page (and its browser context, if it has its own). */
  close(): Promise<void>;
}

/** A launched Chromium. */
export interface Chromium extends Session {
  /** The DevTools port Chromium chose. */
  readonly port: number;
  /** Resolves with Chromium's exit code when it exits. */
  readonly exited: Promise<number>;
  /** Opens `url` in a new tab; `isolated` gives it a fresh browser context (own storage). */
  newPage(url: string, opts?: { isolated?: boolean }): Promise<Page>;
  /** Attaches to the first tab (the one opened with `LaunchOptions.url`). */
  firstPage(): Promise<Page>;
  /** The last `lines` lines of Chromium's stderr (with `captureStderr`). */
  stderrTail(lines?: number): Promise<string>;
  /** Closes the connection and ends the browser. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This process's environment without `GLIBC_TUNABLES` (see `launchChromium`). */
function withoutGlibcTunables(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.GLIBC_TUNABLES;
  return env;
}

/** Launches Chromium with its profile in `opts.profileDir` and connects to it. */
export async function launchChromium(opts: LaunchOptions): Promise<Chromium> {
  const chromium = opts.chromium ?? CHROMIUM;
  const child = new Deno.Command(chromium, {
    args: [
      ...CHROMIUM_FLAGS,
      ...(opts.flags ?? []),
      `--user-data-dir=${opts.profileDir}`,
      "--remote-debugging-port=0",
      opts.url ?? "about:blank",
    ],
    // Chromium starts with glibc's default allocator settings: the malloc tunables `.ci/run`
    // exports for our own processes (GLIBC_TUNABLES) make SwiftShader's Vulkan initialisation
    // fail in its GPU process ("Internal Vulkan error (-3)"), which leaves WebGPU without an
    // adapter.
    env: withoutGlibcTunables(),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: opts.captureStderr ? "piped" : "null",
  }).spawn();
  const stderr = opts.captureStderr ? new Response(child.stderr).text() : Promise.resolve("");
  let exitCode: number | null = null;
  const exited = child.status.then((s) => exitCode = s.code);
  // Chromium writes the port it chose (and the browser target's path) into DevToolsActivePort.
  const timeout = opts.startTimeoutMs ?? 60_000;
  const t0 = Date.now();
  let port = 0;
  let path = "";
  while (!port) {
    try {
      const [p, wsPath] = Deno.readTextFileSync(`${opts.profileDir}/DevToolsActivePort`)
        .split("\n");
      if (wsPath) [port, path] = [Number(p), wsPath];
    } catch { /* not written yet */ }
    if (port) break;
    if (exitCode !== null || Date.now() - t0 > timeout) {
      if (exitCode === null) child.kill();
      await exited;
      throw new Error(
        `chromium did not open a DevTools port within ${timeout / 1000} s ` +
          `(${chromium}, exit code ${exitCode}): ${
            (await stderr).split("\n").slice(-5).join("\n")
          }`,
      );
    }
    await sleep(50);
  }
  const conn = await connect(`ws://127.0.0.1:${port}${path}`);
  const browserSession: Session = { send: (m, p) => conn.send(m, p) };

  const attach = async (targetId: string, contextId?: string): Promise<Page> => {
    const { sessionId } = await conn.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const consoleLines: string[] = [];
    conn.listen(sessionId, (method, params) => {
      if (method === "Runtime.consoleAPICalled") {
        const args = params.args as { value?: unknown; description?: string }[];
        consoleLines.push(`${params.type}: ${args.map((a) => a.value ?? a.description).join(" ")}`);
      } else if (method === "Runtime.exceptionThrown") {
        const d = params.exceptionDetails as { exception?: { description?: string } };
        consoleLines.push(`exception: ${d?.exception?.description}`);
      }
    });
    const send = <T = Json>(method: string, params: Json = {}) =>
      conn.send<T>(method, params, sessionId);
    await send("Runtime.enable");
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await send<{ result: { value?: T }; exceptionDetails?: { text: string } }>(
        "Runtime.evaluate",
        { expression, returnByValue: true, awaitPromise: true },
      );
      if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${r.exceptionDetails.text}`);
      return r.result.value as T;
    };
    return {
      targetId,
      send,
      evaluate,
      async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
        // One evaluation that polls in the page every 50 ms; a navigation destroys the context
        // it ran in, so it is retried until the deadline.
        const deadline = Date.now() + timeoutMs;
        const poll = (ms: number) =>
          `new Promise((resolve) => {
            const end = Date.now() + ${ms};
            const tick = () => {
              let v;
              try { v = (${expression}); } catch { v = undefined; }
              if (v || Date.now() > end) resolve(v ?? null); else setTimeout(tick, 50);
            };
            tick();
          })`;
        while (true) {
          const v = await evaluate<T>(poll(Math.max(0, deadline - Date.now())))
            .catch(() => undefined);
          if (v) return v;
          if (Date.now() >= deadline) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
          }
          await sleep(100);
        }
      },
      console: consoleLines,
      async close() {
        conn.unlisten(sessionId);
        await conn.send("Target.closeTarget", { targetId }).catch(() => {});
        if (contextId) {
          await conn.send("Target.disposeBrowserContext", { browserContextId: contextId })
            .catch(() => {});
        }
      },
    };
  };

  return {
    port,
    exited,
    send: browserSession.send,
    async newPage(url, pageOpts = {}) {
      let contextId: string | undefined;
      if (pageOpts.isolated) {
        ({ browserContextId: contextId } = await conn.send<{ browserContextId: string }>(
          "Target.createBrowserContext",
        ));
      }
      const { targetId } = await conn.send<{ targetId: string }>("Target.createTarget", {
        url,
        ...(contextId ? { browserContextId: contextId } : {}),
      });
      return await attach(targetId, contextId);
    },
    async firstPage() {
      for (let i = 0; i < 200; i++) {
        const { targetInfos } = await conn.send<
          { targetInfos: { type: string; targetId: string }[] }
        >(
          "Target.getTargets",
        );
        const page = targetInfos.find((t) => t.type === "page");
        if (page) return await attach(page.targetId);
        await sleep(50);
      }
      throw new Error("chromium opened no page");
    },
    async stderrTail(lines = 30) {
      return (await stderr).split("\n").slice(-lines).join("\n");
    },
    async close() {
      // Browser.close ends Chromium cleanly (its profile written); SIGTERM if it does not.
      await conn.send("Browser.close").catch(() => {});
      conn.close();
      const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      await exited;
      await stderr;
    },
  };
}

/** One WebSocket to the browser target; messages routed by id and by session. */
interface Connection {
  send<T = Json>(method: string, params?: Json, sessionId?: string): Promise<T>;
  listen(sessionId: string, on: (method: string, params: Json) => void): void;
  unlisten(sessionId: string): void;
  close(): void;
}

async function connect(url: string): Promise<Connection> {
  const ws = new WebSocket(url);
  await new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = () => rej(new Error(`cannot connect to ${url}`));
  });
  let nextId = 1;
  const pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  const listeners = new Map<string, (method: string, params: Json) => void>();
  let closed = false;
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined && pending.has(m.id)) {
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      if (m.error) p.rej(new Error(`CDP ${m.error.message}`));
      else p.res(m.result);
    } else if (m.method && m.sessionId) listeners.get(m.sessionId)?.(m.method, m.params ?? {});
  };
  ws.onclose = () => {
    closed = true;
    for (const p of pending.values()) p.rej(new Error("CDP connection closed"));
    pending.clear();
  };
  return {
    send<T>(method: string, params: Json = {}, sessionId?: string): Promise<T> {
      if (closed) return Promise.reject(new Error(`CDP connection closed (${method})`));
      return new Promise<T>((res, rej) => {
        const id = nextId++;
        pending.set(id, { res: res as (v: unknown) => void, rej });
        ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      });
    },
    listen: (id, on) => void listeners.set(id, on),
    unlisten: (id) => void listeners.delete(id),
    close() {
      closed = true;
      ws.close();
    },
  };
}
