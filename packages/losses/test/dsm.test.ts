import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SbmError, withLeakCheck } from '@sbm/core';
import { createSde, type ScoreFn, type Sde } from '@sbm/sde';
import { GaussianMixture, mixture2d } from '@sbm/gaussian-mixture';
import { dsmLoss, dsmLossPerSample, tutorialDsmLoss } from '@sbm/losses';
import { averageOver, dsmExpectation, meanSe, traceInvCov } from './stats';

// Closed form used throughout. For x_0 ~ N(μ, Σ) and x_t = α x_0 + σ z, p_t = N(αμ, Σ_t), Σ_t = α²Σ + σ²I, and the
// true score is s = −Σ_t⁻¹(x_t − αμ). Then E‖s‖² = tr Σ_t⁻¹ (Fisher information) and
// E[sᵀz] = −E[(α(x_0 − μ) + σz)ᵀ Σ_t⁻¹ z] = −σ tr Σ_t⁻¹, so
//   E‖σ s + z‖² = σ² tr Σ_t⁻¹ − 2σ² tr Σ_t⁻¹ + D = D − σ² tr Σ_t⁻¹,
//   E‖s + z/σ‖² g² = g² (D/σ² − tr Σ_t⁻¹).
// Statistical tolerances: 4 standard errors of the sample mean (s/√n from the same sample), so a correct
// implementation fails with probability < 1e-4 per check; the seeds are fixed, so the outcome is deterministic.
const Z = 4;

const SDES = ['ve', 'vp', 'subvp', 'tutorial-ve'];

const cov3 = [
  [1.0, 0.3, -0.2],
  [0.3, 0.5, 0.1],
  [-0.2, 0.1, 2.0],
];
const gauss3 = new GaussianMixture({ weights: [1], means: [[1, -2, 0.5]], covariances: [cov3] });

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('dsmLoss: closed-form expectation at the true score (single Gaussian, D = 3)', () => {
  const n = 4000;
  for (const name of SDES) {
    it(`${name}: fixed t, default and likelihood weighting, all reductions`, async () => {
      const sde = createSde(name);
      const score = gauss3.perturbed(sde).scoreFn;
      const x0 = gauss3.sample(n, 1);
      for (const t of [0.05, 0.5, 0.95]) {
        const expected = dsmExpectation(sde, cov3, t);
        const sum = meanSe(await withLeakCheck(() => dsmLossPerSample(score, x0, sde, 7, { t, reduction: 'sum' })));
        expect(Math.abs(sum.mean - expected)).toBeLessThan(Z * sum.se);
        const half = meanSe(dsmLossPerSample(score, x0, sde, 7, { t }));
        expect(half.mean).toBeCloseTo(sum.mean / 2, 4);
        const mean = meanSe(dsmLossPerSample(score, x0, sde, 7, { t, reduceMean: true }));
        expect(mean.mean).toBeCloseTo(sum.mean / 3, 4);
        const s = sde.std(t);
        const g2 = sde.diffusion(t) ** 2;
        const lik = meanSe(dsmLossPerSample(score, x0, sde, 7, { t, weighting: 'likelihood', reduction: 'sum' }));
        const expLik = g2 * (3 / (s * s) - traceInvCov(cov3, sde.alpha(t), s));
        expect(Math.abs(lik.mean - expLik)).toBeLessThan(Z * lik.se);
      }
      x0.dispose();
    });
  }

  it('random t ~ U(eps, T): E over t of ½(D − σ² tr Σ_t⁻¹) (Simpson quadrature), for VE and VP', () => {
    for (const name of ['ve', 'vp']) {
      const sde = createSde(name);
      const score = gauss3.perturbed(sde).scoreFn;
      const x0 = gauss3.sample(n, 2);
      const r = meanSe(dsmLossPerSample(score, x0, sde, 11));
      const expected = 0.5 * averageOver((t) => dsmExpectation(sde, cov3, t), 1e-5, sde.T);
      expect(Math.abs(r.mean - expected)).toBeLessThan(Z * r.se);
      x0.dispose();
    }
  });

  it('a custom weighting λ(t) gives λ(t)/σ(t)² times the default, per sample', () => {
    const sde = createSde('vp');
    const score = gauss3.perturbed(sde).scoreFn;
    const x0 = gauss3.sample(64, 3);
    const times = Array.from({ length: 64 }, (_, i) => 0.01 + (0.98 * i) / 63);
    const t = tf.tensor1d(times);
    const lam = (tt: tf.Tensor1D): tf.Tensor1D => tf.add(tt, 1) as tf.Tensor1D;
    const b = dsmLossPerSample(score, x0, sde, 5, { t }).dataSync();
    const c = dsmLossPerSample(score, x0, sde, 5, { t, weighting: lam }).dataSync();
    for (let i = 0; i < 64; i++) {
      const ratio = (1 + times[i]) / sde.std(times[i]) ** 2;
      expect(c[i] / b[i]).toBeCloseTo(ratio, 3);
    }
    tf.dispose([x0, t]);
  });
});

