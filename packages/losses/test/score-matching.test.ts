import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SbmError, withLeakCheck } from '@sbm/core';
import { createSde, type ScoreFn } from '@sbm/sde';
import { GaussianMixture, symmetricEigen } from '@sbm/gaussian-mixture';
import { describeWithBackends } from '@sbm/test-harness';
import {
  implicitScoreMatchingLoss,
  implicitScoreMatchingLossPerSample,
  slicedScoreMatchingLoss,
  slicedScoreMatchingLossPerSample,
  type Projection,
} from '@sbm/losses';
import { meanSe, traceInvCov } from './stats';

// For p = N(μ, Σ) and the true score s = −Σ⁻¹(x − μ): ∇ₓs = −Σ⁻¹, so the ISM objective per sample is
// ½‖Σ⁻¹(x − μ)‖² − tr Σ⁻¹ with expectation ½ tr Σ⁻¹ − tr Σ⁻¹ = −½ tr Σ⁻¹ = −½ E‖∇log p‖² (Fisher information).
// SSM has the same expectation when E[vvᵀ] = I. Tolerance: 4 standard errors of the sample mean.
const Z = 4;
const cov = [
  [1.0, 0.3, -0.2],
  [0.3, 0.5, 0.1],
  [-0.2, 0.1, 2.0],
];
const mu = [1, -2, 0.5];
const gauss = new GaussianMixture({ weights: [1], means: [mu], covariances: [cov] });
const trInv = traceInvCov(cov, 1, 0);
const score: ScoreFn = (x) => gauss.score(x);

