/**
 * The subset of `node:assert/strict` our tests use, for the browser bundle (the page's
 * import map points `node:assert/strict` here).
 *
 * @module
 */

class AssertionError extends Error {
  override name = "AssertionError";
}

function fmt(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => ArrayBuffer.isView(x) ? Array.from(x as Float32Array) : x);
  } catch {
    return String(v);
  }
}

function deepEq(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Map && b instanceof Map) {
    return a.size === b.size && [...a].every(([k, v]) => b.has(k) && deepEq(v, b.get(k)));
  }
  if (a instanceof Set && b instanceof Set) {
    return a.size === b.size && [...a].every((v) => b.has(v));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    deepEq((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

type Expected =
  | RegExp
  | ((e: unknown) => boolean)
  | (new (...a: never[]) => unknown)
  | { message?: string | RegExp; name?: string };

function matches(err: unknown, expected: Expected | undefined): void {
  if (expected === undefined) return;
  const msg = err instanceof Error ? err.message : String(err);
  if (expected instanceof RegExp) {
    if (!expected.test(msg)) {
      throw new AssertionError(`error ${fmt(msg)} does not match ${expected}`);
    }
    return;
  }
  if (typeof expected === "function") {
    // An Error class is matched with instanceof; any other function is a validator.
    const isClass = expected.prototype instanceof Error || expected === Error;
    const ok = isClass
      ? err instanceof (expected as new () => unknown)
      : (expected as (e: unknown) => boolean)(err) === true;
    if (!ok) {
      throw new AssertionError(`error ${fmt(msg)} rejected by ${expected.name || "validator"}`);
    }
    return;
  }
  const { message, name } = expected;
  if (message instanceof RegExp && !message.test(msg)) {
    throw new AssertionError(`error ${fmt(msg)} does not match ${message}`);
  }
  if (typeof message === "string" && message !== msg) {
    throw new AssertionError(`error ${fmt(msg)} !== ${fmt(message)}`);
  }
  if (name !== undefined && (err as Error).name !== name) {
    throw new AssertionError(`error name ${(err as Error).name} !== ${name}`);
  }
}

/** `assert(value, message)`: throws unless `value` is truthy. */
function assert(value: unknown, message?: string): asserts value {
  if (!value) throw new AssertionError(message ?? `expected a truthy value, got ${fmt(value)}`);
}

assert.ok = assert;
assert.AssertionError = AssertionError;
assert.equal = (a: unknown, b: unknown, message?: string): void => {
  if (!Object.is(a, b)) throw new AssertionError(message ?? `${fmt(a)} !== ${fmt(b)}`);
};
assert.strictEqual = assert.equal;
assert.notEqual = (a: unknown, b: unknown, message?: string): void => {
  if (Object.is(a, b)) throw new AssertionError(message ?? `${fmt(a)} === ${fmt(b)}`);
};
assert.deepEqual = (a: unknown, b: unknown, message?: string): void => {
  if (!deepEq(a, b)) throw new AssertionError(message ?? `${fmt(a)} not deep-equal ${fmt(b)}`);
};
assert.deepStrictEqual = assert.deepEqual;
assert.notDeepEqual = (a: unknown, b: unknown, message?: string): void => {
  if (deepEq(a, b)) throw new AssertionError(message ?? `${fmt(a)} deep-equals ${fmt(b)}`);
};
assert.notDeepStrictEqual = assert.notDeepEqual;
assert.match = (s: string, re: RegExp, message?: string): void => {
  if (!re.test(s)) throw new AssertionError(message ?? `${fmt(s)} does not match ${re}`);
};
assert.throws = (fn: () => unknown, expected?: Expected, message?: string): void => {
  try {
    fn();
  } catch (e) {
    matches(e, expected);
    return;
  }
  throw new AssertionError(message ?? "expected the function to throw");
};
assert.rejects = async (
  fn: (() => Promise<unknown>) | Promise<unknown>,
  expected?: Expected,
  message?: string,
): Promise<void> => {
  try {
    await (typeof fn === "function" ? fn() : fn);
  } catch (e) {
    matches(e, expected);
    return;
  }
  throw new AssertionError(message ?? "expected the promise to reject");
};

export default assert;
