/**
 * A small Chrome DevTools Protocol client for the web app's tests: launches headless Chromium
 * on a URL and talks to the page target over its WebSocket (commands and events).
 *
 * @module
 */

/** Where Debian installs Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether an executable exists at `path`. */
export function hasChromium(path = CHROMIUM): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A launched browser with one page. */
export interface Browser {
  /** Sends a command to the page target; resolves with its result. */
  send<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** Evaluates an expression in the page; resolves with its (JSON) value. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Resolves when `expression` becomes truthy (polled), with its value; rejects after `timeoutMs`. */
  waitFor<T = unknown>(expression: string, timeoutMs: number): Promise<T>;
  /** Console messages and exceptions of the page so far. */
  console: string[];
  /** Closes the connection and ends the browser. */
  close(): Promise<void>;
}

/** Chromium flags for WebGPU on SwiftShader without a display. */
const FLAGS = [
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
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--window-size=1400,1000",
];

/** Launches Chromium on `url` with its profile in `profileDir`. */
export async function launch(
  url: string,
  profileDir: string,
  chromium = CHROMIUM,
): Promise<Browser> {
  const child = new Deno.Command(chromium, {
    args: [...FLAGS, `--user-data-dir=${profileDir}`, "--remote-debugging-port=0", url],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Chromium writes the port it chose into DevToolsActivePort.
  let port = 0;
  for (let i = 0; i < 300 && !port; i++) {
    try {
      port = Number(Deno.readTextFileSync(`${profileDir}/DevToolsActivePort`).split("\n")[0]);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (!port) {
    child.kill();
    throw new Error(`chromium did not open a DevTools port within 30 s (${chromium})`);
  }
  let wsUrl = "";
  for (let i = 0; i < 100 && !wsUrl; i++) {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
      type: string;
      url: string;
      webSocketDebuggerUrl: string;
    }[];
    wsUrl = list.find((t) => t.type === "page")?.webSocketDebuggerUrl ?? "";
    if (!wsUrl) await new Promise((r) => setTimeout(r, 100));
  }
  const ws = new WebSocket(wsUrl);
  await new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = () => rej(new Error(`cannot connect to ${wsUrl}`));
  });
  let nextId = 1;
  const pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  const consoleLines: string[] = [];
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id && pending.has(m.id)) {
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      if (m.error) p.rej(new Error(`CDP ${m.error.message}`));
      else p.res(m.result);
    } else if (m.method === "Runtime.consoleAPICalled") {
      consoleLines.push(
        `${m.params.type}: ${
          m.params.args.map((a: { value?: unknown; description?: string }) =>
            a.value ?? a.description
          ).join(" ")
        }`,
      );
    } else if (m.method === "Runtime.exceptionThrown") {
      consoleLines.push(`exception: ${m.params.exceptionDetails?.exception?.description}`);
    }
  };
  const send = <T>(method: string, params: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((res, rej) => {
      const id = nextId++;
      pending.set(id, { res: res as (v: unknown) => void, rej });
      ws.send(JSON.stringify({ id, method, params }));
    });
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
    send,
    evaluate,
    async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
      const t0 = Date.now();
      while (true) {
        const v = await evaluate<T>(expression).catch(() => undefined);
        if (v) return v;
        if (Date.now() - t0 > timeoutMs) {
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    console: consoleLines,
    async close() {
      ws.close();
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
}
