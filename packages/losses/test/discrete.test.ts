import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SbmError, withLeakCheck } from '@sbm/core';
import { VeSde, VpSde, createSde } from '@sbm/sde';
import { GaussianMixture } from '@sbm/gaussian-mixture';
import {
  ddpmAlphasCumprod,
  ddpmLoss,
  ddpmLossPerSample,
  smldLoss,
  smldLossPerSample,
  type EpsilonModel,
  type NoiseConditionalScoreModel,
} from '@sbm/losses';
import { meanSe, traceInvCov } from './stats';

// Same closed form as dsm.test.ts: at the true score of N(aμ, a²Σ + b²I), E‖b s + z‖² = D − b² tr((a²Σ + b²I)⁻¹).
// Averaging over a uniformly drawn level is the plain mean over the N grid points. Tolerance: 4 standard errors.
const Z = 4;
const cov = [
  [0.8, 0.2],
  [0.2, 0.4],
];
const mu = [1.5, -0.5];
const gauss = new GaussianMixture({ weights: [1], means: [mu], covariances: [cov] });

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('smldLoss', () => {
  const sde = new VeSde({ N: 100 });
  // The exact score of the data convolved with N(0, σ_i²): the VE marginal at the time where σ(t) = σ_i.
  const oracle = gauss.perturbed(sde);
  const model: NoiseConditionalScoreModel = (x, _sigma, index) =>
    oracle.score(x, tf.div(index, sde.N - 1) as tf.Tensor1D);

  it('at the true score its mean is the grid average of ½(D − σ_i² tr((Σ + σ_i²)⁻¹))', async () => {
    const x0 = gauss.sample(4000, 1);
    const r = meanSe(await withLeakCheck(() => smldLossPerSample(model, x0, sde, 3)));
    let expected = 0;
    for (let i = 0; i < sde.N; i++) {
      const s = sde.discreteSigma(i);
      expected += 0.5 * (2 - s * s * traceInvCov(cov, 1, s));
    }
    expected /= sde.N;
    expect(Math.abs(r.mean - expected)).toBeLessThan(Z * r.se);
    x0.dispose();
  });

  it('gives the model σ_i = discreteSigma(i), and a perturbed score costs more', () => {
    const x0 = gauss.sample(512, 2);
    let seen = 0;
    const spy: NoiseConditionalScoreModel = (x, sigma, index) => {
      const s = sigma.dataSync();
      const i = index.dataSync();
      for (let k = 0; k < s.length; k++) {
        expect(Number.isInteger(i[k])).toBe(true);
        expect(s[k]).toBeCloseTo(sde.discreteSigma(i[k]), 4);
      }
      seen += s.length;
      return model(x, sigma, index);
    };
    const base = smldLoss(spy, x0, sde, 5).dataSync()[0];
    expect(seen).toBe(512);
    const worse = smldLoss((x, s, i) => tf.add(model(x, s, i), 0.1), x0, sde, 5).dataSync()[0];
    expect(worse).toBeGreaterThan(base);
    x0.dispose();
  });

  it('fixed index, input checks', () => {
    const x0 = gauss.sample(8, 2);
    const a = smldLossPerSample(model, x0, sde, 1, { index: 99, reduction: 'sum' });
    // At σ_max = 50 ≫ data scale: E‖σ s + z‖² = 2 − σ² tr((Σ + σ²)⁻¹) ≈ 0, so each value is small.
    expect(Math.max(...a.dataSync())).toBeLessThan(0.05);
    a.dispose();
    expect(() => smldLoss(model, x0, createSde('vp') as never, 1)).toThrow(/^sde: expected a VeSde/);
    expect(() => smldLoss(model, x0, sde, 1, { index: 100 })).toThrow(SbmError);
    expect(() => smldLoss(model, x0, sde, 1, { index: tf.tensor1d([0.5, 1, 1, 1, 1, 1, 1, 1]) })).toThrow(/^index/);
    expect(() => smldLoss('model' as never, x0, sde, 1)).toThrow(/^model/);
    x0.dispose();
  });
});

describe('ddpmLoss', () => {
  const sde = new VpSde();
  const { sqrtAlphasCumprod: a, sqrtOneMinusAlphasCumprod: b } = ddpmAlphasCumprod(sde);
  // Optimal ε-prediction of N(aμ, a²Σ + b²I): ε̂ = −b ∇log p(x_i).
  const epsOracle: EpsilonModel = (x, timestep) =>
    tf.tidy(() => {
      const i = Array.from(timestep.dataSync());
      // Σ_i = a_i²Σ + b_i²I per sample: the 2×2 inverses are done in float64 in JS.
      const xs = x.arraySync() as number[][];
      const out = xs.map((row, k) => {
        const A = a[i[k]];
        const Bv = b[i[k]];
        const c00 = A * A * cov[0][0] + Bv * Bv;
        const c11 = A * A * cov[1][1] + Bv * Bv;
        const c01 = A * A * cov[0][1];
        const det = c00 * c11 - c01 * c01;
        const y0 = row[0] - A * mu[0];
        const y1 = row[1] - A * mu[1];
        const s0 = -(c11 * y0 - c01 * y1) / det;
        const s1 = -(-c01 * y0 + c00 * y1) / det;
        return [-Bv * s0, -Bv * s1];
      });
      return tf.tensor2d(out);
    });

  it('ᾱ of the DDPM grid matches the continuous VP α(1) to second order in β', () => {
    // ln √ᾱ_N = ½ Σ ln(1 − β_i) = −½ Σβ_i − ¼ Σβ_i² − O(Σβ³), and Σβ_i = (β_min + β_max)/2 = ∫₀¹ β = −2 ln α(1);
    // the neglected Σβ³/6 ≈ 3e-4 bounds the relative difference.
    let sumSq = 0;
    for (let i = 0; i < sde.N; i++) sumSq += sde.discreteBeta(i) ** 2;
    const approx = sde.alpha(1) * Math.exp(-0.25 * sumSq);
    expect(Math.abs(a[sde.N - 1] / approx - 1)).toBeLessThan(1e-3);
    expect(Math.abs(a[sde.N - 1] / sde.alpha(1) - 1)).toBeGreaterThan(1e-2);
    expect(a[0]).toBeCloseTo(Math.sqrt(1 - sde.discreteBeta(0)), 7);
  });

  it('at the optimal ε̂ its mean is the grid average of (D − b_i² tr((a_i²Σ + b_i²)⁻¹))/D', async () => {
    const x0 = gauss.sample(3000, 4);
    const r = meanSe(await withLeakCheck(() => ddpmLossPerSample(epsOracle, x0, sde, 9)));
    let expected = 0;
    for (let i = 0; i < sde.N; i++) expected += (2 - b[i] * b[i] * traceInvCov(cov, a[i], b[i])) / 2;
    expected /= sde.N;
    expect(Math.abs(r.mean - expected)).toBeLessThan(Z * r.se);
    const worse = ddpmLoss((x, t) => tf.mul(epsOracle(x, t), 1.2), x0, sde, 9).dataSync()[0];
    expect(worse).toBeGreaterThan(r.mean);
    x0.dispose();
  });

  it('rejects a non-VP SDE', () => {
    const x0 = gauss.sample(4, 4);
    expect(() => ddpmLoss(epsOracle, x0, new VeSde() as never, 1)).toThrow(/^sde: expected a VpSde/);
    x0.dispose();
  });
});
