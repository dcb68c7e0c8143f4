import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD } from '@sbm/core';
import { ScoreNet, groupNorm, groupNormSwish } from '@sbm/models';
import {
  SIMD_PATHS,
  onBackend,
  relError,
  seeded,
  useWasmTrainingKernels,
  withSimd,
  type GroupNormCase,
} from './helpers';

// relError: max|a − b| / max(1, max|ref|) — relative to the reference's largest entry, floored at 1 for outputs that
// vanish identically (dx and dbias when each group holds one value, H·W = 1 and groups = C). float32 sums over the
// ≤ 3·35·64 terms of these cases carry errors of a few 1e-6 of the scale, well inside 1e-4.
const TOL = 1e-4;

useWasmTrainingKernels();

interface Case extends GroupNormCase {
  act: 'none' | 'swish';
}

// B 1/3, H·W 1 and 5×7, C 1/6/64, groups 1/2/C, with and without bias, both activations; one far from zero mean.
const CASES: Case[] = [
  { b: 1, h: 1, w: 1, c: 1, groups: 1, bias: false, act: 'none' },
  { b: 3, h: 1, w: 1, c: 6, groups: 6, bias: true, act: 'swish' },
  { b: 3, h: 1, w: 1, c: 64, groups: 2, bias: false, act: 'none' },
  { b: 1, h: 5, w: 7, c: 1, groups: 1, bias: true, act: 'swish' },
  { b: 3, h: 5, w: 7, c: 6, groups: 2, bias: true, act: 'none' },
  { b: 3, h: 5, w: 7, c: 6, groups: 6, bias: false, act: 'swish' },
  { b: 1, h: 5, w: 7, c: 64, groups: 64, bias: true, act: 'none' },
  { b: 3, h: 5, w: 7, c: 64, groups: 2, bias: true, act: 'swish' },
  { b: 3, h: 5, w: 7, c: 64, groups: 1, bias: false, act: 'swish' },
  { b: 3, h: 5, w: 7, c: 6, groups: 2, bias: true, act: 'swish', offset: 30 },
];

const label = (k: Case) =>
  `[${k.b}, ${k.h}, ${k.w}, ${k.c}], ${k.groups} groups, ${k.bias ? 'bias' : 'no bias'}, ${k.act}` +
  (k.offset ? `, mean ${k.offset}` : '');

function data(k: Case, seed: number) {
  const shape: [number, number, number, number] = [k.b, k.h, k.w, k.c];
  const x = tf.add(tf.tensor4d(seeded(shape, seed), shape), k.offset ?? 0) as tf.Tensor4D;
  // γ away from 0 and of both signs; β, bias and the loss weights R uniform(−1, 1).
  const gamma = tf.add(tf.mul(tf.tensor1d(seeded([k.c], seed + 1)), 1.5), 0.2) as tf.Tensor1D;
  const beta = tf.tensor1d(seeded([k.c], seed + 2));
  const bias = tf.tensor4d(seeded([k.b, k.c], seed + 3), [k.b, 1, 1, k.c]);
  const R = tf.tensor4d(seeded(shape, seed + 4), shape);
  return { x, gamma, beta, bias, R };
}

const layer = (k: Case) => (k.act === 'swish' ? groupNormSwish : groupNorm);

/** [y, dx, dγ, dβ, (dbias)] of L = Σ layer(x)·R via tf.grads. */
function forwardAndGrads(k: Case) {
  const { x, gamma, beta, bias, R } = data(k, 7 + k.c + k.b);
  const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, bi?: tf.Tensor) =>
    layer(k)(xx as tf.Tensor4D, k.groups, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5, bi);
  const y = f(x, gamma, beta, k.bias ? bias : undefined);
  const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a[0], a[1], a[2], a[3]), R));
  const grads = tf.grads(loss)(k.bias ? [x, gamma, beta, bias] : [x, gamma, beta]);
  return [y, ...grads];
}

