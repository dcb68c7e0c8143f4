import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countTensors, withLeakCheck } from '@sbm/core';
import { describeWithBackends, expectThrowsSbm as expectSbm } from '@sbm/test-harness';
import {
  bfloat16BitsToFloat32,
  decodeSafetensors,
  decodeSafetensorsRaw,
  encodeSafetensors,
  encodeSafetensorsAsync,
  encodeSafetensorsRaw,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  readSafetensorsHeader,
  type SafetensorsDtype,
} from '@sbm/safetensors';

/** Builds a file by hand from the spec: u64 LE header length, header text (spaces included), data bytes. */
function handmade(header: string, data: number[] | Uint8Array, headerLength = header.length): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, headerLength, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('golden byte layout (from the spec, not from the encoder)', () => {
  // {"a": F32 [2] = [1, 2]}: the header text is 54 bytes, padded with 2 spaces to 56 (a multiple of 8), so the
  // length prefix is 56 = 0x38; 1.0f = 0x3f800000 and 2.0f = 0x40000000, little-endian.
  const headerText = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const expected = new Uint8Array([
    0x38,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...new TextEncoder().encode(headerText),
    0x20,
    0x20,
    0x00,
    0x00,
    0x80,
    0x3f,
    0x00,
    0x00,
    0x00,
    0x40,
  ]);

  it('the hand-built bytes are what the spec says', () => {
    expect(headerText.length).toBe(54);
    expect(expected.length).toBe(8 + 56 + 8);
  });

  it('encoder output equals the golden bytes', async () => {
    await withLeakCheck(() => {
      const a = tf.tensor1d([1, 2]);
      const bytes = encodeSafetensors({ a });
      a.dispose();
      expect(Array.from(bytes)).toEqual(Array.from(expected));
    }, 'encode golden');
  });

  it('decoder reads the golden bytes', async () => {
    await withLeakCheck(() => {
      const { tensors, metadata } = decodeSafetensors(expected);
      expect(Object.keys(tensors)).toEqual(['a']);
      expect(tensors.a.dtype).toBe('float32');
      expect(tensors.a.shape).toEqual([2]);
      expect(Array.from(tensors.a.dataSync())).toEqual([1, 2]);
      expect(metadata).toEqual({});
      tf.dispose(tensors);
    }, 'decode golden');
  });

  it('metadata, F16 and I64 by hand', () => {
    // __metadata__ first, then tensors by decreasing element size (I64 before F16), as the reference writer orders.
    const text =
      '{"__metadata__":{"k":"v"},"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}';
    const pad = (8 - (text.length % 8)) % 8;
    const data = [
      // I64 −2 = 0xFFFFFFFFFFFFFFFE little-endian
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      // F16 1.0 = 0x3C00, −2.0 = 0xC000
      0x00, 0x3c, 0x00, 0xc0,
    ];
    const file = handmade(text + ' '.repeat(pad), data);
    const raw = encodeSafetensorsRaw(
      [
        { name: 'h', dtype: 'F16', shape: [2], values: [1, -2] },
        { name: 'i', dtype: 'I64', shape: [1], values: [-2] },
      ],
      { k: 'v' },
    );
    expect(Array.from(raw)).toEqual(Array.from(file));
    const back = decodeSafetensorsRaw(file);
    expect(back.metadata).toEqual({ k: 'v' });
    expect(back.tensors.i).toEqual({ dtype: 'I64', tfDtype: 'int32', shape: [1], values: new Int32Array([-2]) });
    expect(Array.from(back.tensors.h.values)).toEqual([1, -2]);
  });
});

