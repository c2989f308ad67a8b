/**
 * The Deno side of `loadPretrained`: reads a weights path, or downloads a URL once into a
 * cache folder. Kept apart from `pretrained.ts` (which imports it lazily) so models stay
 * browser-safe.
 *
 * Downloads go to `<cache>/<file name>`; the cache is `$XDG_CACHE_HOME/classifier-training/
 * pretrained` (or `~/.cache/…`), overridable with `cacheDir`. A download streams into a
 * temporary file in the same folder, is checked against the sha256 prefix that torchvision
 * file names carry (`resnet18-f37072fd.pth`: the hash starts with f37072fd, the rule of
 * `torch.hub.download_url_to_file`), then renamed into place, so the cache never holds a
 * partial or corrupt file; a mismatch deletes the download and says so.
 *
 * A project checkpoint's `.json` state resolves to its weights file.
 *
 * @module
 */

import type { PretrainedBytes, ReadPretrainedOptions } from "./pretrained.ts";

/** The default cache folder of downloaded weights. */
export function defaultCacheDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return `${xdg || `${home}/.cache`}/classifier-training/pretrained`;
}

/** The sha256 prefix a file name carries (torch.hub's `-([a-f0-9]*)\.`), or null. */
export function hashPrefixOf(fileName: string): string | null {
  const m = /-([a-f0-9]*)\./.exec(fileName);
  return m && m[1].length > 0 ? m[1] : null;
}

function toHex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** Downloads `url` into `dir` unless already there; returns the cached path. */
export async function downloadToCache(
  url: string,
  opts: ReadPretrainedOptions = {},
): Promise<string> {
  const u = new URL(url);
  const fileName = decodeURIComponent(u.pathname.split("/").pop() ?? "");
  if (!fileName || fileName.includes("/") || fileName.startsWith(".")) {
    throw new Error(`pretrained "${url}": the URL does not end in a file name`);
  }
  const dir = opts.cacheDir ?? defaultCacheDir();
  const dest = `${dir}/${fileName}`;
  if (await exists(dest)) return dest;
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new Error(
      `pretrained "${url}": cannot create the cache folder "${dir}" (${
        (e as Error).message.split("\n")[0]
      }); allow writing there or download the file and give its path`,
    );
  }
  const res = await fetch(url);
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`pretrained "${url}": download failed with HTTP ${res.status}`);
  }
  const total = Number(res.headers.get("content-length") ?? NaN);
  const show = opts.progress ?? Deno.stderr.isTerminal();
  const tmp = `${dest}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let got = 0;
  let lastShown = -1;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true });
    try {
      for await (const chunk of res.body) {
        got += chunk.byteLength;
        if (Number.isFinite(total) && got > total) {
          throw new Error(`pretrained "${url}": server sent more than its ${total} bytes`);
        }
        chunks.push(chunk);
        let off = 0;
        while (off < chunk.byteLength) off += await f.write(chunk.subarray(off));
        const pct = Number.isFinite(total) && total > 0 ? Math.floor((100 * got) / total) : -1;
        if (show && pct !== lastShown) {
          lastShown = pct;
          const bar = pct >= 0 ? "#".repeat(pct / 4).padEnd(25, ".") : "";
          const txt = pct >= 0
            ? `\rdownloading ${fileName} [${bar}] ${pct}% ${mb(got)}/${mb(total)} MB`
            : `\rdownloading ${fileName} ${mb(got)} MB`;
          Deno.stderr.writeSync(enc.encode(txt));
        }
      }
      await f.sync();
    } finally {
      f.close();
    }
    if (show) Deno.stderr.writeSync(enc.encode("\n"));
    if (Number.isFinite(total) && got !== total) {
      throw new Error(`pretrained "${url}": got ${got} of ${total} bytes (connection cut)`);
    }
    const want = hashPrefixOf(fileName);
    if (want) {
      const all = new Uint8Array(got);
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.byteLength;
      }
      const digest = toHex(await crypto.subtle.digest("SHA-256", all));
      if (!digest.startsWith(want)) {
        throw new Error(
          `pretrained "${url}": sha256 ${
            digest.slice(0, 16)
          }… does not start with ${want} (from the file name); the download was deleted`,
        );
      }
    }
    await Deno.rename(tmp, dest);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return dest;
}

/** Reads a weights source: an http(s) URL (cached download), a checkpoint `.json`, a path. */
export async function readPretrainedSource(
  source: string,
  opts: ReadPretrainedOptions = {},
): Promise<PretrainedBytes> {
  let path = source;
  if (/^https?:\/\//i.test(source)) path = await downloadToCache(source, opts);
  else if (source.endsWith(".json")) {
    let weights: unknown;
    try {
      weights = JSON.parse(await Deno.readTextFile(source)).weights;
    } catch (e) {
      throw new Error(
        `pretrained "${source}": cannot read the checkpoint (${(e as Error).message})`,
      );
    }
    if (typeof weights !== "string" || weights.includes("/")) {
      throw new Error(
        `pretrained "${source}": expected a checkpoint .json with a "weights" file name`,
      );
    }
    const dir = source.includes("/") ? source.slice(0, source.lastIndexOf("/")) : ".";
    path = `${dir}/${weights}`;
  }
  try {
    return {
      bytes: await Deno.readFile(path),
      name: path === source ? source : `${source} (${path})`,
    };
  } catch (e) {
    throw new Error(`pretrained "${path}": cannot read (${(e as Error).message})`);
  }
}
