import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { WASM_TRAINING_KERNELS, _internals, registerWasmTrainingKernels } from '@sbm/wasm-kernels';
import { SIMD_PATHS, onBackend, relError, seeded, withSimd } from './helpers';

const TOL = 1e-4;
type Pad = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('registerWasmTrainingKernels', () => {
  it('registers the missing kernels for wasm, idempotently', () => {
    const names = registerWasmTrainingKernels();
    expect(names.sort()).toEqual(
      [
        'BatchMatMul',
        'Concat',
        'Conv2DBackpropFilter',
        'Conv2DBackpropInput',
        'DepthwiseConv2dNativeBackpropFilter',
        'DepthwiseConv2dNativeBackpropInput',
        'SbmAdam',
        'SbmEma',
        'SbmGroupNorm',
        'SbmGroupNormGrad',
        'SplitV',
        'UnsortedSegmentSum',
      ].sort(),
    );
    const funcs = names.map((n) => tf.getKernel(n, 'wasm')?.kernelFunc);
    expect(registerWasmTrainingKernels().sort()).toEqual(names);
    expect(names.map((n) => tf.getKernel(n, 'wasm')?.kernelFunc)).toEqual(funcs);
    expect([...WASM_TRAINING_KERNELS].sort()).toEqual(names);
    const registered = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
    for (const n of names) expect(registered.has(n)).toBe(true);
  });
});

interface ConvCase {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  stride: number | [number, number];
  pad: Pad;
}

const convCases: ConvCase[] = [
  // ScoreNet's first conv and last transposed conv in small (C = 1, K = 9: the SIMD module's direct filter
  // gradient), with CO = 5 and 9 (lane tails), 'same' padding and stride 2 through that path too.
  { b: 3, h: 10, w: 9, ci: 1, co: 5, kh: 3, kw: 3, stride: 1, pad: 'valid' },
  { b: 2, h: 9, w: 8, ci: 1, co: 6, kh: 3, kw: 3, stride: 1, pad: 'same' },
  { b: 2, h: 7, w: 9, ci: 2, co: 9, kh: 2, kw: 3, stride: 2, pad: 'same' },
  { b: 2, h: 7, w: 7, ci: 3, co: 4, kh: 3, kw: 3, stride: 1, pad: 'same' },
  { b: 2, h: 8, w: 8, ci: 3, co: 5, kh: 3, kw: 3, stride: 2, pad: 'same' },
  { b: 1, h: 9, w: 7, ci: 2, co: 3, kh: 3, kw: 3, stride: 2, pad: 'valid' },
  { b: 3, h: 6, w: 5, ci: 4, co: 2, kh: 1, kw: 1, stride: 1, pad: 'valid' },
  { b: 2, h: 11, w: 10, ci: 3, co: 4, kh: 5, kw: 3, stride: 3, pad: 'same' },
  {
    b: 2,
    h: 9,
    w: 9,
    ci: 2,
    co: 3,
    kh: 3,
    kw: 3,
    stride: 2,
    pad: [
      [0, 0],
      [1, 2],
      [2, 0],
      [0, 0],
    ],
  },
  { b: 2, h: 5, w: 6, ci: 3, co: 2, kh: 4, kw: 2, stride: 2, pad: 'same' },
  { b: 2, h: 10, w: 10, ci: 1, co: 3, kh: 3, kw: 3, stride: 1, pad: 'valid' },
  { b: 2, h: 12, w: 11, ci: 3, co: 4, kh: 2, kw: 2, stride: 3, pad: 'valid' },
  { b: 2, h: 9, w: 12, ci: 3, co: 2, kh: 3, kw: 3, stride: [1, 2], pad: 'same' },
  { b: 3, h: 6, w: 7, ci: 16, co: 5, kh: 3, kw: 3, stride: 1, pad: 'same' }, // auto picks the phase conv
  // Ci a multiple of 4 and rows of ≥ 4 taps: the 4-way unrolled col2im adds and im2col copies, with remainders.
  { b: 2, h: 13, w: 11, ci: 8, co: 6, kh: 3, kw: 3, stride: 2, pad: 'valid' },
  { b: 2, h: 15, w: 17, ci: 4, co: 3, kh: 3, kw: 3, stride: 2, pad: 'same' },
  { b: 1, h: 12, w: 14, ci: 12, co: 5, kh: 3, kw: 3, stride: 1, pad: 'valid' }, // rows < 16: strided im2col at s1
  {
    b: 2,
    h: 14,
    w: 13,
    ci: 6,
    co: 4,
    kh: 3,
    kw: 3,
    stride: 2,
    pad: [
      [0, 0],
      [2, 1],
      [1, 2],
      [0, 0],
    ],
  },
  { b: 2, h: 4, w: 20, ci: 3, co: 2, kh: 3, kw: 3, stride: 1, pad: 'same' }, // rows ≥ 16: memmove im2col
  {
    b: 2,
    h: 5,
    w: 19,
    ci: 2,
    co: 3,
    kh: 2,
    kw: 4,
    stride: 1,
    pad: [
      [0, 0],
      [1, 0],
      [0, 3],
      [0, 0],
    ],
  },
];

