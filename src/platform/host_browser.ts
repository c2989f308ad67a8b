/**
 * The host seam in a browser (or a Web Worker): an in-memory file system. The page mounts the
 * files the user picked (`mountFile`), the trainer writes its run folder into memory, and the
 * page reads the results back (`readFileSync`, `listFiles`) to offer them as downloads.
 * The web build maps `host.ts` to this module.
 *
 * @module
 */

import type { Host, HostDirEntry, HostStat, HostStream } from "./host_types.ts";

export type * from "./host_types.ts";

/** Raised for a path that does not exist. */
export class NotFoundError extends Error {
  /** Creates the error. */
  constructor(path: string) {
    super(`No such file or directory: ${path}`);
    this.name = "NotFound";
  }
}

/** Raised when creating a path that exists. */
export class AlreadyExistsError extends Error {
  /** Creates the error. */
  constructor(path: string) {
    super(`File exists: ${path}`);
    this.name = "AlreadyExists";
  }
}

/** File contents: bytes written here, or a picked file read on demand. */
type Content = Uint8Array | Blob;

const files = new Map<string, Content>();
const dirs = new Set<string>(["/", "."]);

/** `a//b/./c/` → `a/b/c`; relative paths stay relative. */
export function normalizePath(path: string): string {
  const abs = path.startsWith("/");
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === ".." && parts.length) parts.pop();
    else parts.push(p);
  }
  const s = parts.join("/");
  return abs ? `/${s}` : s || ".";
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function addDirs(path: string): void {
  for (let d = path; !dirs.has(d); d = parentOf(d)) dirs.add(d);
}

/** Adds a file (a picked `File`, or bytes) at `path`, creating its folders. */
export function mountFile(path: string, content: Content): void {
  const p = normalizePath(path);
  addDirs(parentOf(p));
  files.set(p, content);
}

/** Removes every file and folder under `path`. */
export function unmount(path: string): void {
  const p = normalizePath(path);
  for (const k of [...files.keys()]) if (k === p || k.startsWith(`${p}/`)) files.delete(k);
  for (const k of [...dirs]) if (k === p || k.startsWith(`${p}/`)) dirs.delete(k);
}

/** Paths of every file under `path` (sorted). */
export function listFilesUnder(path: string): string[] {
  const p = normalizePath(path);
  return [...files.keys()].filter((k) => k.startsWith(`${p}/`)).sort();
}

function get(path: string): Content {
  const c = files.get(normalizePath(path));
  if (c === undefined) throw new NotFoundError(path);
  return c;
}

function bytesSync(path: string): Uint8Array {
  const c = get(path);
  if (c instanceof Uint8Array) return c;
  throw new Error(`${path}: a picked file can only be read asynchronously`);
}

function statOf(path: string): HostStat {
  const p = normalizePath(path);
  const c = files.get(p);
  if (c !== undefined) {
    return { isFile: true, isDirectory: false, size: c instanceof Blob ? c.size : c.length };
  }
  if (dirs.has(p)) return { isFile: false, isDirectory: true, size: 0 };
  throw new NotFoundError(path);
}

function list(path: string): HostDirEntry[] {
  const p = normalizePath(path);
  if (!dirs.has(p)) throw new NotFoundError(path);
  const prefix = p === "/" ? "/" : p === "." ? "" : `${p}/`;
  const out = new Map<string, HostDirEntry>();
  const direct = (k: string) =>
    k.startsWith(prefix) && k !== p && !k.slice(prefix.length).includes("/");
  for (const k of files.keys()) {
    if (direct(k)) {
      const name = k.slice(prefix.length);
      out.set(name, { name, isFile: true, isDirectory: false, isSymlink: false });
    }
  }
  for (const k of dirs) {
    if (direct(k) && k !== "/" && k !== ".") {
      const name = k.slice(prefix.length);
      out.set(name, { name, isFile: false, isDirectory: true, isSymlink: false });
    }
  }
  return [...out.values()];
}

/** Collects text written to a stream (forwarded to `onText` when set). */
function stream(onText: (text: string) => void): HostStream {
  return { write: onText, isTerminal: false };
}

/** Receives what the library writes to standard output and error (default: console). */
export const output = {
  stdout: (text: string): void => console.log(text.replace(/\n$/, "")),
  stderr: (text: string): void => console.warn(text.replace(/\n$/, "")),
};

/** The browser host. */
export const host: Host = {
  kind: "browser",
  pid: 1,
  os: "browser",
  env: () => undefined,
  async readFile(path) {
    const c = get(path);
    return c instanceof Uint8Array ? c : new Uint8Array(await c.arrayBuffer());
  },
  readFileSync: bytesSync,
  readTextFileSync: (path) => new TextDecoder().decode(bytesSync(path)),
  async openRead(path, n) {
    const c = get(path);
    const blob = c instanceof Blob ? c : new Blob([c as Uint8Array<ArrayBuffer>]);
    const head = new Uint8Array(await blob.slice(0, n).arrayBuffer());
    return { head, stream: blob.stream() as ReadableStream<Uint8Array> };
  },
  stat: (path) => Promise.resolve(statOf(path)),
  statSync: statOf,
  async *readDir(path) {
    for (const e of list(path)) yield e;
  },
  readDirSync: list,
  mkdirSync(path, options = {}) {
    const p = normalizePath(path);
    if (dirs.has(p) || files.has(p)) {
      if (options.recursive && dirs.has(p)) return;
      throw new AlreadyExistsError(path);
    }
    if (!options.recursive && !dirs.has(parentOf(p))) throw new NotFoundError(parentOf(p));
    addDirs(p);
  },
  writeFileSync(path, data, options = {}) {
    const p = normalizePath(path);
    if (!dirs.has(parentOf(p))) throw new NotFoundError(parentOf(p));
    const old = options.append ? files.get(p) : undefined;
    if (old instanceof Blob) throw new Error(`${path}: cannot append to a picked file`);
    // One copy (the caller keeps its arrays): the old contents, then the pieces.
    const pieces = [...(old ? [old] : []), ...(data instanceof Uint8Array ? [data] : data)];
    const joined = new Uint8Array(pieces.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of pieces) {
      joined.set(c, at);
      at += c.length;
    }
    files.set(p, joined);
  },
  renameSync(from, to) {
    const c = get(from);
    files.delete(normalizePath(from));
    files.set(normalizePath(to), c);
  },
  removeSync(path) {
    const p = normalizePath(path);
    if (!files.delete(p)) throw new NotFoundError(path);
  },
  syncDirSync() {},
  isNotFound: (e) => e instanceof NotFoundError,
  isAlreadyExists: (e) => e instanceof AlreadyExistsError,
  stdout: stream((t) => output.stdout(t)),
  stderr: stream((t) => output.stderr(t)),
  onSignal: () => null,
  exit(code): never {
    throw new Error(`exit(${code}) requested in the browser`);
  },
};