describe('float16 / bfloat16 conversion (known bit patterns, IEEE 754 round-to-nearest-even)', () => {
  it('binary16', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite
      [65520, 0x7c00], // halfway to 65536 rounds to even = Inf
      [65519, 0x7bff],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // exactly half the smallest subnormal: ties to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal units: tie, rounds to even 2
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1 + 2^-10 and 1 + 2^-9: even
      [-0, 0x8000],
    ];
    for (const [v, bits] of cases) expect(float32ToFloat16Bits(v), `f16(${v})`).toBe(bits);
    expect(float32ToFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float32ToFloat16Bits(NaN) & 0x3ff).not.toBe(0);
    expect(float16BitsToFloat32(0x3555)).toBe(Math.fround(0.333251953125));
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(float16BitsToFloat32(0x7e00))).toBe(true);
  });

  it('binary16 decode ∘ encode is the identity on all 63488 finite and infinite bit patterns', () => {
    for (let h = 0; h < 65536; h++) {
      const v = float16BitsToFloat32(h);
      if (Number.isNaN(v)) continue;
      if (float32ToFloat16Bits(v) !== h) throw new Error(`round trip failed for 0x${h.toString(16)}`);
    }
  });

  it('bfloat16', () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(0.1)).toBe(0x3dcd); // 0x3dcccccd: low half 0xcccd > 0x8000 rounds up
    expect(float32ToBfloat16Bits(Math.PI)).toBe(0x4049); // 0x40490fdb: low half rounds down
    expect(float32ToBfloat16Bits(-Infinity)).toBe(0xff80);
    expect(float32ToBfloat16Bits(3.4028234663852886e38)).toBe(0x7f80); // max float rounds up to Inf
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even
    expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(NaN)))).toBe(true);
    expect(bfloat16BitsToFloat32(0x4049)).toBe(3.140625);
  });

  // numpy's astype(float16) is an independent implementation of the same rounding.
  const numpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!numpy)(
    'binary16 encoding matches numpy on 20000 values (skipped where python3 with numpy is not importable)',
    () => {
      const values: number[] = [];
      let s = 12345;
      for (let i = 0; i < 20000; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        // log-uniform magnitudes from 2^-30 to 2^18 cover subnormals, normals and overflow
        const mag = 2 ** ((s / 2 ** 32) * 48 - 30);
        values.push(Math.fround(i % 2 ? mag : -mag));
      }
      const out = execFileSync(
        'python3',
        [
          '-c',
          'import sys,json,numpy as np; v=np.array(json.load(sys.stdin),dtype=np.float32); print(json.dumps(v.astype(np.float16).view(np.uint16).tolist()))',
        ],
        { input: JSON.stringify(values), encoding: 'utf8', maxBuffer: 1 << 24 },
      );
      const ref = JSON.parse(out) as number[];
      const mine = values.map(float32ToFloat16Bits);
      const mismatches = mine.filter((b, i) => b !== ref[i]).length;
      expect(mismatches).toBe(0);
    },
  );
});