const VARIANTS = [
  { name: 'auto', strategy: 'auto' as const, maxCol: 1 << 24 },
  { name: 'gemm', strategy: 'gemm' as const, maxCol: 1 << 24 },
  { name: 'phases', strategy: 'phases' as const, maxCol: 1 << 24 },
  { name: 'chunked', strategy: 'auto' as const, maxCol: 64 },
  // Without the SIMD module: the few-input-channel filter gradient goes through im2col + GEMM too.
  { name: 'no SIMD module', strategy: 'auto' as const, maxCol: 1 << 24, simd: false },
];

function label(c: ConvCase): string {
  return `x[${c.b},${c.h},${c.w},${c.ci}] k${c.kh}x${c.kw} →${c.co} s${String(c.stride)} ${JSON.stringify(c.pad)}`;
}

describe('conv2d gradients match the cpu backend', () => {
  it.each(convCases)('$#: conv2d %s', async (c) => {
    const xs = [c.b, c.h, c.w, c.ci];
    const ws = [c.kh, c.kw, c.ci, c.co];
    const x0 = seeded(xs, 1);
    const w0 = seeded(ws, 2);
    const run = () => {
      const x = tf.tensor4d(x0, xs as [number, number, number, number]);
      const w = tf.tensor4d(w0, ws as [number, number, number, number]);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const g = tf.tensor(seeded(y.shape, 3), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
        tf
          .conv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad)
          .mul(g)
          .sum(),
      )([x, w]);
      return [y, dx, dw];
    };
    const ref = await onBackend('cpu', run);
    // Both Conv2DBackpropInput algorithms, and the batch-chunked filter gradient (tiny im2col limit).
    for (const v of VARIANTS) {
      _internals.setBackpropInputStrategy(v.strategy);
      const oldMax = _internals.setMaxColFloats(v.maxCol);
      try {
        const got = await withSimd(v.simd ?? true, () => onBackend('wasm', run));
        for (let i = 0; i < 3; i++) {
          expect(relError(got[i], ref[i]), `${label(c)} ${v.name} output ${i}`).toBeLessThan(TOL);
        }
      } finally {
        _internals.setBackpropInputStrategy('auto');
        _internals.setMaxColFloats(oldMax);
      }
    }
  });

  it.each([
    { b: 2, h: 4, w: 4, ci: 5, co: 3, k: 3, stride: 2, pad: 'same' as Pad, out: [2, 8, 8, 3] },
    { b: 2, h: 5, w: 5, ci: 6, co: 2, k: 3, stride: 2, pad: 'valid' as Pad, out: [2, 11, 11, 2] },
    { b: 2, h: 5, w: 5, ci: 4, co: 3, k: 3, stride: 2, pad: 'valid' as Pad, out: [2, 12, 12, 3] }, // output_padding 1
    { b: 1, h: 6, w: 6, ci: 4, co: 1, k: 3, stride: 1, pad: 'valid' as Pad, out: [1, 8, 8, 1] },
  ])('conv2dTranspose $b×$h×$w×$ci → $out', async (c) => {
    const xs = [c.b, c.h, c.w, c.ci];
    const ws = [c.k, c.k, c.co, c.ci];
    const x0 = seeded(xs, 4);
    const w0 = seeded(ws, 5);
    const out = c.out as [number, number, number, number];
    const run = () => {
      const x = tf.tensor4d(x0, xs as [number, number, number, number]);
      const w = tf.tensor4d(w0, ws as [number, number, number, number]);
      const y = tf.conv2dTranspose(x, w, out, c.stride, c.pad);
      const g = tf.tensor(seeded(y.shape, 6), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
        tf
          .conv2dTranspose(a as tf.Tensor4D, f as tf.Tensor4D, out, c.stride, c.pad)
          .mul(g)
          .sum(),
      )([x, w]);
      return [y, dx, dw];
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    for (let i = 0; i < 3; i++) expect(relError(got[i], ref[i]), `output ${i}`).toBeLessThan(TOL);
  });

  it('rejects NCHW with an error naming the data format', async () => {
    await tf.setBackend('wasm');
    const dy = tf.zeros([1, 2, 3, 3]);
    const x = tf.zeros([1, 2, 3, 3]);
    expect(() =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: 1,
        pad: 'same',
        dataFormat: 'NCHW',
        filterShape: [1, 1, 2, 2],
      } as never),
    ).toThrow(/NHWC/);
    tf.dispose([dy, x]);
  });
});

