import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { SbmError } from '@sbm/core';
import { readPth, pyGet, isTorchTensor, type TorchTensor } from '@sbm/interop';

// ---- a tiny pickle assembler: the hostile files are written here opcode by opcode ----------------------------------
const enc = new TextEncoder();
const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
const P = {
  proto: (v = 2) => [0x80, v],
  global: (mod: string, name: string) => [0x63, ...enc.encode(`${mod}\n${name}\n`)],
  stackGlobal: (mod: string, name: string) => [...P.str(mod), ...P.str(name), 0x93],
  str: (s: string) => {
    const b = enc.encode(s);
    return [0x58, ...u32(b.length), ...b];
  },
  int: (n: number) => [0x4a, ...u32(n)],
  mark: [0x28],
  tuple: [0x74],
  emptyTuple: [0x29],
  tuple1: [0x85],
  reduce: [0x52],
  setitems: [0x75],
  persid: [0x51],
  false: [0x89],
  stop: [0x2e],
};
const pickle = (...parts: number[][]) => new Uint8Array(parts.flat());
const orderedDict = () => [...P.global('collections', 'OrderedDict'), ...P.emptyTuple, ...P.reduce];

/** `_rebuild_tensor_v2(storage('0', numel), offset, size, stride, False, OrderedDict())`. */
function tensorOps(storage: string, key: string, numel: number, offset: number, size: number[], stride: number[]) {
  return [
    ...P.global('torch._utils', '_rebuild_tensor_v2'),
    ...P.mark,
    ...P.mark,
    ...P.str('storage'),
    ...P.global('torch', storage),
    ...P.str(key),
    ...P.str('cpu'),
    ...P.int(numel),
    ...P.tuple,
    ...P.persid,
    ...P.int(offset),
    ...P.mark,
    ...size.flatMap(P.int),
    ...P.tuple,
    ...P.mark,
    ...stride.flatMap(P.int),
    ...P.tuple,
    ...P.false,
    ...orderedDict(),
    ...P.tuple,
    ...P.reduce,
  ];
}

/** A torch zip: archive/data.pkl, archive/data/<key>, optional archive/byteorder; entries stored as torch does. */
function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, byteorder?: string): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = { 'archive/data.pkl': [pkl, { level: 0 }] };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level: 0 }];
  if (byteorder) files['archive/byteorder'] = [enc.encode(byteorder), { level: 0 }];
  return zipSync(files);
}

function stateDict(entries: [string, number[]][]): Uint8Array {
  return pickle(
    P.proto(),
    orderedDict(),
    P.mark,
    entries.flatMap(([k, ops]) => [...P.str(k), ...ops]),
    P.setitems,
    P.stop,
  );
}

function refusal(fn: () => unknown): SbmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SbmError);
    return e as SbmError;
  }
  throw new Error('expected an SbmError, nothing was thrown');
}

describe('readPth: hostile files are refused, nothing runs', () => {
  it('a pickle naming os.system is refused at the GLOBAL, before any call', () => {
    const evil = pickle(P.proto(), P.global('os', 'system'), P.str('touch /tmp/pwned'), P.tuple1, P.reduce, P.stop);
    const e = refusal(() => readPth(torchZip(evil)));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toMatch(/os\.system.*not on the allow-list.*nothing was executed/);
    expect(e.details?.global).toBe('os.system');
  });

  it('builtins.eval through STACK_GLOBAL (protocol 4) is refused', () => {
    const evil = pickle(P.proto(4), P.stackGlobal('builtins', 'eval'), P.str('1+1'), P.tuple1, P.reduce, P.stop);
    const e = refusal(() => readPth(torchZip(evil)));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('builtins.eval');
  });

  it('an unknown global (numpy reconstruct) is refused, naming it', () => {
    const evil = stateDict([
      ['w', [...P.global('numpy.core.multiarray', '_reconstruct'), ...P.emptyTuple, ...P.reduce]],
    ]);
    const e = refusal(() => readPth(torchZip(evil)));
    expect(e.message).toContain('numpy.core.multiarray._reconstruct');
  });

  it('calling an allowed marker that is not callable (a storage class) is refused', () => {
    const evil = pickle(P.proto(), P.global('torch', 'FloatStorage'), P.emptyTuple, P.reduce, P.stop);
    expect(refusal(() => readPth(torchZip(evil))).message).toMatch(/torch\.FloatStorage cannot be called/);
  });

  it('a truncated zip is refused as a damaged container', () => {
    const real = new Uint8Array(readFileSync(new URL('./fixtures/ve-ncsnpp/checkpoint_5.pth', import.meta.url)));
    const e = refusal(() => readPth(real.subarray(0, Math.floor(real.length / 2))));
    expect(e.code).toBe('CORRUPT_CHECKPOINT');
    expect(e.message).toMatch(/zip container is damaged or truncated/);
  });

  it('a truncated pickle inside a valid zip is refused', () => {
    const pkl = stateDict([['w', tensorOps('FloatStorage', '0', 2, 0, [2], [1])]]);
    const e = refusal(() => readPth(torchZip(pkl.subarray(0, pkl.length - 5), { '0': new Uint8Array(8) })));
    expect(e.code).toBe('CORRUPT_CHECKPOINT');
    expect(e.message).toMatch(/truncated/);
  });

  it('a storage shorter than its tensor is refused, naming the storage', () => {
    // The storage claims 4 floats and has them; the view reads 8.
    const pkl = stateDict([['w', tensorOps('FloatStorage', '0', 4, 0, [8], [1])]]);
    const e = refusal(() => readPth(torchZip(pkl, { '0': new Uint8Array(16) })));
    expect(e.code).toBe('CORRUPT_CHECKPOINT');
    expect(e.message).toMatch(/storage 0 is shorter than its tensor/);
    // The storage entry itself shorter than its declared element count.
    const pkl2 = stateDict([['w', tensorOps('FloatStorage', '0', 4, 0, [4], [1])]]);
    expect(refusal(() => readPth(torchZip(pkl2, { '0': new Uint8Array(10) }))).message).toMatch(
      /storage 0: holds 10 bytes, its 4 float32 elements need 16/,
    );
  });

  it('a legacy (non-zip) torch file and random bytes get clear errors', () => {
    expect(refusal(() => readPth(pickle(P.proto(), P.stop))).message).toMatch(/legacy/);
    expect(refusal(() => readPth(new Uint8Array([1, 2, 3, 4]))).message).toMatch(/not a torch zip file/);
  });
});