describeWithBackends('round trips', () => {
  const cases: { dtype: SafetensorsDtype; values: number[]; tf: 'float32' | 'int32' | 'bool'; exact: boolean }[] = [
    { dtype: 'F32', values: [1.5, -2.25, 3e-8, 1e30, 0], tf: 'float32', exact: true },
    { dtype: 'F64', values: [1.5, -2.25, 0.1, 1e30, 0], tf: 'float32', exact: false },
    { dtype: 'F16', values: [1, -0.5, 0.1, 65504, 2 ** -24], tf: 'float32', exact: false },
    { dtype: 'BF16', values: [1, -0.5, 0.1, 1e30, 3], tf: 'float32', exact: false },
    { dtype: 'I32', values: [0, -1, 2147483647, -2147483648, 7], tf: 'int32', exact: true },
    { dtype: 'I64', values: [0, -1, 2147483647, -2147483648, 7], tf: 'int32', exact: true },
    { dtype: 'U8', values: [0, 1, 128, 255, 7], tf: 'int32', exact: true },
    { dtype: 'BOOL', values: [1, 0, 0, 1, 1], tf: 'bool', exact: true },
  ];
  for (const c of cases) {
    it(`${c.dtype} → ${c.tf}`, async () => {
      await withLeakCheck(() => {
        const t = tf.tensor(c.values, [5], c.tf === 'bool' ? 'bool' : c.tf === 'int32' ? 'int32' : 'float32');
        const bytes = encodeSafetensors([{ name: 'x', tensor: t, dtype: c.dtype }], { note: c.dtype });
        t.dispose();
        expect(readSafetensorsHeader(bytes).tensors.x.dtype).toBe(c.dtype);
        const { tensors, metadata, notes } = decodeSafetensors(bytes);
        expect(metadata).toEqual({ note: c.dtype });
        expect(tensors.x.dtype).toBe(c.tf);
        expect(tensors.x.shape).toEqual([5]);
        const got = Array.from(tensors.x.dataSync());
        // Lossy dtypes come back as the float32 value their own rounding gives (computed independently of the file).
        const want = c.values.map((v) =>
          c.exact
            ? c.tf === 'float32'
              ? Math.fround(v)
              : v
            : c.dtype === 'F16'
              ? float16BitsToFloat32(float32ToFloat16Bits(v))
              : c.dtype === 'BF16'
                ? bfloat16BitsToFloat32(float32ToBfloat16Bits(v))
                : Math.fround(v),
        );
        expect(got).toEqual(want);
        expect(notes.length).toBe(c.dtype === 'F64' ? 1 : 0);
        tf.dispose(tensors);
      }, `round trip ${c.dtype}`);
    });
  }

  it('F64 keeps float32-exact doubles exactly and rounds the rest', () => {
    const bytes = encodeSafetensorsRaw([{ name: 'd', dtype: 'F64', shape: [3], values: [0.1, 0.5, 1 / 3] }]);
    const raw = decodeSafetensorsRaw(bytes);
    expect(Array.from(raw.tensors.d.values)).toEqual([Math.fround(0.1), 0.5, Math.fround(1 / 3)]);
    expect(raw.notes[0]).toMatch(/d: F64 rounded to float32/);
  });

  it('many tensors, mixed dtypes, odd sizes, scalars and empty tensors: every data start aligned', async () => {
    await withLeakCheck(async () => {
      const input = {
        'b.flag': tf.tensor([true, false, true], [3], 'bool'),
        'w.weight': tf.tensor([1, 2, 3, 4, 5, 6], [2, 3]),
        scalar: tf.scalar(-7.5),
        empty: tf.zeros([0, 4]),
        idx: tf.tensor([3, -4, 5], [3], 'int32'),
      };
      const bytes = await encodeSafetensorsAsync(input, undefined, { floatDtype: 'F32', intDtype: 'I64' });
      const header = readSafetensorsHeader(bytes);
      expect(header.dataStart % 8).toBe(0);
      for (const [, info] of Object.entries(header.tensors)) {
        const size = { F32: 4, I64: 8, BOOL: 1 }[info.dtype as 'F32' | 'I64' | 'BOOL'];
        expect(info.dataOffsets[0] % size).toBe(0);
      }
      expect(header.tensors.idx.dtype).toBe('I64');
      const { tensors } = decodeSafetensors(bytes);
      for (const [name, t] of Object.entries(input)) {
        expect(tensors[name].shape).toEqual(t.shape);
        expect(tensors[name].dtype).toBe(t.dtype);
        expect(Array.from(tensors[name].dataSync())).toEqual(Array.from(t.dataSync()));
      }
      tf.dispose(tensors);
      tf.dispose(Object.values(input));
    }, 'mixed');
  });
});

describe('encoder input errors', () => {
  it('rejects bad names, values and metadata', () => {
    const before = countTensors();
    const t = tf.tensor1d([1.5]);
    expectSbm(() => encodeSafetensors([{ name: '__metadata__', tensor: t }]), 'INVALID_ARGUMENT', /reserved/);
    expectSbm(
      () =>
        encodeSafetensors([
          { name: 'a', tensor: t },
          { name: 'a', tensor: t },
        ]),
      'DUPLICATE_NAME',
      /"a" appears twice/,
    );
    expectSbm(
      () => encodeSafetensors([{ name: 'a', tensor: t, dtype: 'I32' }]),
      'INVALID_ARGUMENT',
      /value 1.5 at index 0 is not a I32/,
    );
    expectSbm(
      () => encodeSafetensors({ a: t }, { n: 3 as unknown as string }),
      'INVALID_ARGUMENT',
      /metadata.n: expected a string/,
    );
    expectSbm(
      () => encodeSafetensorsRaw([{ name: 'u', dtype: 'U8', shape: [1], values: [256] }]),
      'INVALID_ARGUMENT',
      /value 256 at index 0 is not a U8/,
    );
    expectSbm(
      () => encodeSafetensorsRaw([{ name: 'u', dtype: 'F32', shape: [2, 2], values: [1, 2, 3] }]),
      'INVALID_SHAPE',
      /holds 4 values, got 3/,
    );
    expectSbm(
      () => encodeSafetensorsRaw([{ name: 'u', dtype: 'F8' as SafetensorsDtype, shape: [1], values: [1] }]),
      'UNKNOWN_NAME',
      /dtype: expected one of F64, F32/,
    );
    t.dispose();
    const gone = tf.scalar(1);
    gone.dispose();
    expectSbm(() => encodeSafetensors({ gone }), 'INVALID_ARGUMENT', /already been disposed/);
    expect(countTensors()).toBe(before);
  });
});

