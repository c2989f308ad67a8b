/**
 * Mutation fuzzing of the parsers that take user files: safetensors, IDX (images and labels,
 * raw and gzip), PNG/JPEG sniffing and decoding, and the YAML config loader with `key=value`
 * overrides. Each input is a seeded mutation of a valid seed (tools/fuzz/mutate.ts), run in a
 * worker (tools/fuzz/worker.ts). What must hold for every input:
 *
 * - no crash: it is accepted, or rejected with the target's own error class;
 * - a rejection's message is one line: not empty, no newline, at most 500 characters more
 *   than the input (it may quote a key or an override);
 * - nothing printed: a decoder's warnings belong in the error, naming the file;
 * - no hang: it finishes within `timeoutMs` (the worker is terminated otherwise);
 * - no allocation beyond what the input's size justifies (the target's `budget`), measured as
 *   the growth of V8 heap + external memory across the call.
 *
 * ```sh
 * deno task fuzz                                 # 2000 inputs per target, seed 1
 * deno task fuzz --iterations 500 --seed 7 --targets image,config
 * deno task fuzz --repro image:123 --seed 7      # rerun one input, write it to fuzz_input.bin
 * ```
 *
 * Input `i` of target `t` is a function of `(seed, t's index, i)` only, so a reported failure
 * reproduces with `--repro t:i` and the same seed.
 *
 * @module
 */

import { Rng } from "../src/data/rng.ts";
import { mutate, type Seed } from "./fuzz/mutate.ts";
import type { Outcome } from "./fuzz/worker.ts";
import { TARGETS } from "./fuzz/targets.ts";

/** Settings of a fuzz run. */
export interface FuzzOptions {
  /** Inputs per target. */
  iterations: number;
  /** Run seed. */
  seed: number;
  /** Target names (default: all). */
  targets?: string[];
  /** Per-input time limit, ms (default 10000). */
  timeoutMs?: number;
  /** Only this input index (with `targets` naming one target). */
  only?: number;
  /** Called with each input's bytes and outcome. */
  onInput?: (target: string, i: number, bytes: Uint8Array, o: Outcome) => void;
}

/** A broken property, with what reproduces it. */
export interface Violation {
  /** Target name. */
  target: string;
  /** Input index (`--repro target:i`). */
  index: number;
  /** The seed file mutated and the mutations applied. */
  input: string;
  /** What went wrong. */
  problem: string;
}

/** What a fuzz run saw. */
export interface FuzzReport {
  /** Inputs run per target. */
  inputs: Record<string, number>;
  /** Accepted inputs per target. */
  accepted: Record<string, number>;
  /** Rejections per target per class (`ErrorName: normalised message head`). */
  rejections: Record<string, Record<string, number>>;
  /** Slowest input per target, ms. */
  maxMs: Record<string, number>;
  /** Largest memory growth per target, bytes. */
  maxMemDelta: Record<string, number>;
  /** Broken properties (empty when all held). */
  violations: Violation[];
}

