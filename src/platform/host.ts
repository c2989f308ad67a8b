/**
 * The host seam on Deno: the only module of the library outside `src/cli` that calls
 * `Deno.*`. The web build maps this module to `host_browser.ts`.
 *
 * @module
 */

import type { Host, HostDirEntry, HostStat, HostStream } from "./host_types.ts";

export type * from "./host_types.ts";

function stream(s: typeof Deno.stdout | typeof Deno.stderr): HostStream {
  const enc = new TextEncoder();
  return {
    write(text: string): void {
      const b = enc.encode(text);
      let off = 0;
      while (off < b.length) off += s.writeSync(b.subarray(off));
    },
    isTerminal: s.isTerminal(),
  };
}

const stat = (s: Deno.FileInfo): HostStat => ({
  isFile: s.isFile,
  isDirectory: s.isDirectory,
  size: s.size,
});
const entry = (e: Deno.DirEntry): HostDirEntry => ({
  name: e.name,
  isFile: e.isFile,
  isDirectory: e.isDirectory,
  isSymlink: e.isSymlink,
});

/** The Deno host. */
export const host: Host = {
  kind: "deno",
  pid: Deno.pid,
  os: Deno.build.os,
  env(name) {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env for it: behave as unset
    }
  },
  readFile: (path) => Deno.readFile(path),
  readFileSync: (path) => Deno.readFileSync(path),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
  async openRead(path, n) {
    const file = await Deno.open(path, { read: true });
    const head = new Uint8Array(n);
    let got = 0;
    try {
      while (got < n) {
        const r = await file.read(head.subarray(got));
        if (r === null) break;
        got += r;
      }
      await file.seek(0, Deno.SeekMode.Start);
    } catch (e) {
      file.close();
      throw e;
    }
    return { head: head.subarray(0, got), stream: file.readable };
  },
  stat: async (path) => stat(await Deno.stat(path)),
  statSync: (path) => stat(Deno.statSync(path)),
  async *readDir(path) {
    for await (const e of Deno.readDir(path)) yield entry(e);
  },
  readDirSync: (path) => [...Deno.readDirSync(path)].map(entry),
  mkdirSync: (path, options) => Deno.mkdirSync(path, options),
  writeFileSync(path, data, options = {}) {
    const f = Deno.openSync(path, {
      write: true,
      create: true,
      append: options.append,
      truncate: !options.append,
    });
    try {
      for (const piece of data instanceof Uint8Array ? [data] : data) {
        let off = 0;
        while (off < piece.length) off += f.writeSync(piece.subarray(off));
      }
      if (options.sync) f.syncSync();
    } finally {
      f.close();
    }
  },
  renameSync: (from, to) => Deno.renameSync(from, to),
  removeSync: (path) => Deno.removeSync(path),
  syncDirSync(path) {
    try {
      const d = Deno.openSync(path, { read: true });
      try {
        d.syncSync();
      } finally {
        d.close();
      }
    } catch {
      // Best effort: not every platform allows opening a folder.
    }
  },
  isNotFound: (e) => e instanceof Deno.errors.NotFound,
  isAlreadyExists: (e) => e instanceof Deno.errors.AlreadyExists,
  stdout: stream(Deno.stdout),
  stderr: stream(Deno.stderr),
  onSignal(signal, handler) {
    try {
      Deno.addSignalListener(signal, handler);
      return () => Deno.removeSignalListener(signal, handler);
    } catch {
      return null; // not supported on this platform (SIGTERM on Windows)
    }
  },
  exit: (code) => Deno.exit(code),
};