describe('corrupt files give CORRUPT_CHECKPOINT naming what is wrong', () => {
  const f32 = (vals: number[]): number[] => Array.from(new Uint8Array(new Float32Array(vals).buffer));
  const entry = (name: string, shape: number[], b: number, e: number, dtype = 'F32'): string =>
    `"${name}":{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${b},${e}]}`;

  it('too short / header length past the end / header too large', () => {
    expectSbm(() => decodeSafetensors(new Uint8Array(5)), 'CORRUPT_CHECKPOINT', /expected at least 8 bytes.*got 5/);
    const text = `{${entry('a', [2], 0, 8)}}`;
    expectSbm(
      () => decodeSafetensors(handmade(text, f32([1, 2]), 500)),
      'CORRUPT_CHECKPOINT',
      /header length 500 runs past the end of the file: expected at least 508 bytes, got 70/,
    );
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(4, 1, true); // 2^32
    expectSbm(() => decodeSafetensors(huge), 'CORRUPT_CHECKPOINT', /header length 4294967296 exceeds the limit/);
  });

  it('bad JSON, non-object header, bad metadata', () => {
    expectSbm(() => decodeSafetensors(handmade('{"a":', [])), 'CORRUPT_CHECKPOINT', /not valid JSON/);
    expectSbm(() => decodeSafetensors(handmade('[1,2]   ', [])), 'CORRUPT_CHECKPOINT', /starting with '\{'/);
    expectSbm(
      () => decodeSafetensors(handmade('{"__metadata__":{"k":1}}', [])),
      'CORRUPT_CHECKPOINT',
      /__metadata__.k: expected a string, got 1/,
    );
  });

  it('unknown dtype, bad shape, size mismatch between shape and offsets', () => {
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 0, 8, 'F12')}}`, f32([1, 2]))),
      'CORRUPT_CHECKPOINT',
      /"a": unknown dtype "F12"/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 0, 8, 'F8_E4M3')}}`, f32([1, 2]))),
      'UNSUPPORTED',
      /dtype F8_E4M3 is not supported/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32([1, 2]))),
      'CORRUPT_CHECKPOINT',
      /"a": shape must be an array of non-negative integers/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [3], 0, 8)}}`, f32([1, 2]))),
      'CORRUPT_CHECKPOINT',
      /"a": F32 of shape \[3\] needs 12 bytes, data_offsets \[0, 8\] span 8/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 8, 0)}}`, f32([1, 2]))),
      'CORRUPT_CHECKPOINT',
      /"a": data_offsets must be \[begin, end\] with 0 <= begin <= end/,
    );
  });

  it('overlapping offsets, gaps, truncated data and trailing bytes', () => {
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 0, 8)},${entry('b', [2], 4, 12)}}`, f32([1, 2, 3]))),
      'CORRUPT_CHECKPOINT',
      /"b": data_offsets \[4, 12\] overlaps the previous tensor \(expected begin 8\)/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [1], 4, 8)}}`, f32([1, 2]))),
      'CORRUPT_CHECKPOINT',
      /"a": data_offsets \[4, 8\] leaves a gap/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 0, 8)}}`, f32([1]))),
      'CORRUPT_CHECKPOINT',
      /data buffer holds 4 bytes but the tensors account for 8 \(file truncated\?\)/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('a', [2], 0, 8)}}`, f32([1, 2, 3]))),
      'CORRUPT_CHECKPOINT',
      /data buffer holds 12 bytes but the tensors account for 8 \(trailing bytes\)/,
    );
  });

  it('out-of-range integers and bad booleans', () => {
    const i64 = new Uint8Array(8);
    new DataView(i64.buffer).setUint32(4, 1, true); // 2^32
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('n', [1], 0, 8, 'I64')}}`, i64)),
      'UNSUPPORTED',
      /I64 value 4294967296 at index 0 does not fit in int32/,
    );
    expectSbm(
      () => decodeSafetensors(handmade(`{${entry('f', [1], 0, 1, 'BOOL')}}`, [2])),
      'CORRUPT_CHECKPOINT',
      /BOOL byte 2/,
    );
  });

  it('no tensors are left behind by failed decodes', () => {
    const before = countTensors();
    expect(() =>
      decodeSafetensors(handmade(`{${entry('a', [2], 0, 8)},${entry('b', [2], 4, 12)}}`, f32([1, 2, 3]))),
    ).toThrow();
    expect(countTensors()).toBe(before);
  });

  it('a tensor may be called __proto__ or "0" without breaking the records', () => {
    const bytes = encodeSafetensorsRaw([
      { name: '__proto__', dtype: 'F32', shape: [1], values: [4] },
      { name: '0', dtype: 'U8', shape: [1], values: [9] },
    ]);
    const raw = decodeSafetensorsRaw(bytes);
    expect(Object.keys(raw.tensors).sort()).toEqual(['0', '__proto__']);
    expect(Array.from(raw.tensors['__proto__'].values)).toEqual([4]);
    expect(Array.from(raw.tensors['0'].values)).toEqual([9]);
  });
});

// The reference implementation (python `safetensors`) reading our bytes and writing bytes for us to read.
const python = spawnSync('python3', ['-c', 'import safetensors.numpy, numpy'], { encoding: 'utf8' }).status === 0;
describe.skipIf(!python)(
  'cross-check with python safetensors (skipped where python3 with safetensors and numpy is not importable)',
  () => {
    it('python reads our file and we read python’s', () => {
      const dir = mkdtempSync(join(tmpdir(), 'sbm-st-'));
      try {
        const ours = encodeSafetensorsRaw(
          [
            { name: 'w', dtype: 'F32', shape: [2, 2], values: [1, 2, 3, 4] },
            { name: 'h', dtype: 'F16', shape: [2], values: [0.1, -3] },
            { name: 'i', dtype: 'I64', shape: [1], values: [-5] },
          ],
          { format: 'sbm' },
        );
        writeFileSync(join(dir, 'ours.safetensors'), ours);
        const script = `
