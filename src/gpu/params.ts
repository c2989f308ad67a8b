/**
 * Uniform blocks declared once: a kernel lists its uniform fields (names and 4-byte types) in
 * TypeScript, and the same list yields both the WGSL `struct Params` injected into the shader
 * source and the packing of a dispatch's values, so the two cannot drift apart.
 *
 * @module
 */

/**
 * WGSL type of one uniform field: a 4-byte scalar, or `u32x8`, eight u32 (dims or strides of
 * up to 8-D tensors) held as `array<vec4<u32>, 2>`, which starts at a 16-byte boundary.
 */
export type ParamType = "u32" | "i32" | "f32" | "u32x8";

/** Values of every field of a params layout, by name (`u32x8`: up to 8 numbers, 0-filled). */
export type ParamValues<F extends Record<string, ParamType>> = {
  readonly [K in keyof F]: F[K] extends "u32x8" ? readonly number[] : number;
};

const SLOTS: Record<ParamType, number> = { u32: 1, i32: 1, f32: 1, u32x8: 8 };
const WGSL_TYPE: Record<ParamType, string> = {
  u32: "u32",
  i32: "i32",
  f32: "f32",
  u32x8: "array<vec4<u32>, 2>",
};

/** The uniform fields of one kernel, in binding order. */
export class ParamsLayout<F extends Record<string, ParamType>> {
  /** Field names and types, in declaration (and memory) order. */
  readonly fields: Readonly<F>;
  readonly #names: (keyof F & string)[];
  readonly #offsets: number[] = [];
  readonly #used: number;

  /** A layout of `fields` (declaration order is memory order). */
  constructor(fields: F) {
    this.fields = fields;
    this.#names = Object.keys(fields) as (keyof F & string)[];
    let slot = 0;
    for (const n of this.#names) {
      if (!/^[a-z][a-z0-9_]*$/.test(n)) {
        throw new SyntaxError(`params: field name "${n}" must be lower-case snake_case`);
      }
      const type = fields[n];
      if (!(type in SLOTS)) throw new TypeError(`params: field ${n} has unknown type ${type}`);
      // WGSL aligns an array of vec4 to 16 bytes: skip to the next boundary, as it does.
      if (type === "u32x8") slot = Math.ceil(slot / 4) * 4;
      this.#offsets.push(slot);
      slot += SLOTS[type];
    }
    this.#used = slot;
  }

  /** Number of 4-byte slots, padded to a multiple of 4 (16 bytes). */
  get slots(): number {
    return Math.max(4, Math.ceil(this.#used / 4) * 4);
  }

  /** The WGSL declaration `struct Params { … }`, padded to 16 bytes. */
  get wgsl(): string {
    const lines = this.#names.map((n) => `  ${n}: ${WGSL_TYPE[this.fields[n]]},`);
    // Trailing padding only; WGSL places the 16-byte aligned fields itself.
    for (let i = this.#used; i < this.slots; i++) lines.push(`  _pad${i}: u32,`);
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
      const at = 4 * this.#offsets[i];
      const type = this.fields[n];
      const v = values[n] as number | readonly number[] | undefined;
      if (type === "u32x8") {
        if (!Array.isArray(v) || v.length > 8) {
          throw new TypeError(`params: field ${n} needs up to 8 numbers, got ${v}`);
        }
        v.forEach((e, k) => view.setUint32(at + 4 * k, e >>> 0, true));
        return;
      }
      if (typeof v !== "number") throw new TypeError(`params: field ${n} is missing`);
      if (type === "f32") view.setFloat32(at, v, true);
      else if (type === "i32") view.setInt32(at, v | 0, true);
      else view.setUint32(at, v >>> 0, true);
    });
    return buf;
  }
}

/** Shorthand for `new ParamsLayout(fields)`. */
export function params<F extends Record<string, ParamType>>(fields: F): ParamsLayout<F> {
  return new ParamsLayout(fields);
}
