import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from '@sbm/safetensors';
import { unzipSync } from 'fflate';
import { pyDict, unpickle, type PyDict, type PyGlobal, type PyValue } from './pickle';

/** Element types a torch storage can hold that sbm reads. */
export type TorchDtype =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGES: Record<string, TorchDtype> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
const ITEM_BYTES: Record<TorchDtype, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** One tensor of a .pth file: a strided view into a storage, decoded on demand. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchDtype,
    readonly shape: readonly number[],
    /** Element strides (torch's, in elements of the storage). */
    readonly stride: readonly number[],
    /** Element offset into the storage. */
    readonly offset: number,
    private readonly storage: { bytes: Uint8Array; littleEndian: boolean; key: string },
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** The values in row-major (C) order as float64 numbers (int64 beyond 2^53 loses precision). */
  values(): Float64Array {
    const { bytes, littleEndian } = this.storage;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = this.size;
    const out = new Float64Array(n);
    const item = ITEM_BYTES[this.dtype];
    const read = (i: number): number => {
      const at = i * item;
      switch (this.dtype) {
        case 'float32':
          return view.getFloat32(at, littleEndian);
        case 'float64':
          return view.getFloat64(at, littleEndian);
        case 'float16':
          return float16BitsToFloat32(view.getUint16(at, littleEndian));
        case 'bfloat16':
          return bfloat16BitsToFloat32(view.getUint16(at, littleEndian));
        case 'int64':
          return Number(view.getBigInt64(at, littleEndian));
        case 'int32':
          return view.getInt32(at, littleEndian);
        case 'int16':
          return view.getInt16(at, littleEndian);
        case 'int8':
          return view.getInt8(at);
        case 'uint8':
          return view.getUint8(at);
        case 'bool':
          return view.getUint8(at) === 0 ? 0 : 1;
      }
    };
    const rank = this.shape.length;
    const idx = new Array<number>(rank).fill(0);
    let src = this.offset;
    for (let k = 0; k < n; k++) {
      out[k] = read(src);
      // Odometer over the shape: strides may be anything (transposed or sliced views).
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]++;
        src += this.stride[d];
        if (idx[d] < this.shape[d]) break;
        src -= this.stride[d] * this.shape[d];
        idx[d] = 0;
      }
    }
    return out;
  }

  /** A float32 tfjs tensor of the same shape (the caller disposes it). */
  toTensor(): tf.Tensor {
    return tf.tensor(Float32Array.from(this.values()), [...this.shape], 'float32');
  }
}

export function isTorchTensor(v: unknown): v is TorchTensor {
  return v instanceof TorchTensor;
}

function corrupt(what: string, message: string, details: Record<string, unknown> = {}): SbmError {
  return new SbmError('CORRUPT_CHECKPOINT', `${what}: ${message}`, { format: 'pth', ...details });
}

function intTuple(what: string, v: PyValue, name: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && (x as number) >= 0)) {
    throw corrupt(what, `_rebuild_tensor_v2: ${name} is not a tuple of non-negative integers`);
  }
  return v as number[];
}

export interface ReadPthOptions {
  /** Names the file in error messages (default "checkpoint"). */
  what?: string;
}

/**
 * Reads a torch.save file (the zip format of torch ≥ 1.6: `<name>/data.pkl`, `<name>/data/<key>` storages,
 * optional `<name>/byteorder`) without Python. Returns the unpickled object: dicts are `Map`s, tuples and lists
 * arrays, tensors `TorchTensor`s. Only the globals a state dict or a checkpoint uses are allowed (torch's
 * `torch/_weights_only_unpickler.py` is the same idea); anything else is refused before it could run.
 */