describe('depthwise conv gradients match the cpu backend', () => {
  it.each([
    { b: 2, h: 7, w: 7, ci: 3, m: 2, k: 3, stride: 1, pad: 'same' as Pad },
    { b: 2, h: 9, w: 8, ci: 4, m: 1, k: 3, stride: 2, pad: 'valid' as Pad },
    { b: 1, h: 6, w: 6, ci: 2, m: 3, k: 2, stride: 2, pad: 'same' as Pad },
  ])('depthwiseConv2d x[$b,$h,$w,$ci]×$m k$k s$stride $pad', async (c) => {
    const xs = [c.b, c.h, c.w, c.ci];
    const ws = [c.k, c.k, c.ci, c.m];
    const x0 = seeded(xs, 7);
    const w0 = seeded(ws, 8);
    const run = () => {
      const x = tf.tensor4d(x0, xs as [number, number, number, number]);
      const w = tf.tensor4d(w0, ws as [number, number, number, number]);
      const y = tf.depthwiseConv2d(x, w, c.stride, c.pad);
      const g = tf.tensor(seeded(y.shape, 9), y.shape);
      return tf.grads((a: tf.Tensor, f: tf.Tensor) =>
        tf
          .depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.stride, c.pad)
          .mul(g)
          .sum(),
      )([x, w]);
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    for (let i = 0; i < 2; i++) expect(relError(got[i], ref[i]), `gradient ${i}`).toBeLessThan(TOL);
  });

  // tfjs refuses gradients of dilated convs and the cpu backprop kernels ignore `dilations`, so the reference
  // for dilation 2 is the undilated kernel applied with the filter spread out by zeros ((k−1)·2+1 taps).
  it('dilation 2 equals a zero-spread filter (both backprop kernels)', async () => {
    const [b, h, w, ci, m, k, d] = [2, 9, 9, 3, 2, 3, 2];
    const ks = (k - 1) * d + 1;
    const x0 = seeded([b, h, w, ci], 10);
    const w0 = seeded([k, k, ci, m], 11);
    const spread = new Float32Array(ks * ks * ci * m);
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++)
        for (let c = 0; c < ci * m; c++) spread[(i * d * ks + j * d) * ci * m + c] = w0[(i * k + j) * ci * m + c];
    const oh = h - ks + 1;
    const dy0 = seeded([b, oh, oh, ci * m], 12);
    const kernels = (filter: Float32Array, fk: number, dil: number) => () => {
      const x = tf.tensor4d(x0, [b, h, w, ci]);
      const f = tf.tensor4d(filter, [fk, fk, ci, m]);
      const dy = tf.tensor4d(dy0, [b, oh, oh, ci * m]);
      const attrs = { strides: [1, 1], dilations: [dil, dil], pad: 'valid' };
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, {
        ...attrs,
        inputShape: [b, h, w, ci],
      } as never) as tf.Tensor;
      const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, {
        ...attrs,
        filterShape: [fk, fk, ci, m],
      } as never) as tf.Tensor;
      return [dx, dw];
    };
    const [dxRef, dwSpread] = await onBackend('cpu', kernels(spread, ks, 1));
    const [dx, dw] = await onBackend('wasm', kernels(w0, k, d));
    expect(relError(dx, dxRef)).toBeLessThan(TOL);
    const dwRef = new Float32Array(k * k * ci * m);
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++)
        for (let c = 0; c < ci * m; c++) dwRef[(i * k + j) * ci * m + c] = dwSpread[(i * d * ks + j * d) * ci * m + c];
    expect(relError(dw, dwRef)).toBeLessThan(TOL);
  });
});

