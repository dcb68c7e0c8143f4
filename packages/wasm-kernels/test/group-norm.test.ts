import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD } from '@sbm/core';
import { groupNorm } from '@sbm/models';
import {
  SIMD_PATHS,
  onBackend,
  relError,
  seeded,
  useWasmTrainingKernels,
  withSimd,
  type GroupNormCase,
} from './helpers';

const TOL = 1e-4;

useWasmTrainingKernels();

type Case = GroupNormCase;

// Odd spatial sizes, one group and one channel per group, a bias, and data far from zero mean (E[v²] − μ²).
const CASES: Case[] = [
  { b: 2, h: 5, w: 7, c: 8, groups: 4, bias: true },
  { b: 3, h: 1, w: 1, c: 6, groups: 3, bias: false },
  { b: 1, h: 9, w: 3, c: 5, groups: 1, bias: true },
  { b: 2, h: 4, w: 4, c: 4, groups: 4, bias: true },
  { b: 2, h: 6, w: 5, c: 12, groups: 3, bias: true, offset: 30 },
];

function inputs(k: Case, seed: number) {
  const x = tf.add(tf.tensor4d(seeded([k.b, k.h, k.w, k.c], seed), [k.b, k.h, k.w, k.c]), k.offset ?? 0) as tf.Tensor4D;
  const gamma = tf.tensor1d(seeded([k.c], seed + 1));
  const beta = tf.tensor1d(seeded([k.c], seed + 2));
  const bias = k.bias ? tf.tensor4d(seeded([k.b, k.c], seed + 3), [k.b, 1, 1, k.c]) : undefined;
  return { x, gamma, beta, bias };
}

describe(`${FUSED_GROUP_NORM} (fused group norm, wasm) matches the composite form on cpu`, () => {
  for (const { path, simd } of SIMD_PATHS)
    for (const k of CASES) {
      it(`${path}: [${k.b}, ${k.h}, ${k.w}, ${k.c}], ${k.groups} groups${k.bias ? ', bias' : ''}${k.offset ? `, mean ${k.offset}` : ''}`, async () => {
        const run = () => {
          const { x, gamma, beta, bias } = inputs(k, 11 + k.c);
          return groupNorm(x, k.groups, gamma, beta, 1e-5, bias);
        };
        const [ref] = await onBackend('cpu', run);
        const kernelsBefore = tf.memory().numTensors;
        const [got] = await withSimd(simd, () => onBackend('wasm', run));
        expect(tf.memory().numTensors).toBe(kernelsBefore);
        expect(relError(got, ref)).toBeLessThanOrEqual(TOL);
      });
    }

  it('is the path taken on wasm, outside gradients and inside them', async () => {
    await tf.setBackend('wasm');
    const { x, gamma, beta, bias } = inputs(CASES[0], 5);
    const prof = await tf.profile(() => groupNorm(x, 4, gamma, beta, 1e-5, bias));
    // (the bias is reshaped to [B, C] first: a free view)
    expect(prof.kernels.map((kk) => kk.name).filter((n) => n !== 'Reshape')).toEqual([FUSED_GROUP_NORM]);
    // Under a gradient tape too (group-norm-grad.test.ts checks the values); no composite kernels run.
    const grad = await tf.profile(() =>
      tf.grad((v: tf.Tensor) => tf.sum(tf.square(groupNorm(v as tf.Tensor4D, 4, gamma, beta, 1e-5, bias))))(x),
    );
    const names = grad.kernels.map((kk) => kk.name);
    expect(names).toContain(FUSED_GROUP_NORM);
    expect(names).toContain(FUSED_GROUP_NORM_GRAD);
    for (const n of ['Mean', 'Sub', 'Rsqrt', 'SquaredDifference']) expect(names).not.toContain(n);
    tf.dispose([x, gamma, beta, bias!, grad.result as tf.Tensor, prof.result as tf.Tensor]);
  });

  it('rejects a bias of the wrong shape and groups that do not divide C', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([2, 3, 3, 6]);
    const g = tf.ones([6]);
    const b = tf.zeros([6]);
    const before = tf.memory().numTensors;
    expect(() =>
      tf.engine().runKernel(FUSED_GROUP_NORM, { x, gamma: g, beta: b, bias: tf.zeros([2, 5]) }, {
        groups: 3,
        eps: 1e-5,
      } as never),
    ).toThrow(/bias must be \[2, 6\]/);
    expect(() =>
      tf.engine().runKernel(FUSED_GROUP_NORM, { x, gamma: g, beta: b }, { groups: 4, eps: 1e-5 } as never),
    ).toThrow(/groups 4 must divide/);
    tf.dispose([x, g, b]);
    // The rejected bias tensor above was created inside expect: the only leftover may be it.
    expect(tf.memory().numTensors - before).toBeLessThanOrEqual(1);
  });
});