export function readPth(bytes: Uint8Array, opts: ReadPthOptions = {}): PyValue {
  const what = opts.what ?? 'checkpoint';
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    throw new SbmError(
      'UNSUPPORTED',
      `${what}: a legacy (pre-1.6, non-zip) torch file; re-save it with torch.save(obj, f) from torch >= 1.6`,
      { format: 'pth' },
    );
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw corrupt(what, `not a torch zip file (expected the bytes "PK" at the start, ${bytes.length} bytes given)`);
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw corrupt(what, `the zip container is damaged or truncated (${(e as Error).message})`);
  }
  const pkl = Object.keys(files).find((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    throw corrupt(what, `no data.pkl in the zip (entries: ${Object.keys(files).slice(0, 8).join(', ')})`);
  }
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const order = files[`${prefix}byteorder`];
  const orderText = order ? new TextDecoder().decode(order).trim() : 'little';
  if (orderText !== 'little' && orderText !== 'big') {
    throw corrupt(what, `byteorder: expected "little" or "big", got "${orderText}"`);
  }
  const littleEndian = orderText === 'little';
  const storages = new Map<string, { dtype: TorchDtype; bytes: Uint8Array; littleEndian: boolean; key: string }>();

  const persistentLoad = (pid: PyValue): PyValue => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw corrupt(what, `a persistent id that is not a torch storage`);
    }
    const [, type, key, , numel] = pid as [string, PyGlobal, PyValue, PyValue, PyValue];
    const dtype = type && typeof type === 'object' ? STORAGES[type.name] : undefined;
    if (!dtype || type.module !== 'torch') throw corrupt(what, `a storage of an unsupported type`);
    if (typeof key !== 'string' || !Number.isInteger(numel)) throw corrupt(what, 'a malformed storage id');
    const cached = storages.get(key);
    if (cached) return cached;
    const data = files[`${prefix}data/${key}`];
    if (!data) throw corrupt(what, `storage ${key}: the entry ${prefix}data/${key} is missing from the zip`);
    const want = (numel as number) * ITEM_BYTES[dtype];
    if (data.length < want) {
      throw corrupt(what, `storage ${key}: holds ${data.length} bytes, its ${numel} ${dtype} elements need ${want}`, {
        storage: key,
      });
    }
    const s = { dtype, bytes: data, littleEndian, key };
    storages.set(key, s);
    return s;
  };

  const rebuildTensor = (args: PyValue[]): TorchTensor => {
    const [storage, offset, size, stride] = args as [
      { dtype: TorchDtype; bytes: Uint8Array; littleEndian: boolean; key: string },
      PyValue,
      PyValue,
      PyValue,
    ];
    if (!storage || typeof storage !== 'object' || !(storage.bytes instanceof Uint8Array)) {
      throw corrupt(what, '_rebuild_tensor_v2: the first argument is not a storage');
    }
    if (!Number.isInteger(offset) || (offset as number) < 0) throw corrupt(what, '_rebuild_tensor_v2: bad offset');
    const shape = intTuple(what, size, 'size');
    const strides = intTuple(what, stride, 'stride');
    if (shape.length !== strides.length) throw corrupt(what, '_rebuild_tensor_v2: size and stride differ in rank');
    const numel = shape.reduce((a, b) => a * b, 1);
    const last = (offset as number) + shape.reduce((acc, n, d) => acc + (n - 1) * strides[d], 0);
    const have = storage.bytes.length / ITEM_BYTES[storage.dtype];
    if (numel > 0 && last >= have) {
      throw corrupt(
        what,
        `storage ${storage.key} is shorter than its tensor: the view [${shape.join(', ')}] (offset ${offset}, ` +
          `strides [${strides.join(', ')}]) reads element ${last}, the storage holds ${Math.floor(have)}`,
        { storage: storage.key },
      );
    }
    return new TorchTensor(storage.dtype, shape, strides, offset as number, storage);
  };

  const g = (module: string, name: string, impl: Omit<PyGlobal, 'module' | 'name'> = {}): [string, PyGlobal] => [
    `${module}.${name}`,
    { module, name, ...impl },
  ];
  const globals = new Map<string, PyGlobal>([
    g('collections', 'OrderedDict', {
      call: (args) => {
        const d = pyDict();
        if (args.length > 0 && Array.isArray(args[0]))
          for (const kv of args[0] as PyValue[][]) d.set(kv[0] as string, kv[1]);
        return d;
      },
      // state_dict()'s `_metadata` attribute (module versions) is not needed to rebuild tensors.
      build: (obj) => obj,
    }),
    g('torch._utils', '_rebuild_tensor_v2', { call: rebuildTensor }),
    g('torch._utils', '_rebuild_parameter', {
      call: (args) => {
        if (!(args[0] instanceof TorchTensor)) throw corrupt(what, '_rebuild_parameter: not a tensor');
        return args[0];
      },
    }),
    g('torch', 'Size', { call: (args) => (Array.isArray(args[0]) ? [...(args[0] as PyValue[])] : []) }),
    ...Object.keys(STORAGES).map((name) => g('torch', name)),
  ]);
  return unpickle(files[pkl], { globals, persistentLoad, what: `${what} (${pkl})` });
}

/** Looks `key` up in a dict read by readPth. */
export function pyGet(d: PyValue, key: string): PyValue {
  return d instanceof Map ? d.get(key) : undefined;
}

/** The tensors of a (flat) state dict, in file order. Non-tensor entries are skipped. */
export function tensorsOf(d: PyValue): [string, TorchTensor][] {
  if (!(d instanceof Map)) return [];
  return [...(d as PyDict).entries()].filter(
    (e): e is [string, TorchTensor] => isTorchTensor(e[1]) && typeof e[0] === 'string',
  );
}
