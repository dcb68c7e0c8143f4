import { SbmError } from '@sbm/core';

/**
 * A restricted reader of Python pickles (protocols 2–5), enough for what torch.save writes for a state dict or a
 * score_sde_pytorch checkpoint. It never calls anything a file names: GLOBAL / STACK_GLOBAL look the name up in
 * `globals` (an allow-list of plain TypeScript functions) and refuse every other name, so a pickle naming os.system
 * or builtins.eval is rejected before anything happens. Python's own pickle.py is the specification of the opcodes.
 */

/** A Python dict, keys in insertion order (JS objects would reorder integer-like keys). */
export type PyDict = Map<PyKey, PyValue>;
export type PyKey = string | number | bigint | boolean | null;
export type PyValue = unknown;

/** A global the pickle names, resolved through the allow-list. */
export interface PyGlobal {
  readonly module: string;
  readonly name: string;
  /** Called by REDUCE / NEWOBJ with the argument tuple. */
  call?(args: PyValue[]): PyValue;
  /** Applied by BUILD to the object the global made (e.g. OrderedDict's `_metadata`). */
  build?(obj: PyValue, state: PyValue): PyValue;
}

export interface UnpickleOptions {
  /** `module.name` → implementation. Anything absent is refused. */
  globals: ReadonlyMap<string, PyGlobal>;
  /** Resolves BINPERSID / PERSID ids (torch: ('storage', type, key, location, numel)). Absent ⇒ refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Names the file in error messages. */
  what?: string;
}

function corrupt(what: string, message: string, details: Record<string, unknown> = {}): SbmError {
  return new SbmError('CORRUPT_CHECKPOINT', `${what}: ${message}`, { format: 'pickle', ...details });
}

/** Builds the dict a pickle's EMPTY_DICT / DICT opcodes make. */
export function pyDict(): PyDict {
  return new Map();
}

function toKey(what: string, k: PyValue): PyKey {
  if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PyKey;
  if (Array.isArray(k)) return JSON.stringify(k.map((v) => (typeof v === 'bigint' ? v.toString() : v)));
  throw corrupt(what, `a dict key of an unsupported type (${typeof k})`);
}

/** Reads one pickle from `bytes`. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PyValue {
  const what = opts.what ?? 'pickle';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) {
      throw corrupt(what, `truncated: needs ${n} byte(s) at offset ${pos}, the pickle has ${bytes.length}`);
    }
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const i32 = () => view.getInt32(need(4), true);
  const u64 = () => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(what, `a length of ${v} bytes`);
    return Number(v);
  };
  const str = (n: number) => {
    const at = need(n);
    try {
      return decoder.decode(bytes.subarray(at, at + n));
    } catch {
      throw corrupt(what, `invalid UTF-8 in a string at offset ${at}`);
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw corrupt(what, `truncated: unterminated text line at offset ${pos}`);
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) {
      throw corrupt(what, `stack underflow at offset ${pos - 1}`);
    }
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) throw corrupt(what, `stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw corrupt(what, `MARK missing at offset ${pos - 1}`);
    return stack.splice(m);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const g = opts.globals.get(`${module}.${name}`);
    if (!g) {
      throw new SbmError(
        'UNSUPPORTED',
        `${what}: the pickle names the global ${module}.${name}, which is not on the allow-list ` +
          `(${[...opts.globals.keys()].join(', ')}); refused, nothing was executed`,
        { format: 'pickle', global: `${module}.${name}` },
      );
    }
    return g;
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    const g = fn as PyGlobal;
    if (!g || typeof g !== 'object' || typeof g.module !== 'string' || !opts.globals.has(`${g.module}.${g.name}`)) {
      throw corrupt(what, `REDUCE on something that is not an allowed global`);
    }
    if (!g.call) {
      throw new SbmError('UNSUPPORTED', `${what}: ${g.module}.${g.name} cannot be called; refused`, {
        format: 'pickle',
        global: `${g.module}.${g.name}`,
      });
    }
    if (!Array.isArray(args)) throw corrupt(what, `REDUCE arguments are not a tuple`);
    return g.call(args);
  };
  const setItems = (d: PyValue, items: PyValue[]) => {
    if (!(d instanceof Map)) throw corrupt(what, `SETITEM(S) on something that is not a dict`);
    if (items.length % 2 !== 0) throw corrupt(what, `SETITEMS with an odd number of items`);
    for (let i = 0; i < items.length; i += 2) d.set(toKey(what, items[i]), items[i + 1]);
  };
  const append = (l: PyValue, items: PyValue[]) => {
    if (!Array.isArray(l)) throw corrupt(what, `APPEND(S) on something that is not a list`);
    l.push(...items);
  };
  const builders = new WeakMap<object, PyGlobal>();

  for (;;) {
    if (pos >= bytes.length) throw corrupt(what, `truncated: no STOP opcode before the end (${bytes.length} bytes)`);
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw corrupt(what, `pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: only a length hint
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw corrupt(what, `STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
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
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = u8();
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
        if (n > 0 && bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(view.getFloat64(need(8), false));
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
      case 0x43: {
        // SHORT_BINBYTES
        const n = u8();
        const at = need(n);
        stack.push(bytes.slice(at, at + n));
        break;
      }
      case 0x42: {
        // BINBYTES
        const n = u32();
        const at = need(n);
        stack.push(bytes.slice(at, at + n));
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(pyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]));
        break;
      case 0x85: // TUPLE1
        stack.push(Object.freeze([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(Object.freeze(popMark()));
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const d = pyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const idx = op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) throw corrupt(what, `memo entry ${idx} read before it was written`);
        stack.push(memo.get(idx));
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw corrupt(what, 'STACK_GLOBAL without names');
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        const obj = call(fn, args);
        if (obj !== null && typeof obj === 'object') builders.set(obj, fn as PyGlobal);
        stack.push(obj);
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) — only for allowed classes, through the same allow-list
        const args = pop();
        const cls = pop();
        const obj = call(cls, args);
        if (obj !== null && typeof obj === 'object') builders.set(obj, cls as PyGlobal);
        stack.push(obj);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        const g = obj !== null && typeof obj === 'object' ? builders.get(obj) : undefined;
        if (!g?.build) throw corrupt(what, `BUILD (setting object state) on an object that does not take state`);
        stack[stack.length - 1] = g.build(obj, state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw corrupt(what, 'a persistent id, which this file type does not use');
        stack.push(opts.persistentLoad(pid));
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
      default:
        throw new SbmError(
          'UNSUPPORTED',
          `${what}: pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${pos - 1} is not supported ` +
            '(a state dict needs none of it); refused, nothing was executed',
          { format: 'pickle', opcode: op },
        );
    }
  }
}
