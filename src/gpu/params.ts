/**
 * Uniform blocks declared once: a kernel lists its uniform fields (names and 4-byte types) in
 * TypeScript, and the same list yields both the WGSL `struct Params` injected into the shader
 * source and the packing of a dispatch's values, so the two cannot drift apart.
 *
 * @module
 */

/** WGSL type of one 4-byte uniform field. */
export type ParamType = "u32" | "i32" | "f32";

/** Values of every field of a params layout, by name. */
export type ParamValues<F extends Record<string, ParamType>> = { readonly [K in keyof F]: number };

/** The uniform fields of one kernel, in binding order. */
export class ParamsLayout<F extends Record<string, ParamType>> {
  /** Field names and types, in declaration (and memory) order. */
  readonly fields: Readonly<F>;
  readonly #names: (keyof F & string)[];

  /** A layout of `fields` (declaration order is memory order). */
  constructor(fields: F) {
    this.fields = fields;
    this.#names = Object.keys(fields) as (keyof F & string)[];
    for (const n of this.#names) {
      if (!/^[a-z][a-z0-9_]*$/.test(n)) {
        throw new SyntaxError(`params: field name "${n}" must be lower-case snake_case`);
      }
    }
  }

  /** Number of 4-byte slots, padded to a multiple of 4 (16 bytes). */
  get slots(): number {
    return Math.max(4, Math.ceil(this.#names.length / 4) * 4);
  }

  /** The WGSL declaration `struct Params { … }`, padded to 16 bytes. */
  get wgsl(): string {
    const lines = this.#names.map((n) => `  ${n}: ${this.fields[n]},`);
    for (let i = this.#names.length; i < this.slots; i++) lines.push(`  _pad${i}: u32,`);
    return `struct Params {\n${lines.join("\n")}\n}\n`;
  }

  /** `source` with `struct Params` inserted before its first binding. */
  inject(source: string, label = "shader"): string {
    if (/\bstruct\s+Params\b/.test(source)) {
      throw new SyntaxError(`${label}: declares struct Params itself; it is injected from TS`);
    }
    const at = source.search(/^@group\(/m);
    if (at < 0) throw new SyntaxError(`${label}: has no @group binding to put Params before`);
    return source.slice(0, at) + this.wgsl + "\n" + source.slice(at);
  }

  /** The packed uniform bytes of `values` (every field required). */
  pack(values: ParamValues<F>): ArrayBuffer {
    const buf = new ArrayBuffer(this.slots * 4);
    const view = new DataView(buf);
    this.#names.forEach((n, i) => {
      const v = values[n];
      if (typeof v !== "number") throw new TypeError(`params: field ${n} is missing`);
      const type = this.fields[n];
      if (type === "f32") view.setFloat32(4 * i, v, true);
      else if (type === "i32") view.setInt32(4 * i, v | 0, true);
      else view.setUint32(4 * i, v >>> 0, true);
    });
    return buf;
  }
}

/** Shorthand for `new ParamsLayout(fields)`. */
export function params<F extends Record<string, ParamType>>(fields: F): ParamsLayout<F> {
  return new ParamsLayout(fields);
}
