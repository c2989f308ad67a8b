/**
 * The wasm PNG and JPEG decoders, each in an instance we own so that a fault cannot leak into
 * later decodes.
 *
 * Why: a decoder that traps (`memory access out of bounds`), calls `exit(1)` (libjpeg's default
 * error handler) or throws from inside wasm (wasm-bindgen's `unwrap_throw`) leaves its linear
 * memory in an unknown state: its stack pointer is never restored and its allocator may be
 * mid-update. Reusing that instance made later, valid JPEGs decode to different pixels. So after
 * any failure (or any warning) the instance is dropped and the next decode gets a fresh one with
 * fresh memory, instantiated from the module compiled once. Everything the decoders print
 * (libjpeg's warnings, emscripten's abort text) is captured and returned with the failure, so
 * nothing reaches stderr unattributed.
 *
 * @module
 */

import mozjpegFactory, { type MozJPEGModule } from "@jsquash/jpeg/codec/dec/mozjpeg_dec.js";

/** Decoded RGBA pixels. */
export interface RgbaPixels {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * 4` bytes, RGBA. */
  data: Uint8Array | Uint8ClampedArray;
}

/** A decode that failed or warned: the decoder's own messages, one line. */
export class DecoderFault extends Error {
  /** Creates the fault from the thrown value (if any) and the messages the decoder printed. */
  constructor(what: string, messages: string[], thrown?: unknown) {
    const parts = [...messages];
    if (thrown !== undefined) {
      const t = typeof thrown === "object" && thrown !== null && "message" in thrown
        ? String(thrown.message) // Error, or emscripten's ExitStatus (not an Error)
        : String(thrown);
      // libjpeg's error_exit prints its reason and then calls exit(1); the reason is the news.
      if (!(parts.length && /Program terminated with exit/.test(t))) parts.push(t);
    }
    const text = [...new Set(parts.map((p) => p.replace(/\s+/g, " ").trim()).filter(Boolean))]
      .join("; ");
    super(`${what}${text ? ` (${text})` : ""}`.slice(0, 300));
    this.name = "DecoderFault";
  }
}

/**
 * Compiles a decoder's wasm file once; null when it cannot be located. In Deno it sits in the
 * npm package; a browser bundle (web/build.ts) ships it next to itself under the same name.
 */
async function compileNear(specifier: string): Promise<WebAssembly.Module | null> {
  const urls: string[] = [];
  try {
    urls.push(import.meta.resolve(specifier));
  } catch { /* no package resolution here (a bundle) */ }
  urls.push(new URL(specifier.slice(specifier.lastIndexOf("/") + 1), import.meta.url).href);
  for (const url of urls) {
    if (!/^(file|https?):/.test(url)) continue;
    try {
      const res = await fetch(url);
      if (res.ok) return await WebAssembly.compile(await res.arrayBuffer());
    } catch { /* try the next place */ }
  }
  return null;
}

// ---------------------------------------------------------------- JPEG (MozJPEG, emscripten)

let jpegModule: Promise<WebAssembly.Module | null> | null = null;

interface JpegInstance {
  module: MozJPEGModule;
  messages: string[];
}

/** MozJPEG's decoder; a fresh emscripten instance after any failure or warning. */
export class JpegDecoder {
  #instance: Promise<JpegInstance> | null = null;
  /** Instances created so far (for tests). */
  instances = 0;

  #create(): Promise<JpegInstance> {
    jpegModule ??= compileNear("@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm");
    const messages: string[] = [];
    this.instances++;
    return jpegModule.then(async (compiled) => {
      const opts: Record<string, unknown> = {
        noInitialRun: true,
        print: (s: string) => messages.push(s),
        printErr: (s: string) => messages.push(s),
      };
      if (compiled) {
        opts.instantiateWasm = (
          imports: WebAssembly.Imports,
          receive: (i: WebAssembly.Instance) => void,
        ) => {
          const instance = new WebAssembly.Instance(compiled, imports);
          receive(instance);
          return instance.exports;
        };
      }
      const module = await mozjpegFactory(opts);
      return { module, messages };
    });
  }

  /**
   * Decodes JPEG bytes to RGBA. Throws a {@link DecoderFault} carrying libjpeg's messages when
   * it fails or warns (a warning means corrupt data that libjpeg papered over).
   */
  async decode(bytes: Uint8Array): Promise<RgbaPixels> {
    this.#instance ??= this.#create();
    let inst: JpegInstance;
    try {
      inst = await this.#instance;
    } catch (e) {
      this.#instance = null;
      throw new DecoderFault("cannot start the JPEG decoder", [], e);
    }
    inst.messages.length = 0;
    let out: ImageData | null;
    try {
      out = inst.module.decode(bytes as Uint8Array<ArrayBuffer>, false);
    } catch (e) {
      this.#instance = null;
      throw new DecoderFault("corrupt JPEG", inst.messages, e);
    }
    if (inst.messages.length || !out) {
      this.#instance = null;
      throw new DecoderFault("corrupt JPEG", out ? inst.messages : [...inst.messages, "no image"]);
    }
    return { width: out.width, height: out.height, data: out.data as Uint8ClampedArray };
  }
}

// ---------------------------------------------------------------- PNG (Rust png, wasm-bindgen)

let pngModule: Promise<WebAssembly.Module | null> | null = null;

interface PngExports {
  memory: WebAssembly.Memory;
  decode(ptr: number, len: number): number;
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
}

interface PngInstance {
  exports: PngExports;
  take(idx: number): unknown;
}

/**
 * Instantiates squoosh's PNG wasm with our own wasm-bindgen glue: the package's glue keeps one
 * module-wide instance that cannot be replaced. Imports are matched by their name without the
 * hash suffix, which wasm-bindgen changes between builds.
 */
function instantiatePng(compiled: WebAssembly.Module): PngInstance {
  // wasm-bindgen's object heap: slots 0..131 are reserved, as in the generated glue.
  const heap: unknown[] = new Array(128).fill(undefined);
  heap.push(undefined, null, true, false);
  let free = heap.length;
  const add = (o: unknown): number => {
    if (free === heap.length) heap.push(heap.length + 1);
    const i = free;
    free = heap[i] as number;
    heap[i] = o;
    return i;
  };
  const take = (i: number): unknown => {
    const o = heap[i];
    if (i >= 132) {
      heap[i] = free;
      free = i;
    }
    return o;
  };
  let ex = null as unknown as PngExports; // set right after instantiation
  const bytes = (ptr: number, len: number): Uint8Array =>
    new Uint8Array(ex.memory.buffer, ptr >>> 0, len >>> 0);
  const impl: Record<string, (...a: number[]) => unknown> = {
    __wbindgen_memory: () => add(ex.memory),
    __wbg_buffer: (i) => add((heap[i] as WebAssembly.Memory | ArrayBufferView).buffer),
    __wbg_newwithbyteoffsetandlength: (b, o, n) =>
      add(new Uint16Array(heap[b] as ArrayBuffer, o >>> 0, n >>> 0)),
    __wbindgen_object_drop_ref: (i) => void take(i),
    __wbg_newwithownedu8clampedarrayandsh: (ptr, len, w, h) => {
      const data = new Uint8ClampedArray(bytes(ptr, len));
      ex.__wbindgen_free(ptr, len, 1);
      return add({ data, width: w >>> 0, height: h >>> 0 });
    },
    __wbindgen_throw: (ptr, len) => {
      throw new Error(new TextDecoder().decode(bytes(ptr, len)));
    },
  };
  const wbg: Record<string, (...a: number[]) => unknown> = {};
  for (const imp of WebAssembly.Module.imports(compiled)) {
    const base = imp.name.replace(/_[0-9a-f]{16}$/, "");
    const f = impl[base];
    if (!f) throw new Error(`unsupported @jsquash/png build (unknown import ${imp.name})`);
    wbg[imp.name] = f;
  }
  const instance = new WebAssembly.Instance(compiled, { wbg });
  ex = instance.exports as unknown as PngExports;
  return { exports: ex, take };
}

/** The PNG decoder; a fresh instance after any failure. */
export class PngDecoder {
  #instance: PngInstance | null = null;
  /** Instances created so far (for tests). */
  instances = 0;

  /** Decodes PNG bytes to RGBA (8 bits per channel). Throws a {@link DecoderFault} on failure. */
  async decode(bytes: Uint8Array): Promise<RgbaPixels> {
    if (this.#instance === null) {
      pngModule ??= compileNear("@jsquash/png/codec/pkg/squoosh_png_bg.wasm");
      const compiled = await pngModule;
      if (!compiled) throw new DecoderFault("cannot load the PNG decoder's wasm", []);
      try {
        this.#instance = instantiatePng(compiled);
      } catch (e) {
        throw new DecoderFault("cannot start the PNG decoder", [], e);
      }
      this.instances++;
    }
    const inst = this.#instance;
    try {
      const ptr = inst.exports.__wbindgen_malloc(bytes.length, 1) >>> 0;
      new Uint8Array(inst.exports.memory.buffer, ptr, bytes.length).set(bytes);
      const out = inst.take(inst.exports.decode(ptr, bytes.length)) as RgbaPixels;
      return out;
    } catch (e) {
      this.#instance = null;
      const msg = e instanceof Error ? e.message : String(e);
      // The Rust decoder reports every failure as "`unwrap_throw` failed"; say what it means.
      throw new DecoderFault(
        "corrupt PNG",
        [/unwrap_throw/.test(msg) ? "the decoder rejected its image data" : msg],
      );
    }
  }
}
