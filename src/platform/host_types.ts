/**
 * The host seam's interface: every operating-system call the library makes (files, standard
 * streams, signals). `host.ts` implements it on Deno; `host_browser.ts` implements it in a
 * browser (an in-memory file system the page fills with the files the user picked). The web
 * build swaps the first for the second with its import map, so no other module needs to know
 * where it runs.
 *
 * @module
 */

/** What `stat` says about a path. */
export interface HostStat {
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** Size in bytes (0 for folders). */
  size: number;
}

/** One entry of a folder listing. */
export interface HostDirEntry {
  /** File or folder name (no path). */
  name: string;
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** A symbolic link (callers `stat` it to follow). */
  isSymlink: boolean;
}

/** A text output stream (standard output or error). */
export interface HostStream {
  /** Writes the text completely. */
  write(text: string): void;
  /** Whether a terminal is attached. */
  isTerminal: boolean;
}

/** Options of `Host.writeFileSync`. */
export interface HostWriteOptions {
  /** Append instead of replacing. */
  append?: boolean;
  /** Flush to stable storage before returning. */
  sync?: boolean;
}

/** The operating-system calls of the library. Paths use `/`. */
export interface Host {
  /** `"deno"` or `"browser"`. */
  readonly kind: "deno" | "browser";
  /** Process id (used in temp and event file names). */
  readonly pid: number;
  /** Operating system: `linux`, `darwin`, `windows`, … (`browser` in a browser). */
  readonly os: string;
  /**
   * An environment variable, or undefined when unset or not readable (no `--allow-env` for
   * it; always in a browser).
   */
  env(name: string): string | undefined;
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Reads a whole file, synchronously. */
  readFileSync(path: string): Uint8Array;
  /** Reads a UTF-8 text file, synchronously. */
  readTextFileSync(path: string): string;
  /** The first `n` bytes of a file (fewer when shorter) and a stream of all its bytes. */
  openRead(
    path: string,
    n: number,
  ): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }>;
  /** Stats a path (following links); throws when it does not exist. */
  stat(path: string): Promise<HostStat>;
  /** Stats a path, synchronously. */
  statSync(path: string): HostStat;
  /** Lists a folder. */
  readDir(path: string): AsyncIterable<HostDirEntry>;
  /** Lists a folder, synchronously. */
  readDirSync(path: string): Iterable<HostDirEntry>;
  /** Creates a folder (and its parents with `recursive`); without it, throws when it exists. */
  mkdirSync(path: string, options?: { recursive?: boolean }): void;
  /** Writes (or appends) bytes, creating the file; a list of pieces is written in order. */
  writeFileSync(
    path: string,
    data: Uint8Array | readonly Uint8Array[],
    options?: HostWriteOptions,
  ): void;
  /** Renames a file, replacing the target. */
  renameSync(from: string, to: string): void;
  /** Removes a file. */
  removeSync(path: string): void;
  /** Makes a folder's entries durable (best effort). */
  syncDirSync(path: string): void;
  /** Whether `e` says a path does not exist. */
  isNotFound(e: unknown): boolean;
  /** Whether `e` says a path exists already. */
  isAlreadyExists(e: unknown): boolean;
  /** Standard output. */
  readonly stdout: HostStream;
  /** Standard error. */
  readonly stderr: HostStream;
  /**
   * Calls `handler` on `signal` (SIGINT, SIGTERM); returns the remover, or null where the
   * signal cannot be listened to.
   */
  onSignal(signal: "SIGINT" | "SIGTERM", handler: () => void): (() => void) | null;
  /** Ends the process with `code` (a browser worker closes itself). */
  exit(code: number): never;
}
