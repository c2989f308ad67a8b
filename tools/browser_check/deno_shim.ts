/**
 * Browser stand-in for the few `Deno.*` APIs our test files touch: `Deno.test` registers
 * into a list the page runs, `Deno.readTextFileSync` serves the golden JSON fetched up
 * front, and everything else throws `Unsupported` so the runner reports the test as skipped.
 * Must be the first import of the entry: test modules call `Deno.test` while they evaluate.
 *
 * @module
 */

/** A registered test. */
export interface BrowserTest {
  /** Test name. */
  name: string;
  /** Body; `t.step` runs its steps inline. */
  fn: (t: { step: (name: string, fn: () => unknown) => Promise<boolean> }) => unknown;
  /** `ignore: true` in the options. */
  ignore: boolean;
}

/** Thrown by the Deno APIs a browser has no stand-in for. */
export class Unsupported extends Error {
  override name = "Unsupported";
}

/** Tests in registration order. */
export const registry: BrowserTest[] = [];

const GOLDEN = ["core", "nn", "model", "resnet"];
const texts = new Map<string, string>();
for (const name of GOLDEN) {
  const res = await fetch(`/golden/${name}.json`);
  if (!res.ok) throw new Error(`fetch /golden/${name}.json: expected 200, got ${res.status}`);
  texts.set(`golden/${name}.json`, await res.text());
}

type Fn = BrowserTest["fn"];
type Opts = { name?: string; fn?: Fn; ignore?: boolean };

function test(a: string | Opts, b?: Fn | Opts, c?: Fn): void {
  const opts: Opts = typeof a === "string"
    ? (typeof b === "function" ? { name: a, fn: b } : { ...b, name: a, fn: c })
    : { ...a, ...(typeof b === "function" ? { fn: b } : {}) };
  registry.push({ name: opts.name ?? "(unnamed)", fn: opts.fn!, ignore: opts.ignore === true });
}

function unsupported(what: string): () => never {
  return () => {
    throw new Unsupported(`Deno.${what} is not available in the browser`);
  };
}

function readTextFileSync(path: string | URL): string {
  const p = String(path);
  for (const [key, text] of texts) if (p.endsWith(key)) return text;
  throw new Unsupported(
    `Deno.readTextFileSync(${p}): only tests/golden/{${GOLDEN}}.json are served`,
  );
}

const pageEnv = new Map<string, string>();

const shim = {
  test,
  readTextFileSync,
  // A page has no environment: a variable is what a test set in this page, nothing more.
  env: {
    get: (k: string): string | undefined => pageEnv.get(k),
    has: (k: string): boolean => pageEnv.has(k),
    set: (k: string, v: string): void => void pageEnv.set(k, v),
    delete: (k: string): void => void pageEnv.delete(k),
    toObject: (): Record<string, string> => Object.fromEntries(pageEnv),
  },
  build: { os: "browser" },
  pid: 0,
  args: [],
  ...Object.fromEntries(
    [
      "readFile",
      "readFileSync",
      "writeFile",
      "writeTextFile",
      "readTextFile",
      "makeTempDir",
      "makeTempDirSync",
      "remove",
      "removeSync",
      "open",
      "rename",
      "statSync",
      "stat",
      "readDirSync",
      "readDir",
      "mkdir",
      "Command",
    ].map((k) => [k, unsupported(k)]),
  ),
};
(globalThis as unknown as { Deno: unknown }).Deno = shim;
