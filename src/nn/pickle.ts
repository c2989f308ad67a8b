/**
 * A restricted Python unpickler: the opcodes of protocols 0–5 that `torch.save` state dicts
 * use, and only the globals of an allowlist the caller passes. Any other global (`os.system`,
 * `builtins.eval`, …) is refused with an error naming it, so unlike `pickle.load` (and
 * `torch.load` without `weights_only`) a hostile file cannot run code.
 *
 * Values map to JavaScript as: None → null, bool → boolean, int → number (bigint when it
 * exceeds 2^53), float → number, str → string, bytes → Uint8Array (a view), list → array,
 * tuple → `PyTuple`, dict → `PyDict` (a Map). Allowed globals are `PyGlobal` handles whose
 * `call` builds the value when the pickle applies them (REDUCE / NEWOBJ).
 *
 * Every read is bounds-checked; lengths are checked against the bytes left before anything
 * is allocated, so memory is bounded by a small multiple of the input size.
 *
 * @module
 */

/** A malformed pickle or a refused global (one-line message). */
export class PickleError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

/** A Python tuple. */
export class PyTuple {
  /** Creates the tuple. */
  constructor(readonly items: unknown[]) {}
}

/** A Python dict (insertion-ordered; `state` holds attributes set by BUILD, e.g. `_metadata`). */
export class PyDict extends Map<unknown, unknown> {
  /** Attributes set on the dict object (OrderedDict `_metadata`), or null. */
  state: unknown = null;
}

/** An allowed global: `module.name` and how applying it builds a value. */
export interface PyGlobal {
  /** Dotted name, e.g. `torch._utils._rebuild_tensor_v2`. */
  readonly qualname: string;
  /** Builds the value for `global(*args)`. */
  call(args: unknown[]): unknown;
}

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** The allowlist: qualified name → its handle. Anything else is refused. */
  globals: ReadonlyMap<string, PyGlobal>;
  /** Resolves BINPERSID / PERSID ids (torch storages); absent = persistent ids refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Names the file in errors. */
  source?: string;
}

/** The result: the value and the offset just after the STOP opcode. */
export interface Unpickled {
  /** The unpickled object. */
  value: unknown;
  /** Byte offset after STOP (where a following pickle or raw data starts). */
  end: number;
}

/** Unpickles one object starting at `offset` of `bytes`. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions, offset = 0): Unpickled {
  const src = opts.source ?? "pickle";
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength;
  let p = offset;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  let op = 0;
  let opAt = 0;
  const fail = (msg: string): never => {
    throw new PickleError(`${src}: ${msg} (opcode 0x${op.toString(16)} at byte ${opAt})`);
  };
  const need = (k: number): void => {
    if (k < 0 || p + k > n) fail(`needs ${k} bytes but ${n - p} are left (truncated)`);
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), p += 2, dv.getUint16(p - 2, true));
  const u32 = () => (need(4), p += 4, dv.getUint32(p - 4, true));
  const i32 = () => (need(4), p += 4, dv.getInt32(p - 4, true));
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(n)) fail(`length ${v} exceeds the ${n}-byte input`);
    return Number(v);
  };
  const take = (k: number): Uint8Array => {
    need(k);
    p += k;
    return bytes.subarray(p - k, p);
  };
  const line = (): string => {
    const e = bytes.indexOf(0x0a, p);
    if (e < 0) fail("unterminated text line");
    const s = latin1.decode(bytes.subarray(p, e));
    p = e + 1;
    return s;
  };
  const str = (k: number): string => {
    try {
      return utf8.decode(take(k));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      return fail("string is not valid UTF-8");
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) fail("MARK missing");
    stack = prev!;
    return items;
  };
  const findGlobal = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    const g = opts.globals.get(q);
    if (!g) fail(`refused global "${q}" (not in the allowlist of tensor-file globals)`);
    return g!;
  };
  const call = (f: unknown, args: unknown): unknown => {
    if (!isGlobal(f)) fail(`cannot call a ${describe(f)}`);
    if (!(args instanceof PyTuple)) {
      fail(`arguments of ${(f as PyGlobal).qualname} are not a tuple`);
    }
    return (f as PyGlobal).call((args as PyTuple).items);
  };
  const setItems = (d: unknown, kv: unknown[]): void => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on a ${describe(d)}`);
    if (kv.length % 2) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < kv.length; i += 2) (d as PyDict).set(kv[i], kv[i + 1]);
  };
  const append = (l: unknown, items: unknown[]): void => {
    if (!Array.isArray(l)) fail(`APPEND(S) on a ${describe(l)}`);
    for (const x of items) (l as unknown[]).push(x);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  };

  while (true) {
    opAt = p;
    if (p >= n) fail("ends without STOP (truncated)");
    op = bytes[p++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95: // FRAME
        need(8);
        p += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: p };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(take(u8())));
        break;
      case 0x8b: { // LONG4
        const k = i32();
        // Python ints in state dicts are small; a huge one only costs time (BigInt is O(n²)).
        if (k < 0 || k > 1024) fail(`LONG4 of ${k} bytes (expected at most 1024)`);
        stack.push(long(take(k)));
        break;
      }
      case 0x49: { // INT (text): also encodes True/False as I01/I00
        const s = line();
        if (s === "01") stack.push(true);
        else if (s === "00") stack.push(false);
        else {
          const v = Number(s);
          if (!Number.isInteger(v)) fail(`bad INT "${s.slice(0, 20)}"`);
          stack.push(v);
        }
        break;
      }
      case 0x4c: { // LONG (text)
        const s = line().replace(/L$/, "");
        if (!/^-?\d{1,400}$/.test(s)) fail(`bad LONG "${s.slice(0, 20)}"`);
        const v = BigInt(s);
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
            ? Number(v)
            : v,
        );
        break;
      }
      case 0x47: // BINFLOAT (big-endian f64)
        need(8);
        stack.push(dv.getFloat64(p, false));
        p += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x54: // BINSTRING (python 2 str)
        stack.push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: { // TUPLE (popMark swaps `stack`, so pop before pushing)
        const t = new PyTuple(popMark());
        stack.push(t);
        break;
      }
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x6c: { // LIST
        const l = popMark();
        stack.push(l);
        break;
      }
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: { // PUT (text)
        const k = Number(line());
        if (!Number.isInteger(k)) fail("bad PUT index");
        memo.set(k, top());
        break;
      }
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: { // GET (text)
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(k)) fail(`memo key ${k} is not defined`);
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail("STACK_GLOBAL needs two strings");
        }
        stack.push(findGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const f = pop();
        stack.push(call(f, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyDict) obj.state = state;
        else if (!(obj instanceof Object) || !("setState" in obj)) {
          fail(`BUILD on a ${describe(obj)}`);
        } else (obj as { setState(s: unknown): void }).setState(state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail("persistent ids are not allowed here");
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail("persistent ids are not allowed here");
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16)}`);
    }
  }
}

function isGlobal(x: unknown): x is PyGlobal {
  return typeof x === "object" && x !== null && "qualname" in x && "call" in x;
}

/** A short description of a value for error messages. */
export function describe(x: unknown): string {
  if (x === null) return "None";
  if (isGlobal(x)) return `global ${x.qualname}`;
  if (x instanceof PyDict) return "dict";
  if (x instanceof PyTuple) return "tuple";
  if (Array.isArray(x)) return "list";
  if (x instanceof Uint8Array) return "bytes";
  return typeof x === "object" ? (x as object).constructor?.name ?? "object" : typeof x;
}
