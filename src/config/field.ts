/**
 * The building blocks of every config field: zod schemas that carry a range and a one-line
 * "expected …, got …" message, and `checkWith`, which turns the first problem into an error.
 *
 * Field declarations live next to the code that owns them (`models/hparams.ts`,
 * `data/options.ts`, `train/config.ts`); each is a public interface (type and doc) plus one
 * schema entry typed against it (range and default), so the two cannot drift. The config
 * validator composes these schemas and adds file:line; the model and data-module constructors
 * run the same schemas on what API users pass. This module imports nothing from the project,
 * so every layer may use it.
 *
 * @module
 */

import { z } from "zod";

/** A schema per field of `T`, typed against `T` (what a config section is built from). */
export type Fields<T> = { [K in keyof T]-?: z.ZodType<T[K]> };

/** The most characters of a user's value an error quotes; longer ones are cut with a count. */
export const QUOTE_MAX = 200;

/** `text`, cut to {@link QUOTE_MAX} characters plus a note of how long it was. */
export function clip(text: string): string {
  return text.length <= QUOTE_MAX
    ? text
    : `${text.slice(0, QUOTE_MAX)}… (${text.length} characters)`;
}

/** How a value is shown in an error: strings quoted, mappings and lists named, long ones cut. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return clip(JSON.stringify(v));
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list (${clip(JSON.stringify(v))})`;
  if (typeof v === "object") return "a mapping";
  return String(v);
}

/** The zod error callback for `expected <what>, got <input>`. */
export function expect(what: string): (iss: { input?: unknown }) => string {
  return (iss) => `expected ${what}, got ${show(iss.input)}`;
}

/** A finite number that passes `check`; `what` names the range in errors. */
export function num(what: string, check: (v: number) => boolean): z.ZodType<number> {
  return z.any().superRefine((v, ctx) => {
    if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) {
      ctx.addIssue({
        code: "custom",
        message: `expected ${what}, got ${show(v)}`,
        continue: false,
      });
    }
  }) as unknown as z.ZodType<number>;
}

/** An integer >= 1. */
export const posInt = (what = "a positive integer"): z.ZodType<number> =>
  num(what, (v) => Number.isInteger(v) && v > 0);
/** An integer >= 0. */
export const nonNegInt = (): z.ZodType<number> =>
  num("an integer >= 0", (v) => Number.isInteger(v) && v >= 0);
/** Any integer. */
export const anyInt = (): z.ZodType<number> => num("an integer", (v) => Number.isInteger(v));
/** A number > 0. */
export const posNum = (): z.ZodType<number> => num("a positive number", (v) => v > 0);
/** A number >= 0. */
export const nonNegNum = (): z.ZodType<number> => num("a number >= 0", (v) => v >= 0);
/** A number in [0, 1]. */
export const unit = (what = "a number in [0, 1]"): z.ZodType<number> =>
  num(what, (v) => v >= 0 && v <= 1);
/** A number in [0, 1). */
export const unitOpen = (): z.ZodType<number> => num("a number in [0, 1)", (v) => v >= 0 && v < 1);
/** `true` or `false`. */
export const bool = (): z.ZodType<boolean> => z.boolean({ error: expect("true or false") });
/** A non-empty string. */
export const str = (): z.ZodType<string> =>
  z.string({ error: expect("a string") }).min(1, { error: expect("a non-empty string") });
/** One of the given strings. */
export function oneOf<T extends string>(vals: readonly T[]): z.ZodType<T> {
  return z.enum(vals as unknown as [T, ...T[]], {
    error: expect(`one of ${vals.map((v) => JSON.stringify(v)).join(", ")}`),
  }) as unknown as z.ZodType<T>;
}
/**
 * One of the spellings that `spellings` maps to canonical values (a number matches its
 * decimal spelling, so YAML's `32` reads as "32"); the value is the canonical one.
 */