/** A rejection's class: error name plus its message with numbers, quotes and paths blanked. */
export function rejectionClass(name: string, message: string): string {
  const head = message
    .replace(/\/[^\s:;,()"']+/g, "<path>")
    .replace(/"[^"]*"/g, '"…"')
    .replace(/0x[0-9a-f]+/gi, "N")
    .replace(/\d+(\.\d+)?(e[+-]?\d+)?/gi, "N")
    .replace(/\s*\(.*$/, "")
    .slice(0, 70);
  return `${name}: ${head}`;
}

/** One input: the target's seed, mutated by an Rng of `(seed, target, i)`. */
function inputOf(
  seed: number,
  t: number,
  i: number,
  seeds: Seed[],
): { bytes: Uint8Array; what: string } {
  const rng = Rng.from(seed, t, i);
  const s = seeds[rng.int(0, seeds.length)];
  const { bytes, applied } = mutate(s, seeds, rng);
  return { bytes, what: `${s.name} + ${applied.join("+")} (${bytes.length} bytes)` };
}

/** Runs inputs in a worker, one at a time, with a time limit each. */
class Runner {
  #worker: Worker | null = null;
  #ready: Promise<void> | null = null;
  #loadError: string | null = null;
  #id = 0;
  #waiting: ((o: Outcome) => void) | null = null;
  #crash: ((e: string) => void) | null = null;

  #start(): Worker {
    const w = new Worker(new URL("./fuzz/worker.ts", import.meta.url).href, { type: "module" });
    let ready: () => void;
    this.#ready = new Promise<void>((r) => (ready = r));
    w.onmessage = (e: MessageEvent) => {
      if ((e.data as { ready?: boolean }).ready) ready();
      else this.#waiting?.(e.data as Outcome);
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      ready();
      if (this.#crash) this.#crash(`worker died: ${e.message}`);
      else this.#loadError = `worker died: ${e.message}`; // fails the next input
    };
    return w;
  }

  /** Runs one input; a timeout or a dead worker comes back as a crash outcome. */
  async run(target: string, bytes: Uint8Array, tmp: string, timeoutMs: number): Promise<Outcome> {
    this.#worker ??= this.#start();
    await this.#ready;
    const id = this.#id++;
    if (this.#loadError !== null) {
      const message = this.#loadError;
      this.#loadError = null;
      this.close();
      return { id, kind: "crash", errorName: "Fuzz", message, ms: 0, memDelta: 0, printed: [] };
    }
    return new Promise<Outcome>((resolve) => {
      const done = (o: Outcome): void => {
        clearTimeout(timer);
        this.#waiting = null;
        this.#crash = null;
        resolve(o);
      };
      const fail = (message: string): void => {
        this.#worker?.terminate();
        this.#worker = null;
        done({
          id,
          kind: "crash",
          errorName: "Fuzz",
          message,
          ms: timeoutMs,
          memDelta: 0,
          printed: [],
        });
      };
      const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms (hang)`), timeoutMs);
      this.#waiting = (o) => {
        if (o.id === id) done(o);
      };
      this.#crash = fail;
      this.#worker!.postMessage({ id, target, bytes, tmp });
    });
  }

  /** Stops the worker. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }
}

/** Runs the fuzzer and returns what it saw (it throws only on a bad option). */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const names = opts.targets ?? TARGETS.map((t) => t.name);
  for (const n of names) {
    if (!TARGETS.some((t) => t.name === n)) {
      throw new Error(
        `unknown fuzz target "${n}" (targets: ${TARGETS.map((t) => t.name).join(", ")})`,
      );
    }
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const report: FuzzReport = {
    inputs: {},
    accepted: {},
    rejections: {},
    maxMs: {},
    maxMemDelta: {},
    violations: [],
  };
  const tmp = await Deno.makeTempDir({ prefix: "ct_fuzz_" });
  const runner = new Runner();
  try {
    for (const [t, target] of TARGETS.entries()) {
      if (!names.includes(target.name)) continue;
      const seeds = await target.seeds();
      const name = target.name;
      report.inputs[name] = 0;
      report.accepted[name] = 0;
      report.rejections[name] = {};
      report.maxMs[name] = 0;
      report.maxMemDelta[name] = 0;
      const from = opts.only ?? 0;
      const to = opts.only === undefined ? opts.iterations : opts.only + 1;
      for (let i = from; i < to; i++) {
        const { bytes, what } = inputOf(opts.seed, t, i, seeds);
        const o = await runner.run(name, bytes, tmp, timeoutMs);
        opts.onInput?.(name, i, bytes, o);
        report.inputs[name]++;
        report.maxMs[name] = Math.max(report.maxMs[name], o.ms);
        report.maxMemDelta[name] = Math.max(report.maxMemDelta[name], o.memDelta);
        const bad = (problem: string): void => {
          report.violations.push({ target: name, index: i, input: what, problem });
        };
        if (o.kind === "accepted") report.accepted[name]++;
        else if (o.kind === "crash") {
          bad(`${o.errorName}: ${o.message}`);
        } else {
          const msg = o.message ?? "";
          // A message may quote the input (a key, an override), hence the input's length.
          const limit = 500 + bytes.length;
          if (msg === "" || msg.includes("\n") || msg.length > limit) {
            bad(
              `rejection message is not one line of at most ${limit} characters: ${
                JSON.stringify(msg)
              }`,
            );
          }
          const cls = rejectionClass(o.errorName ?? "?", msg);
          report.rejections[name][cls] = (report.rejections[name][cls] ?? 0) + 1;
        }
        if (o.printed.length) bad(`printed to the console: ${o.printed.join(" | ").slice(0, 300)}`);
        const budget = target.budget(bytes.length);
        if (o.memDelta > budget) {
          bad(
            `memory grew by ${o.memDelta} bytes, budget ${budget} for ${bytes.length} input bytes`,
          );
        }
      }
    }
  } finally {
    runner.close();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return report;
}

/** Prints a report: counts, rejection classes (most frequent first), slowest input, violations. */
export function printReport(r: FuzzReport, log: (s: string) => void = console.log): void {
  for (const name of Object.keys(r.inputs)) {
    const rej = Object.entries(r.rejections[name]).sort((a, b) => b[1] - a[1]);
    const nRej = rej.reduce((a, [, n]) => a + n, 0);
    log(
      `${name}: ${r.inputs[name]} inputs, ${r.accepted[name]} accepted, ${nRej} rejected, ` +
        `slowest ${r.maxMs[name].toFixed(1)} ms, most memory ${
          (r.maxMemDelta[name] / 2 ** 20).toFixed(1)
        } MiB`,
    );
    for (const [cls, n] of rej) log(`  ${String(n).padStart(6)}  ${cls}`);
  }
  const total = Object.values(r.inputs).reduce((a, b) => a + b, 0);
  log(`total: ${total} inputs, ${r.violations.length} violation(s)`);
  for (const v of r.violations.slice(0, 20)) {
    log(
      `VIOLATION ${v.target}:${v.index} [${v.input}]: ${
        v.problem.split("\n").slice(0, 4).join(" | ")
      }`,
    );
  }
}

function parseArgs(args: string[]): FuzzOptions & { repro?: string } {
  const o: FuzzOptions & { repro?: string } = { iterations: 2000, seed: 1 };
  for (let i = 0; i < args.length; i++) {
    const [k, inline] = args[i].split("=", 2);
    const v = inline ?? args[++i];
    if (v === undefined) throw new Error(`${k}: missing value`);
    const int = (): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) {
        throw new Error(`${k}: expected an integer >= 0, got "${v}"`);
      }
      return n;
    };
    if (k === "--iterations" || k === "-n") o.iterations = int();
    else if (k === "--seed") o.seed = int();
    else if (k === "--targets") o.targets = v.split(",");
    else if (k === "--timeout") o.timeoutMs = int();
    else if (k === "--repro") o.repro = v;
    else {throw new Error(
        `unknown option ${k} (options: --iterations, --seed, --targets, --timeout, --repro)`,
      );}
  }
  if (o.repro) {
    const [t, i] = o.repro.split(":");
    o.targets = [t];
    o.only = Number(i);
    if (!Number.isInteger(o.only)) {
      throw new Error(`--repro: expected target:index, got "${o.repro}"`);
    }
  }
  return o;
}

if (import.meta.main) {
  let opts;
  try {
    opts = parseArgs(Deno.args);
  } catch (e) {
    console.error(`fuzz: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const t0 = performance.now();
  console.log(
    `fuzz: seed ${opts.seed}, ${
      opts.only === undefined ? `${opts.iterations} inputs` : `input ${opts.only}`
    } ` +
      `per target (${(opts.targets ?? TARGETS.map((t) => t.name)).join(", ")})`,
  );
  if (opts.repro) {
    opts.onInput = (t, i, bytes, o) => {
      Deno.writeFileSync("fuzz_input.bin", bytes);
      console.log(
        `${t}:${i} → ${o.kind} ${o.errorName ?? ""} ${o.message ?? ""} (written to fuzz_input.bin)`,
      );
    };
  }
  const report = await runFuzz(opts);
  printReport(report);
  console.log(`fuzz: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  Deno.exit(report.violations.length ? 1 : 0);
}