describe('readPth: storages and views', () => {
  const dv = (n: number, f: (v: DataView) => void) => {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    return b;
  };

  it('a transposed view with an offset reads the right elements (little-endian float32)', () => {
    // storage = 0..6; view = offset 1, size (2, 3), stride (1, 2): a transposed [3, 2] block.
    const data = dv(28, (v) => [0, 1, 2, 3, 4, 5, 6].forEach((x, i) => v.setFloat32(4 * i, x, true)));
    const sd = readPth(
      torchZip(stateDict([['w', tensorOps('FloatStorage', '0', 7, 1, [2, 3], [1, 2])]]), { '0': data }),
    );
    const w = pyGet(sd, 'w') as TorchTensor;
    expect(isTorchTensor(w)).toBe(true);
    expect(w.shape).toEqual([2, 3]);
    expect([...w.values()]).toEqual([1, 3, 5, 2, 4, 6]);
    const t = w.toTensor();
    expect(t.shape).toEqual([2, 3]);
    t.dispose();
  });

  it('big-endian float32, float16, bfloat16 and int64 storages', () => {
    const f32 = dv(8, (v) => {
      v.setFloat32(0, 1.5, false);
      v.setFloat32(4, -2.25, false);
    });
    // 1.0 and -2.0 in half precision, 0.5 and 3.0 in bfloat16, all big-endian.
    const f16 = dv(4, (v) => {
      v.setUint16(0, 0x3c00, false);
      v.setUint16(2, 0xc000, false);
    });
    const bf16 = dv(4, (v) => {
      v.setUint16(0, 0x3f00, false);
      v.setUint16(2, 0x4040, false);
    });
    const i64 = dv(16, (v) => {
      v.setBigInt64(0, -3n, false);
      v.setBigInt64(8, 1234567890123n, false);
    });
    const pkl = stateDict([
      ['a', tensorOps('FloatStorage', '0', 2, 0, [2], [1])],
      ['b', tensorOps('HalfStorage', '1', 2, 0, [2], [1])],
      ['c', tensorOps('BFloat16Storage', '2', 2, 0, [2], [1])],
      ['d', tensorOps('LongStorage', '3', 2, 0, [2], [1])],
    ]);
    const sd = readPth(torchZip(pkl, { '0': f32, '1': f16, '2': bf16, '3': i64 }, 'big'));
    const vals = (k: string) => [...(pyGet(sd, k) as TorchTensor).values()];
    expect(vals('a')).toEqual([1.5, -2.25]);
    expect(vals('b')).toEqual([1, -2]);
    expect(vals('c')).toEqual([0.5, 3]);
    expect(vals('d')).toEqual([-3, 1234567890123]);
    expect((pyGet(sd, 'b') as TorchTensor).dtype).toBe('float16');
  });

  it('the score_sde_pytorch checkpoint: model, ema (positional shadow list), optimizer, step', () => {
    const bytes = new Uint8Array(readFileSync(new URL('./fixtures/ve-ncsnpp/checkpoint_5.pth', import.meta.url)));
    const before = tf.memory().numTensors;
    const ck = readPth(bytes) as Map<string, unknown>;
    expect([...ck.keys()]).toEqual(['optimizer', 'model', 'ema', 'step']);
    expect(ck.get('step')).toBe(5);
    const model = ck.get('model') as Map<string, unknown>;
    // config.json: 218 state-dict keys; the EMA shadows every requires_grad parameter (all but sigmas and W).
    expect(model.size).toBe(218);
    expect((pyGet(ck.get('ema'), 'shadow_params') as unknown[]).length).toBe(216);
    expect(pyGet(ck.get('ema'), 'decay')).toBe(0.999);
    expect(tf.memory().numTensors).toBe(before);
  });
});