describe(`${FUSED_GROUP_NORM} + ${FUSED_GROUP_NORM_GRAD} on wasm match the composite form on cpu`, () => {
  for (const { path, simd } of SIMD_PATHS)
    for (const k of CASES) {
      it(`${path}: forward and tf.grads: ${label(k)}`, async () => {
        const ref = await onBackend('cpu', () => forwardAndGrads(k));
        // onBackend also fails on leaked engine tensors and backend buffers.
        const got = await withSimd(simd, () => onBackend('wasm', () => forwardAndGrads(k)));
        const names = ['y', 'dx', 'dgamma', 'dbeta', 'dbias'];
        expect(got.length).toBe(ref.length);
        for (let i = 0; i < ref.length; i++) {
          expect(relError(got[i], ref[i]), names[i]).toBeLessThanOrEqual(TOL);
        }
      });
    }

  it('under a tape the whole layer is one forward and one backward kernel', async () => {
    await tf.setBackend('wasm');
    const k = CASES[7];
    const { x, gamma, beta, bias, R } = data(k, 3);
    for (const withBias of [true, false]) {
      const prof = await tf.profile(() => {
        const [dx, dg] = tf.grads((a: tf.Tensor, g: tf.Tensor) =>
          tf.sum(
            tf.mul(groupNormSwish(a as tf.Tensor4D, 2, g as tf.Tensor1D, beta, 1e-5, withBias ? bias : undefined), R),
          ),
        )([x, gamma]);
        return [dx, dg];
      });
      // Reshape: the bias as [B, C] and back; Identity: tfjs' copies of the saved inputs; Fill: the zero bias that
      // stands in for none; Multiply/Sum (+ the Fill of the seed gradient): the loss Σ y·R and its gradient.
      const names = prof.kernels.map((kk) => kk.name);
      expect(names.filter((n) => n === FUSED_GROUP_NORM).length).toBe(1);
      expect(names.filter((n) => n === FUSED_GROUP_NORM_GRAD).length).toBe(1);
      const others = new Set(names.filter((n) => !n.startsWith('Sbm')));
      for (const n of others) expect(['Reshape', 'Identity', 'Cast', 'Fill', 'Multiply', 'Sum']).toContain(n);
      tf.dispose(prof.result as tf.Tensor[]);
    }
    tf.dispose([x, gamma, beta, bias, R]);
  });

  it('a second-order gradient (tape on during the backward) takes the composite gradient: right values', async () => {
    await tf.setBackend('wasm');
    const k = CASES[9];
    const L = (act: Case['act'], d: ReturnType<typeof data>) => (a: tf.Tensor) =>
      tf.sum(
        tf.square(
          tf.grad((v: tf.Tensor) =>
            tf.sum(tf.mul(layer({ ...k, act })(v as tf.Tensor4D, k.groups, d.gamma, d.beta, 1e-5, d.bias), d.R)),
          )(a),
        ),
      );
    const second = (act: Case['act']) => () => {
      const d = data(k, 21);
      return tf.grad(L(act, d))(d.x);
    };
    // Without the activation the composite form's second-order gradient on cpu is right: compare with it.
    const refNone = await onBackend('cpu', second('none'));
    const gotNone = await onBackend('wasm', second('none'));
    expect(relError(gotNone[0], refNone[0])).toBeLessThanOrEqual(TOL);
    // With swish the reference is central finite differences: tfjs' own composite is wrong there (Sigmoid saves its
    // output, whose copy lands on the tape before the Sigmoid node, so a second-order backward drops that path).
    // Step h = 1e-2 in float32: truncation h²·|L'''|/6 and rounding ε·|L|/h both stay near 1e-4 for |L| of order
    // 10, hence the bound 2e-3 + 2e-2·|g| (as @sbm/models' gradient checks).
    const [g] = await onBackend('wasm', second('swish'));
    const d = data(k, 21);
    const xv = await d.x.data();
    const at = (i: number, step: number) =>
      tf.tidy(() => {
        const p = Float32Array.from(xv);
        p[i] += step;
        return L('swish', d)(tf.tensor4d(p, d.x.shape)).dataSync()[0];
      });
    for (const i of [0, 17, xv.length - 1]) {
      const fd = (at(i, 1e-2) - at(i, -1e-2)) / 2e-2;
      expect(Math.abs(fd - g[i]), `entry ${i}: fd ${fd} vs ${g[i]}`).toBeLessThanOrEqual(2e-3 + 2e-2 * Math.abs(g[i]));
    }
    tf.dispose(Object.values(d));
  });

  it('DPS / guidance: the input gradient of a ScoreNet score equals the composite one', async () => {
    // The tutorial ScoreNet at 28×28, batch 2: four fused norms in the encoder, three in the decoder.
    const run = () => {
      const model = new ScoreNet({ name: 'scorenet', marginalProbStd: { name: 'tutorial-ve', sigma: 25 } }, 5);
      try {
        const x = tf.tensor4d(seeded([2, 28, 28, 1], 40), [2, 28, 28, 1]);
        const t = tf.tensor1d([0.3, 0.8]);
        const R = tf.tensor4d(seeded([2, 28, 28, 1], 41), [2, 28, 28, 1]);
        const score = model.apply(x, t);
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.apply(v, t), R)))(x);
        return [score, g];
      } finally {
        model.dispose();
      }
    };
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    expect(relError(got[0], ref[0]), 'score').toBeLessThanOrEqual(TOL);
    expect(relError(got[1], ref[1]), 'input gradient').toBeLessThanOrEqual(TOL);
  });

  it('rejects a dy of the wrong shape and an unknown activation, leaving nothing behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([2, 3, 3, 6]);
    const dyBad = tf.zeros([2, 3, 3, 5]);
    const g = tf.ones([6]);
    const b = tf.zeros([6]);
    const ids = tf.backend().numDataIds();
    const before = tf.memory().numTensors;
    expect(() =>
      tf.engine().runKernel(FUSED_GROUP_NORM_GRAD, { dy: dyBad, x, gamma: g, beta: b }, {
        groups: 3,
        eps: 1e-5,
      } as never),
    ).toThrow(/dy must be \[2, 3, 3, 6\], got \[2, 3, 3, 5\]/);
    expect(() =>
      tf.engine().runKernel(FUSED_GROUP_NORM, { x, gamma: g, beta: b }, {
        groups: 3,
        eps: 1e-5,
        activation: 'relu',
      } as never),
    ).toThrow(/activation must be 'none' or 'swish', got 'relu'/);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(ids);
    tf.dispose([x, dyBad, g, b]);
  });
});