import json, numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open
d = load_file(${JSON.stringify(join(dir, 'ours.safetensors'))})
with safe_open(${JSON.stringify(join(dir, 'ours.safetensors'))}, 'np') as f: meta = f.metadata()
print(json.dumps({k: [str(v.dtype), list(v.shape), v.astype(np.float64).ravel().tolist()] for k, v in d.items()} | {'__meta': meta}))
save_file({'a': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': np.array([1, -2], dtype=np.int64), 'c': np.array([0.5], dtype=np.float16)}, ${JSON.stringify(join(dir, 'theirs.safetensors'))}, metadata={'m': 'x'})
`;
        const out = JSON.parse(execFileSync('python3', ['-c', script], { encoding: 'utf8' }));
        expect(out.w).toEqual(['float32', [2, 2], [1, 2, 3, 4]]);
        expect(out.h[0]).toBe('float16');
        expect(out.h[2][1]).toBe(-3);
        expect(out.i).toEqual(['int64', [1], [-5]]);
        expect(out.__meta).toEqual({ format: 'sbm' });
        const theirs = decodeSafetensorsRaw(new Uint8Array(readFileSync(join(dir, 'theirs.safetensors'))));
        expect(Array.from(theirs.tensors.a.values)).toEqual([0, 1, 2, 3, 4, 5]);
        expect(theirs.tensors.a.shape).toEqual([2, 3]);
        expect(Array.from(theirs.tensors.b.values)).toEqual([1, -2]);
        expect(Array.from(theirs.tensors.c.values)).toEqual([0.5]);
        expect(theirs.metadata).toEqual({ m: 'x' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