describe('UnsortedSegmentSum (gather gradient) matches the cpu backend', () => {
  it('gradient of gather with repeated indices', async () => {
    const t0 = seeded([6, 5], 13);
    const run = () => {
      const t = tf.tensor2d(t0, [6, 5]);
      const idx = tf.tensor1d([0, 3, 3, 5, 0, 0, 2], 'int32');
      const g = tf.tensor(seeded([7, 5], 14), [7, 5]);
      return tf.grads((a: tf.Tensor) => tf.gather(a, idx).mul(g).sum())([t]);
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    expect(relError(got[0], ref[0])).toBeLessThan(TOL);
  });

  it('ids out of range are dropped; int32 data (closed form)', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const xi = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const ids = tf.tensor1d([0, 4, 2, -1], 'int32');
    const idi = tf.tensor1d([2, 2, 0], 'int32');
    const a = tf.unsortedSegmentSum(x, ids, 3);
    const b = tf.unsortedSegmentSum(xi, idi, 3);
    expect(b.dtype).toBe('int32');
    expect(Array.from(a.dataSync())).toEqual([1, 2, 0, 0, 5, 6]);
    expect(Array.from(b.dataSync())).toEqual([5, 6, 0, 0, 4, 6]);
    tf.dispose([x, xi, ids, idi, a, b]);
  });
});

describe('BatchMatMul with transposed operands matches the cpu backend', () => {
  it.each([
    { a: [7, 5], b: [5, 6], ta: false, tb: false },
    { a: [5, 7], b: [5, 6], ta: true, tb: false },
    { a: [7, 5], b: [6, 5], ta: false, tb: true },
    { a: [5, 7], b: [6, 5], ta: true, tb: true },
    { a: [1, 5, 7], b: [1, 6, 5], ta: true, tb: true },
    { a: [3, 5, 7], b: [3, 5, 4], ta: true, tb: false }, // batched: the backend's own path
  ])('a$a b$b transposeA=$ta transposeB=$tb', async (c) => {
    const a0 = seeded(c.a, 20);
    const b0 = seeded(c.b, 21);
    const run = () => {
      const a = tf.tensor(a0, c.a);
      const b = tf.tensor(b0, c.b);
      const y = tf.matMul(a, b, c.ta, c.tb);
      const g = tf.tensor(seeded(y.shape, 22), y.shape);
      const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, c.ta, c.tb).mul(g).sum())([a, b]);
      return [y, da, db];
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    for (let i = 0; i < 3; i++) expect(relError(got[i], ref[i]), `output ${i}`).toBeLessThan(TOL);
  });
});

