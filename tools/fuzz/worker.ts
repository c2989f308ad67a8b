/// <reference no-default-lib="true" />
/// <reference lib="deno.window" />
// Typed as a window: the worker imports the library through mod.ts, whose GPU code is typed
// against the window lib (lib.deno.worker has no `Navigator`).
/**
 * The fuzz worker: runs one input through one target and reports how it ended, how long it
 * took and how much memory it left allocated. Running in a worker lets the driver bound the
 * time per input (it terminates a worker that does not answer) and survive a crash.
 *
 * Messages: `{ id, target, bytes, tmp }` in (`tmp`: a scratch folder the driver owns),
 * {@link Outcome} out.
 *
 * @module
 */

import process from "node:process";
import { TARGETS } from "./targets.ts";

/** How one input ended. */
export interface Outcome {
  /** The request id. */
  id: number;
  /** Accepted, rejected with the target's error class, or anything else (a crash). */
  kind: "accepted" | "rejected" | "crash";
  /** The thrown value's class name (rejected/crash). */
  errorName?: string;
  /** The thrown value's message (rejected/crash). */
  message?: string;
  /** Wall time of the call, ms. */
  ms: number;
  /** Growth of V8 heap + external (ArrayBuffer, wasm) memory across the call, bytes. */
  memDelta: number;
  /** What the call printed through `console` (nothing may reach the console unattributed). */
  printed: string[];
}

interface Scope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown): void;
}

const scope = globalThis as unknown as Scope;
const used = (): number => {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
};
let chain: Promise<void> = Promise.resolve();
let printed: string[] = [];
for (const k of ["log", "error", "warn", "info", "debug"] as const) {
  console[k] = (...args: unknown[]) => void printed.push(`console.${k}: ${args.join(" ")}`);
}
// npm packages warn through Node's process.emitWarning, which writes to stderr directly.
process.emitWarning = (w: string | Error) =>
  void printed.push(`process.emitWarning: ${w instanceof Error ? w.message : w}`);

// Loading (and, under `deno test`, type-checking) the library can take seconds on a busy
// machine; the driver starts each input's clock only after this.
scope.postMessage({ ready: true });

scope.onmessage = (e: MessageEvent) => {
  const { id, target, bytes, tmp } = e.data as {
    id: number;
    target: string;
    bytes: Uint8Array;
    tmp: string;
  };
  chain = chain.then(async () => {
    const t = TARGETS.find((x) => x.name === target)!;
    printed = [];
    const m0 = used();
    const t0 = performance.now();
    let out: Outcome;
    try {
      await t.run(bytes, tmp);
      out = { id, kind: "accepted", ms: 0, memDelta: 0, printed: [] };
    } catch (err) {
      const isErr = err instanceof Error;
      out = {
        id,
        kind: isErr && err instanceof t.errorClass ? "rejected" : "crash",
        errorName: isErr ? err.name : typeof err,
        message: isErr ? err.message : String(err),
        ms: 0,
        memDelta: 0,
        printed: [],
      };
      if (out.kind === "crash" && isErr && err.stack) out.message += `\n${err.stack}`;
    }
    out.ms = performance.now() - t0;
    out.memDelta = used() - m0;
    out.printed = printed;
    scope.postMessage(out);
  });
};