function invCov(): number[][] {
  const { values, vectors } = symmetricEigen(cov);
  return cov.map((_, i) => cov.map((__, j) => values.reduce((s, l, k) => s + (vectors[i][k] * vectors[j][k]) / l, 0)));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('implicit score matching (exact trace)', () => {
  it('E[½‖s‖² + tr ∇s] = −½ tr Σ⁻¹ at the true score', async () => {
    const x = gauss.sample(4000, 1);
    const r = meanSe(await withLeakCheck(() => implicitScoreMatchingLossPerSample(score, x, 0)));
    expect(Math.abs(r.mean + 0.5 * trInv)).toBeLessThan(Z * r.se);
    x.dispose();
  });

  it('a shifted score s + δc costs exactly ½δ²‖c‖² more in expectation (E s = 0)', () => {
    const x = gauss.sample(4000, 2);
    const base = implicitScoreMatchingLossPerSample(score, x, 0);
    const c = [0.3, -0.4, 1.2];
    const cn2 = c.reduce((s, v) => s + v * v, 0);
    for (const delta of [0.1, 0.5]) {
      const shifted: ScoreFn = (xx) => tf.add(score(xx, tf.zeros([xx.shape[0]])), tf.mul(tf.tensor1d(c), delta));
      const d = meanSe(tf.sub(implicitScoreMatchingLossPerSample(shifted, x, 0), base));
      expect(Math.abs(d.mean - 0.5 * delta * delta * cn2)).toBeLessThan(Z * d.se + 1e-5);
    }
    tf.dispose([x, base]);
  });

  it('with an SDE at fixed t: σ² times −½ tr Σ_t⁻¹', () => {
    for (const name of ['vp', 've']) {
      const sde = createSde(name);
      const oracle = gauss.perturbed(sde).scoreFn;
      const x = gauss.sample(3000, 3);
      const t = 0.3;
      const r = meanSe(implicitScoreMatchingLossPerSample(oracle, x, 5, { sde, t }));
      const s = sde.std(t);
      const expected = -0.5 * s * s * traceInvCov(cov, sde.alpha(t), s);
      expect(Math.abs(r.mean - expected)).toBeLessThan(Z * r.se);
      x.dispose();
    }
  });

  it('refuses D > maxDim', () => {
    const x = tf.zeros([2, 8]);
    expect(() => implicitScoreMatchingLoss((xx) => xx, x, 0, { maxDim: 4 })).toThrow(/^x: exact implicit/);
    x.dispose();
  });
});

describe('sliced score matching', () => {
  const cases: [Projection, boolean][] = [
    ['gaussian', true],
    ['gaussian', false],
    ['rademacher', false],
    ['rademacher', true],
    ['sphere', false],
  ];
  for (const [projection, varianceReduction] of cases) {
    it(`${projection}${varianceReduction ? ' (VR)' : ''}: expectation −½ tr Σ⁻¹, and equal to ISM's (paired)`, async () => {
      const x = gauss.sample(4000, 4);
      const ssm = await withLeakCheck(() =>
        slicedScoreMatchingLossPerSample(score, x, 12, { projection, varianceReduction }),
      );
      const ism = implicitScoreMatchingLossPerSample(score, x, 0);
      const d = meanSe(tf.sub(ssm, ism));
      expect(Math.abs(d.mean)).toBeLessThan(Z * d.se);
      const r = meanSe(ssm);
      expect(Math.abs(r.mean + 0.5 * trInv)).toBeLessThan(Z * r.se);
      tf.dispose([x, ism]);
    });
  }

  it('more projections reduce the variance of the estimate around ISM (4 vs 1)', () => {
    const x = gauss.sample(2000, 5);
    const ism = implicitScoreMatchingLossPerSample(score, x, 0);
    const one = meanSe(tf.sub(slicedScoreMatchingLossPerSample(score, x, 3, { projection: 'rademacher' }), ism));
    const four = meanSe(
      tf.sub(slicedScoreMatchingLossPerSample(score, x, 3, { projection: 'rademacher', nProjections: 4 }), ism),
    );
    // The per-sample variance of the projection noise falls as 1/M; allow for sampling error in the ratio.
    expect(four.se).toBeLessThan(0.75 * one.se);
    tf.dispose([x, ism]);
  });

  it('is seeded and rejects bad options', () => {
    const x = gauss.sample(16, 6);
    const a = slicedScoreMatchingLoss(score, x, 1).dataSync()[0];
    const b = slicedScoreMatchingLoss(score, x, 1).dataSync()[0];
    const c = slicedScoreMatchingLoss(score, x, 2, { varianceReduction: false }).dataSync()[0];
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(() => slicedScoreMatchingLoss(score, x, 1, { projection: 'cauchy' as never })).toThrow(/^projection/);
    expect(() => slicedScoreMatchingLoss(score, x, 1, { nProjections: 0 })).toThrow(/^nProjections/);
    expect(() => slicedScoreMatchingLoss(score, x, 1, { projections: tf.zeros([1, 3, 3]) })).toThrow(/^projections/);
    try {
      slicedScoreMatchingLoss(score, x, 1, { sde: createSde('ve'), eps: -1 });
    } catch (e) {
      expect((e as SbmError).code).toBe('INVALID_ARGUMENT');
      expect((e as SbmError).message).toMatch(/^eps/);
    }
    x.dispose();
  });
});

describe('score matching gradients through the Jacobian term (linear score s(x) = W x + b)', () => {
  // Per sample with r = Wx + b: ½(vᵀr)² + vᵀWv has ∂/∂W = (vᵀr) v xᵀ + v vᵀ and ∂/∂b = (vᵀr) v;
  // the VR form ½‖r‖² + vᵀWv has ∂/∂W = r xᵀ + v vᵀ, ∂/∂b = r; ISM ½‖r‖² + tr W has ∂/∂W = r xᵀ + I.
  const D = 3;
  const B = 5;
  const W0 = [
    [-0.7, 0.2, 0.1],
    [0.3, -1.1, 0.0],
    [0.05, 0.4, -0.5],
  ];
  const b0 = [0.1, -0.2, 0.3];
  const xs = [
    [0.5, -1, 2],
    [1.5, 0.2, -0.3],
    [-0.7, 0.8, 0.1],
    [0, 1, -1],
    [2, -0.5, 0.4],
  ];
  const vs = [
    [1, -1, 1],
    [-1, -1, 1],
    [0.3, 1.2, -0.8],
    [1, 1, 1],
    [-0.5, 0.2, 2],
  ];

  function closedForm(kind: 'plain' | 'vr' | 'ism'): { gW: number[][]; gb: number[] } {
    const gW = W0.map((row) => row.map(() => 0));
    const gb = b0.map(() => 0);
    for (let n = 0; n < B; n++) {
      const x = xs[n];
      const v = vs[n];
      const r = W0.map((row, i) => row.reduce((s, w, j) => s + w * x[j], 0) + b0[i]);
      const vr = v.reduce((s, vi, i) => s + vi * r[i], 0);
      for (let i = 0; i < D; i++) {
        const ri = kind === 'plain' ? vr * v[i] : r[i];
        gb[i] += ri / B;
        for (let j = 0; j < D; j++) {
          const second = kind === 'ism' ? (i === j ? 1 : 0) : v[i] * v[j];
          gW[i][j] += (ri * x[j] + second) / B;
        }
      }
    }
    return { gW, gb };
  }

  function run(loss: (s: ScoreFn, x: tf.Tensor) => tf.Scalar, kind: 'plain' | 'vr' | 'ism'): void {
    const W = tf.variable(tf.tensor2d(W0));
    const b = tf.variable(tf.tensor1d(b0));
    const s: ScoreFn = (x) => tf.add(tf.matMul(x as tf.Tensor2D, W, false, true), b);
    const x = tf.tensor2d(xs);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => loss(s, x), [W, b]);
    const gW = grads[W.name].arraySync() as number[][];
    const gb = grads[b.name].arraySync() as number[];
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    const want = closedForm(kind);
    for (let i = 0; i < D; i++) {
      expect(gb[i]).toBeCloseTo(want.gb[i], 4);
      for (let j = 0; j < D; j++) expect(gW[i][j]).toBeCloseTo(want.gW[i][j], 4);
    }
    // The Jacobian term contributes: without it the diagonal of ∂/∂W would differ by v_i² (or 1 for ISM).
    expect(gW.flat().some((g) => Math.abs(g) > 1e-3)).toBe(true);
    tf.dispose([W, b, x]);
  }

  it('SSM with explicit projections: ∂/∂W and ∂/∂b match the closed form', () => {
    const v = tf.tensor3d([vs]);
    run((s, x) => slicedScoreMatchingLoss(s, x, 0, { projections: v, varianceReduction: false }), 'plain');
    run((s, x) => slicedScoreMatchingLoss(s, x, 0, { projections: v, varianceReduction: true }), 'vr');
    v.dispose();
  });

  it('ISM: ∂/∂W = mean (Wx + b) xᵀ + I', () => {
    run((s, x) => implicitScoreMatchingLoss(s, x, 0), 'ism');
  });
});

describeWithBackends('score matching per-sample values (all backends)', () => {
  it('ISM per sample equals ½‖Σ⁻¹(x − μ)‖² − tr Σ⁻¹ computed in float64', () => {
    const P = invCov();
    const xs = [
      [0.5, -1, 2],
      [1.5, -2.2, -0.3],
      [-0.7, 0.8, 0.1],
    ];
    const x = tf.tensor2d(xs);
    const got = implicitScoreMatchingLossPerSample(score, x, 0).dataSync();
    xs.forEach((row, n) => {
      const y = row.map((v, i) => v - mu[i]);
      const py = P.map((r) => r.reduce((s, p, j) => s + p * y[j], 0));
      const want = 0.5 * py.reduce((s, v) => s + v * v, 0) - trInv;
      expect(got[n]).toBeCloseTo(want, 3);
    });
    x.dispose();
  });
});