describe('SplitV (one pass; the gradient of concat)', () => {
  // Odd shapes and every axis: channel splits of NHWC rows shorter and longer than the loop / set threshold (256),
  // a split of the outer axis, sizes with −1, a count of equal parts, int32, and concat's gradient through a tape.
  const cases: { shape: number[]; split: number | number[]; axis: number }[] = [
    { shape: [3, 5, 7, 24], split: [16, 8], axis: 3 },
    { shape: [2, 3, 5, 300], split: [256, -1], axis: -1 },
    { shape: [4, 6, 5, 9], split: 3, axis: 3 },
    { shape: [5, 4, 3, 2], split: [1, 3, 1], axis: 0 },
    { shape: [2, 7, 3, 5], split: [2, 5], axis: 1 },
    { shape: [6, 11], split: [1, 4, 6], axis: 1 },
    { shape: [13], split: [6, 7], axis: 0 },
  ];
  for (const { path, simd } of SIMD_PATHS)
    for (const { shape, split, axis } of cases) {
      it(`${path}: [${shape.join(', ')}] split ${JSON.stringify(split)} on axis ${axis}: exactly the cpu backend's parts`, async () => {
        const values = seeded(shape, 7);
        const run = () => tf.split(tf.tensor(values, shape), split, axis);
        const ref = await onBackend('cpu', run);
        const got = await withSimd(simd, () => onBackend('wasm', run));
        expect(got).toHaveLength(ref.length);
        got.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(ref[i])));
      });
    }

  it('int32 parts are exact; bool goes to the backend kernel', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor3d(
      Array.from({ length: 2 * 3 * 10 }, (_, i) => i - 20),
      [2, 3, 10],
      'int32',
    );
    const [a, b] = tf.split(x, [3, 7], 2);
    expect(a.dtype).toBe('int32');
    expect(await a.array()).toEqual(
      Array.from({ length: 2 }, (_, i) =>
        Array.from({ length: 3 }, (__, j) => Array.from({ length: 3 }, (___, k) => (i * 3 + j) * 10 + k - 20)),
      ),
    );
    expect((await b.data())[0]).toBe(3 - 20);
    const m = tf.tensor2d([true, false, true, true], [2, 2], 'bool');
    const [m0, m1] = tf.split(m, 2, 1);
    expect(Array.from(await m0.data())).toEqual([1, 1]);
    expect(Array.from(await m1.data())).toEqual([0, 1]);
    tf.dispose([x, a, b, m, m0, m1]);
  });

  it("concat's gradient (a decoder skip connection) matches the cpu backend", async () => {
    const a0 = seeded([2, 5, 5, 12], 3);
    const b0 = seeded([2, 5, 5, 20], 4);
    const w0 = seeded([2, 5, 5, 32], 5);
    const run = () => {
      const w = tf.tensor4d(w0, [2, 5, 5, 32]);
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.concat([a, b], 3), w));
      return tf.grads(f)([tf.tensor4d(a0, [2, 5, 5, 12]), tf.tensor4d(b0, [2, 5, 5, 20])]);
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    expect(relError(got[0], ref[0])).toBe(0);
    expect(relError(got[1], ref[1])).toBe(0);
    // d/da of Σ concat(a, b)·w is w's first 12 channels.
    expect(got[0][0]).toBe(w0[0]);
    expect(got[1][0]).toBe(w0[12]);
  });
});

describe('Concat (strided row copies on the SIMD module)', () => {
  // Every axis, inputs of unequal widths (lane tails), three inputs, an empty input among them, int32 bits.
  const cases: { shapes: number[][]; axis: number }[] = [
    {
      shapes: [
        [3, 5, 7, 24],
        [3, 5, 7, 8],
      ],
      axis: 3,
    },
    {
      shapes: [
        [2, 3, 5, 3],
        [2, 3, 5, 1],
        [2, 3, 5, 6],
      ],
      axis: -1,
    },
    {
      shapes: [
        [2, 4, 3],
        [2, 0, 3],
        [2, 5, 3],
      ],
      axis: 1,
    },
    {
      shapes: [
        [1, 6],
        [4, 6],
      ],
      axis: 0,
    },
    { shapes: [[7], [5]], axis: 0 },
  ];
  for (const { path, simd } of SIMD_PATHS) {
    for (const { shapes, axis } of cases) {
      it(`${path}: ${shapes.map((sh) => `[${sh.join(', ')}]`).join(' + ')} on axis ${axis}: the cpu backend's result`, async () => {
        const run = () =>
          tf.concat(
            shapes.map((sh, i) => tf.tensor(seeded(sh, 20 + i), sh)),
            axis,
          );
        const [ref] = await onBackend('cpu', run);
        const [got] = await withSimd(simd, () => onBackend('wasm', run));
        expect(Array.from(got)).toEqual(Array.from(ref));
      });
    }
  }

  it('int32 values are copied exactly; bool and a single non-empty input go to the backend kernel', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor2d([1, -2, 2147483647, -2147483648], [2, 2], 'int32');
    const b = tf.tensor2d([7, 8], [2, 1], 'int32');
    const c = tf.concat([a, b], 1);
    expect(c.dtype).toBe('int32');
    expect(await c.array()).toEqual([
      [1, -2, 7],
      [2147483647, -2147483648, 8],
    ]);
    const m = tf.concat([tf.tensor1d([true, false], 'bool'), tf.tensor1d([true], 'bool')]);
    expect(Array.from(await m.data())).toEqual([1, 0, 1]);
    const e = tf.concat([tf.zeros([0, 3]), tf.ones([2, 3])], 0);
    expect(Array.from(await e.data())).toEqual([1, 1, 1, 1, 1, 1]);
    tf.dispose([a, b, c, m, e]);
  });
});