export function spelledAs<T extends string>(spellings: Readonly<Record<string, T>>): z.ZodType<T> {
  const names = Object.keys(spellings).map((k) => JSON.stringify(k)).join(", ");
  return z.any().transform((v, ctx) => {
    const key = typeof v === "string" || typeof v === "number" ? String(v) : null;
    if (key !== null && Object.hasOwn(spellings, key)) return spellings[key];
    ctx.addIssue({
      code: "custom",
      message: `expected one of ${names}, got ${show(v)}`,
      continue: false,
    });
    return z.NEVER;
  }) as unknown as z.ZodType<T>;
}
/** A mapping with exactly the given fields (unknown keys are errors). */
export function obj<T>(fields: Fields<T>): z.ZodType<T> {
  return z.strictObject(fields as z.ZodRawShape, {
    error: expect("a mapping"),
  }) as unknown as z.ZodType<T>;
}
/** A section whose fields all have defaults: absent, it is built from them. */
export function section<T>(fields: Fields<T>): z.ZodType<T> {
  return (obj(fields) as z.ZodType<T, unknown>).prefault({}) as unknown as z.ZodType<T>;
}

/** The first problem found in a value: where (dotted path below the checked value) and what. */
export interface FieldProblem {
  /** Path of the offending value below the checked root. */
  path: (string | number)[];
  /**
   * Further paths a cross-field problem involves (e.g. `valFraction` for a `testFraction`
   * error); a config error is located at whichever of them was written last.
   */
  related: (string | number)[][];
  /** `expected …, got …` (or `unknown key (known: …)`). */
  message: string;
}

/** Reports a problem involving several fields from a `superRefine`, at `path`. */
export function crossFieldIssue(
  ctx: z.RefinementCtx,
  path: (string | number)[],
  related: (string | number)[][],
  message: string,
): void {
  ctx.addIssue({ code: "custom", path, message, params: { related, local: path } });
}

/** The field schema of an object schema at `path` (through defaults and nullables), if any. */
function shapeAt(schema: unknown, path: readonly PropertyKey[]): Record<string, unknown> | null {
  // deno-lint-ignore no-explicit-any
  let s: any = schema;
  const unwrap = () => {
    while (s?._zod?.def?.innerType) s = s._zod.def.innerType;
  };
  for (const k of path) {
    unwrap();
    s = s?._zod?.def?.shape?.[k as string];
  }
  unwrap();
  return s?._zod?.def?.shape ?? null;
}

/** Validates `value`: the parsed value (defaults filled), or the first problem. */
export function parseFields<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; problem: FieldProblem } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  const iss = r.error.issues[0];
  const keep = (p: readonly PropertyKey[]) =>
    p.filter((k) => typeof k === "string" || typeof k === "number") as (string | number)[];
  let path = keep(iss.path);
  let message = iss.message;
  let related: (string | number)[][] = [];
  if (iss.code === "unrecognized_keys") {
    const shape = shapeAt(schema, path);
    path = [...path, iss.keys[0]];
    const known = shape ? Object.keys(shape) : [];
    message = `unknown key${known.length ? ` (known: ${known.join(", ")})` : ""}`;
  } else if (iss.code === "custom" && Array.isArray(iss.params?.related)) {
    // `related` is relative to the object the check ran on, as `local` is: add its prefix.
    const prefix = path.slice(0, path.length - (iss.params.local as unknown[]).length);
    related = (iss.params.related as (string | number)[][]).map((r) => [...prefix, ...r]);
  }
  return { ok: false, problem: { path, related, message } };
}

/**
 * Validates `value` with `schema` and returns it with defaults filled; the first problem
 * becomes `fail(path, message)` (the caller picks the error type and prefix).
 */
export function checkWith<T>(
  schema: z.ZodType<T>,
  value: unknown,
  fail: (path: string, message: string) => Error,
): T {
  const r = parseFields(schema, value);
  if (r.ok) return r.value;
  throw fail(r.problem.path.join("."), r.problem.message);
}
