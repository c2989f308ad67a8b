/**
 * The browser side of `loadPretrained` (the web build puts it in place of
 * `src/models/pretrained_source_deno.ts`): a weights file the page mounted in the in-memory
 * file system (`host_browser.ts`), a checkpoint `.json` there (its weights file), or an
 * http(s) URL fetched without a cache.
 *
 * @module
 */

import { host } from "./host.ts";

/** Reads a weights source; returns its bytes and a name for messages. */
export async function readPretrainedSource(
  source: string,
  _opts: { cacheDir?: string; progress?: boolean } = {},
): Promise<{ bytes: Uint8Array; name: string }> {
  if (/^https?:\/\//i.test(source)) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`pretrained "${source}": expected HTTP 200, got ${res.status}`);
    return { bytes: new Uint8Array(await res.arrayBuffer()), name: source };
  }
  let path = source;
  if (source.endsWith(".json")) {
    let weights: unknown;
    try {
      weights = JSON.parse(new TextDecoder().decode(await host.readFile(source))).weights;
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
    path = `${source.slice(0, source.lastIndexOf("/") + 1)}${weights}`;
  }
  try {
    return {
      bytes: await host.readFile(path),
      name: path === source ? source : `${source} (${path})`,
    };
  } catch (e) {
    throw new Error(`pretrained "${path}": cannot read (${(e as Error).message})`);
  }
}