describe('dsmLoss: the true score beats perturbed scores (2-D mixture)', () => {
  // For any perturbation v(x_t), loss(s + δv) − loss(s) = ½[2δσ vᵀ(σs + z) + δ²σ²‖v‖²] per sample (half-sum), and
  // E[σs + z | x_t] = 0 at the true score (Tweedie), so the paired difference has mean ½δ² E_t[σ(t)²]‖v‖².
  const mix = mixture2d();
  const n = 2000;
  for (const name of SDES) {
    it(`${name}: paired differences match ½δ² E[σ²]‖v‖² and are positive`, () => {
      const sde = createSde(name);
      const score = mix.perturbed(sde).scoreFn;
      const x0 = mix.sample(n, 3);
      const vVec = [0.6, -0.8]; // ‖v‖ = 1
      const base = dsmLossPerSample(score, x0, sde, 99);
      const meanSigma2 = averageOver((t) => sde.std(t) ** 2, 1e-5, sde.T);
      for (const delta of [0.05, 0.3, 1]) {
        const perturbed: ScoreFn = (x, t) => tf.add(score(x, t), tf.mul(tf.tensor1d(vVec), delta));
        const loss = dsmLossPerSample(perturbed, x0, sde, 99);
        const diff = meanSe(tf.sub(loss, base));
        const expected = 0.5 * delta * delta * meanSigma2;
        expect(Math.abs(diff.mean - expected)).toBeLessThan(Z * diff.se + 1e-4 * expected);
        expect(diff.mean).toBeGreaterThan(0);
        loss.dispose();
      }
      tf.dispose([x0, base]);
    });
  }
});

describe('dsmLoss: behaviour', () => {
  const sde = createSde('ve');
  const score = mixture2d().perturbed(sde).scoreFn;

  it('is deterministic per seed, differs between seeds, and leaks nothing', async () => {
    const x0 = mixture2d().sample(32, 1);
    const a = await withLeakCheck(() => dsmLoss(score, x0, sde, 3), 'dsmLoss');
    const b = dsmLoss(score, x0, sde, 3);
    const c = dsmLoss(score, x0, sde, 4);
    expect(a.dataSync()[0]).toBe(b.dataSync()[0]);
    expect(a.dataSync()[0]).not.toBe(c.dataSync()[0]);
    tf.dispose([x0, a, b, c]);
  });

  it('tutorialDsmLoss is twice the half-sum loss (same seed)', () => {
    const x0 = mixture2d().sample(32, 1);
    const a = dsmLoss(score, x0, sde, 3).dataSync()[0];
    const b = tutorialDsmLoss(score, x0, sde, 3).dataSync()[0];
    expect(b).toBeCloseTo(2 * a, 3);
    x0.dispose();
  });

  it('gradients: tf.variableGrads through the loss equal central differences (a linear score is quadratic in W)', () => {
    const W = tf.variable(
      tf.tensor2d([
        [-0.5, 0.1],
        [0.2, -0.3],
      ]),
    );
    const lin: ScoreFn = (x) => tf.matMul(x as tf.Tensor2D, W, false, true);
    const x0 = mixture2d().sample(16, 5);
    const vpsde = createSde('vp') as Sde;
    const { value, grads } = tf.variableGrads(() => dsmLoss(lin, x0, vpsde, 8));
    const g = grads[W.name].arraySync() as number[][];
    const w0 = W.arraySync() as number[][];
    const h = 1e-2;
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        const at = (d: number): number => {
          const w = w0.map((r) => r.slice());
          w[i][j] += d;
          W.assign(tf.tensor2d(w));
          return dsmLoss(lin, x0, vpsde, 8).dataSync()[0];
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        expect(Math.abs(g[i][j] - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
      }
    }
    expect(Math.abs(g[0][0]) + Math.abs(g[1][1])).toBeGreaterThan(0);
    tf.dispose([value, x0, W, ...Object.values(grads)]);
  });

  it('rejects bad input with SbmError naming the argument', () => {
    const x0 = mixture2d().sample(4, 1);
    const bad = (fn: () => unknown, code: string, arg: RegExp): void => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(SbmError);
        expect((e as SbmError).code).toBe(code);
        expect((e as SbmError).message).toMatch(arg);
        return;
      }
      throw new Error('expected a throw');
    };
    bad(() => dsmLoss(score, x0, sde, 1, { eps: 0 }), 'INVALID_ARGUMENT', /^eps/);
    bad(() => dsmLoss(score, x0, sde, 1, { eps: 1 }), 'INVALID_ARGUMENT', /^eps/);
    bad(() => dsmLoss(score, x0, sde, 1, { weighting: 'fisher' as never }), 'UNKNOWN_NAME', /^weighting/);
    bad(() => dsmLoss(score, x0, sde, 1, { reduction: 'max' as never }), 'UNKNOWN_NAME', /^reduction/);
    bad(() => dsmLoss(score, x0, sde, 1.5), 'INVALID_ARGUMENT', /^seed/);
    bad(() => dsmLoss(score, tf.tensor1d([1, 2]), sde, 1), 'INVALID_SHAPE', /^x0/);
    const nan = tf.tensor2d([[NaN, 1]]);
    bad(() => dsmLoss(score, nan, sde, 1), 'NON_FINITE', /^x0/);
    bad(() => dsmLoss((x) => tf.sum(x, 1), x0, sde, 1), 'INVALID_SHAPE', /^score/);
    bad(() => dsmLoss(score, x0, {} as never, 1), 'INVALID_ARGUMENT', /^sde/);
    bad(() => dsmLoss(score, x0, sde, 1, { t: 2 }), 'INVALID_ARGUMENT', /^t/);
    tf.dispose([x0, nan]);
  });
});
