import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { withLeakCheck } from '@sbm/core';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, type Sde } from '@sbm/sde';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { GaussianMixture, mixture16d, mixture2d } from '@sbm/gaussian-mixture';
import { referenceLogProbAndScore } from './reference';

const sdes: [string, Sde][] = [
  ['ve', new VeSde()],
  ['vp', new VpSde()],
  ['subvp', new SubVpSde()],
  ['tutorial-ve', new TutorialVeSde()],
];

/** Deterministic test points spread over (and beyond) the mixture's support. */
function points(B: number, D: number, scale: number, offset = 0): number[][] {
  const out: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    for (let i = 0; i < D; i++) row.push(scale * Math.sin(1.7 * (b + offset) + 2.3 * i + 0.4 * b * i));
    out.push(row);
  }
  return out;
}

describe('GaussianMixture: validation', () => {
  it('rejects weights that do not sum to 1 or are negative', () => {
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [0.5, 0.6], means: [[0], [1]] }),
      'INVALID_ARGUMENT',
      /weights: expected weights summing to 1 .* got a sum of 1.1/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [1.5, -0.5], means: [[0], [1]] }),
      'INVALID_ARGUMENT',
      /weights\[1\]: expected a finite number >= 0, got -0.5/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [], means: [] }),
      'INVALID_ARGUMENT',
      /weights: expected a non-empty/,
    );
  });
  it('normalizes weights within the tolerance and drops zero-weight components', () => {
    const g = new GaussianMixture({ weights: [0.5 + 4e-7, 0.5, 0], means: [[0], [1], [2]] });
    expect(g.numComponents).toBe(2);
    expect(g.weights[0] + g.weights[1]).toBe(1);
  });
  it('rejects means of the wrong count or dimension', () => {
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [1], means: [[0], [1]] }),
      'INVALID_ARGUMENT',
      /means: expected an array of 1 mean/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [0.5, 0.5], means: [[0, 0], [1]] }),
      'INVALID_ARGUMENT',
      /means\[1\]: expected an array of 2 finite numbers/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [1], means: [[NaN]] }),
      'INVALID_ARGUMENT',
      /means\[0\]: expected an array of 1 finite numbers/,
    );
  });
  it('rejects covariances that are not symmetric positive definite or of the wrong size', () => {
    expectThrowsSbm(
      () =>
        new GaussianMixture({
          weights: [1],
          means: [[0, 0]],
          covariances: [
            [
              [1, 0.5],
              [0.4, 1],
            ],
          ],
        }),
      'INVALID_ARGUMENT',
      /covariances\[0\]: expected a symmetric matrix/,
    );
    expectThrowsSbm(
      () =>
        new GaussianMixture({
          weights: [1],
          means: [[0, 0]],
          covariances: [
            [
              [1, 2],
              [2, 1],
            ],
          ],
        }),
      'INVALID_ARGUMENT',
      // The eigenvalues are exactly −1 and 3: the solver may return −1 itself or a float64 neighbour of it.
      /covariances\[0\]: expected a positive definite matrix, got one with smallest eigenvalue -(1|0\.9999\d+) \(largest 3/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [1], means: [[0, 0]], covariances: [[[1, 0]]] }),
      'INVALID_ARGUMENT',
      /covariances\[0\]: expected a 2x2 matrix/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [0.5, 0.5], means: [[0], [1]], covariances: [1, 0] }),
      'INVALID_ARGUMENT',
      /covariances\[1\]: expected a variance > 0, got 0/,
    );
    expectThrowsSbm(
      () => new GaussianMixture({ weights: [0.5, 0.5], means: [[0], [1]], covariances: [1] }),
      'INVALID_ARGUMENT',
      /covariances: expected an array of 2 covariance matrices/,
    );
  });
  it('reassembles the covariances from the eigendecomposition', () => {
    const g = mixture2d();
    expect(g.covariances[3][0][0]).toBeCloseTo(1.5, 12);
    expect(g.covariances[3][0][1]).toBeCloseTo(0.9, 12);
    expect(g.covariances[1][1][1]).toBeCloseTo(1.2, 12);
  });
});

describe('GaussianMixture: eigendecomposition', () => {
  it('reproduces a dense 12x12 SPD covariance to 1e-12 (Jacobi round trip) and its log-density', () => {
    const D = 12;
    const A = Array.from({ length: D }, (_, i) =>
      Array.from({ length: D }, (_, j) => Math.cos(1.3 * i * j + i - 0.7 * j)),
    );
    const cov = A.map((_, i) =>
      A.map((__, j) => A[i].reduce((s, v, l) => s + v * A[j][l], 0) / D + (i === j ? 0.05 : 0)),
    );
    const mean = Array.from({ length: D }, (_, i) => Math.sin(i));
    const g = new GaussianMixture({ weights: [1], means: [mean], covariances: [cov] });
    for (let i = 0; i < D; i++)
      for (let j = 0; j < D; j++) expect(Math.abs(g.covariances[0][i][j] - cov[i][j])).toBeLessThan(1e-12);
    const xs = points(4, D, 1);
    const lp = tf.tidy(() => g.logProb(tf.tensor2d(xs)).arraySync() as number[]);
    xs.forEach((row, b) => {
      const ref = referenceLogProbAndScore(row, [1], [mean], [cov], 1, 0);
      expect(Math.abs(lp[b] - ref.logp)).toBeLessThan(2e-5 * Math.max(1, Math.abs(ref.logp)));
    });
  });
});

describe('GaussianMixture: moments (float64)', () => {
  it('mean and covariance follow the law of total covariance', () => {
    // Two 1-D components: mean 0.3·(−1) + 0.7·2 = 1.1; variance Σ π (v + μ²) − m² = 0.3·1.5 + 0.7·4.5 − 1.21.
    const g = new GaussianMixture({ weights: [0.3, 0.7], means: [[-1], [2]], covariances: [0.5, 0.5] });
    expect(g.mean()[0]).toBeCloseTo(1.1, 14);
    expect(g.covariance()[0][0]).toBeCloseTo(0.3 * 1.5 + 0.7 * 4.5 - 1.21, 14);
  });
  it('perturbed moments are α m and α² C + σ² I', () => {
    const g = mixture2d();
    const m = g.mean();
    const C = g.covariance();
    for (const [, sde] of sdes) {
      for (const t of [0, 0.3, 1]) {
        const a = sde.alpha(t);
        const s = sde.std(t);
        const pm = g.perturbedMean(sde, t);
        const pc = g.perturbedCovariance(sde, t);
        for (let i = 0; i < 2; i++) {
          expect(pm[i]).toBeCloseTo(a * m[i], 10);
          for (let j = 0; j < 2; j++) expect(pc[i][j]).toBeCloseTo(a * a * C[i][j] + (i === j ? s * s : 0), 8);
        }
      }
    }
  });
});

describeWithBackends('GaussianMixture: density and score', () => {
  it('logProb and score at t = 0 match a float64 Cholesky reference (2-D and 16-D)', () => {
    for (const [g, scale] of [
      [mixture2d(), 4],
      [mixture16d(), 2],
    ] as const) {
      const xs = points(12, g.dim, scale);
      const x = tf.tensor2d(xs);
      const lp = g.logProb(x).arraySync() as number[];
      const sc = g.score(x).arraySync() as number[][];
      xs.forEach((row, b) => {
        const ref = referenceLogProbAndScore(row, g.weights, g.means, g.covariances, 1, 0);
        // float32 evaluation: relative error ~1e-6 of the terms that are summed (|log p| up to ~100 here)
        expect(Math.abs(lp[b] - ref.logp)).toBeLessThan(2e-5 * Math.max(1, Math.abs(ref.logp)));
        const norm = Math.hypot(...ref.score);
        for (let i = 0; i < g.dim; i++)
          expect(Math.abs(sc[b][i] - ref.score[i])).toBeLessThan(1e-4 * Math.max(1, norm));
      });
      x.dispose();
    }
  });

  for (const [name, sde] of sdes) {
    it(`${name}: perturbed logProb and score match the float64 reference at per-sample t`, () => {
      for (const g of [mixture2d(), mixture16d()]) {
        const B = 10;
        const ts = Array.from({ length: B }, (_, b) => (b === 0 ? 0 : b === B - 1 ? 1 : 1e-3 + (b / B) ** 2));
        // spread the points like x_t: α x_0-scale plus σ-scale
        const xs = points(B, g.dim, 3, 5).map((row, b) => row.map((v) => v * (sde.alpha(ts[b]) + sde.std(ts[b]))));
        const p = g.perturbed(sde);
        const lp = tf.tidy(() => p.logProb(tf.tensor2d(xs), tf.tensor1d(ts)).arraySync() as number[]);
        const sc = tf.tidy(() => p.scoreFn(tf.tensor2d(xs), tf.tensor1d(ts)).arraySync() as number[][]);
        xs.forEach((row, b) => {
          // α and σ enter through the SDE's float32 tensor path, so compare with the reference at the same α, σ
          // (rounded to float32 as the kernel sees them)
          const a = Math.fround(sde.alpha(ts[b]));
          const s = Math.fround(sde.std(ts[b]));
          const ref = referenceLogProbAndScore(row, g.weights, g.means, g.covariances, a, s * s);
          expect(Math.abs(lp[b] - ref.logp)).toBeLessThan(5e-5 * Math.max(1, Math.abs(ref.logp)));
          const norm = Math.hypot(...ref.score);
          for (let i = 0; i < g.dim; i++) {
            expect(Math.abs(sc[b][i] - ref.score[i])).toBeLessThan(2e-4 * Math.max(1e-3, norm));
          }
        });
      }
    });

    it(`${name}: the score is the autodiff gradient of logProb at several t`, () => {
      const g = mixture2d();
      const p = g.perturbed(sde);
      for (const t of [1e-3, 0.1, 0.5, 1]) {
        const [grad, score] = tf.tidy(() => {
          const x = tf.tensor2d(points(16, 2, 3 * (sde.alpha(t) + sde.std(t))));
          const tt = tf.fill([16], t) as tf.Tensor1D;
          const gr = tf.grad((xx: tf.Tensor) => tf.sum(p.logProb(xx, tt)))(x);
          return [gr.arraySync() as number[][], p.score(x, tt).arraySync() as number[][]];
        });
        const scale = Math.max(...score.flat().map(Math.abs));
        grad.flat().forEach((v, i) => expect(Math.abs(v - score.flat()[i])).toBeLessThan(1e-4 * Math.max(1, scale)));
      }
    });
  }

  it('a number t equals a [B] tensor of that t', () => {
    const g = mixture16d();
    const p = g.perturbed(new VpSde());
    const [a, b] = tf.tidy(() => {
      const x = tf.tensor2d(points(5, 16, 2));
      return [
        p.score(x, 0.4).arraySync() as number[][],
        p.score(x, tf.fill([5], 0.4) as tf.Tensor1D).arraySync() as number[][],
      ];
    });
    a.flat().forEach((v, i) => expect(v).toBeCloseTo(b.flat()[i], 4));
  });

  it('logProb integrates to 1 on a grid (2-D, t = 0 and VP t = 0.5; 1-D VE t = 0.2)', () => {
    const g = mixture2d();
    const h = 0.05;
    const n = 480; // [-12, 12]²: the tail mass outside is < 1e-20 for these components
    const grid: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) grid.push(-12 + (i + 0.5) * h, -12 + (j + 0.5) * h);
    for (const lpFn of [(x: tf.Tensor) => g.logProb(x), (x: tf.Tensor) => g.perturbed(new VpSde()).logProb(x, 0.5)]) {
      const total = tf.tidy(() => tf.sum(tf.exp(lpFn(tf.tensor2d(grid, [n * n, 2])))).dataSync()[0]);
      // midpoint rule on a smooth density: error O(h²·curvature) ≈ 1e-4; float32 sum of 2.3e5 terms ≈ 1e-5
      expect(Math.abs(total * h * h - 1)).toBeLessThan(1e-3);
    }
    const g1 = new GaussianMixture({ weights: [0.6, 0.4], means: [[-2], [3]], covariances: [[[0.25]], [[1]]] });
    const xs = Array.from({ length: 4000 }, (_, i) => -40 + (i + 0.5) * 0.02);
    const total = tf.tidy(
      () => tf.sum(tf.exp(g1.perturbed(new VeSde()).logProb(tf.tensor2d(xs, [4000, 1]), 0.2))).dataSync()[0],
    );
    expect(Math.abs(total * 0.02 - 1)).toBeLessThan(1e-3);
  });

  it('stays finite far from every mode (logSumExp)', () => {
    const g = mixture16d();
    const [lp, sc] = tf.tidy(() => {
      const x = tf.fill([2, 16], 300);
      return [g.logProb(x).dataSync(), g.score(x).dataSync()];
    });
    for (const v of lp) expect(Number.isFinite(v)).toBe(true);
    for (const v of sc) expect(Number.isFinite(v)).toBe(true);
    expect(lp[0]).toBeLessThan(-1e4);
  });

  it('accepts [B, ...dims] inputs and returns the score in that shape', () => {
    const g = new GaussianMixture({
      weights: [0.5, 0.5],
      means: [
        [1, 0, 0, -1],
        [-1, 2, 0, 0],
      ],
      covariances: [0.5, 2],
    });
    const [flat, shaped, shape] = tf.tidy(() => {
      const x = tf.tensor2d(points(3, 4, 2));
      const s4 = g.perturbed(new SubVpSde()).score(tf.reshape(x, [3, 2, 2, 1]), 0.3);
      return [g.perturbed(new SubVpSde()).score(x, 0.3).arraySync() as number[][], s4.dataSync(), s4.shape];
    });
    expect(shape).toEqual([3, 2, 2, 1]);
    flat.flat().forEach((v, i) => expect(shaped[i]).toBeCloseTo(v, 6));
  });

  it('rejects x of the wrong dimension and t of the wrong shape', () => {
    const g = mixture2d();
    const x = tf.zeros([4, 3]);
    expectThrowsSbm(() => g.logProb(x), 'INVALID_SHAPE', /x: expected shape \[batch, 2\].*got \[4, 3\]/);
    const x2 = tf.zeros([4, 2]);
    const t = tf.zeros([3]) as tf.Tensor1D;
    expectThrowsSbm(() => g.perturbed(new VpSde()).score(x2, t), 'INVALID_SHAPE', /t: expected shape \[4\], got \[3\]/);
    expectThrowsSbm(
      () => g.perturbed(new VpSde()).score(x2, 2),
      'INVALID_ARGUMENT',
      /t: expected a finite number >= 0 <= 1, got 2/,
    );
    tf.dispose([x, x2, t]);
  });

  it('leaks no tensors', async () => {
    const g = mixture16d();
    const p = g.perturbed(new VeSde());
    const x = tf.tensor2d(points(8, 16, 2));
    const t = tf.fill([8], 0.5) as tf.Tensor1D;
    (await withLeakCheck(() => g.logProb(x), 'logProb')).dispose();
    (await withLeakCheck(() => g.score(x), 'score')).dispose();
    (await withLeakCheck(() => p.scoreFn(x, t), 'scoreFn')).dispose();
    (await withLeakCheck(() => p.logProb(x, 0.2), 'perturbed logProb')).dispose();
    (await withLeakCheck(() => g.sample(10, 1), 'sample')).dispose();
    (await withLeakCheck(() => p.sample(10, 0.3, 1), 'perturbed sample')).dispose();
    tf.dispose([x, t]);
  });
});

describeWithBackends('GaussianMixture: sampling', () => {
  /**
   * Checks sample mean and covariance against the closed forms. Tolerance: 5 standard errors, with the standard error
   * of each entry estimated from the same n samples (sd of x_i, resp. of (x_i − m_i)(x_j − m_j), over √n) — this
   * accounts for the mixture's excess kurtosis instead of assuming Gaussian fourth moments.
   */
  function checkMoments(samples: number[][], mean: number[], cov: number[][]): void {
    const n = samples.length;
    const D = mean.length;
    const m = new Array(D).fill(0);
    for (const s of samples) for (let i = 0; i < D; i++) m[i] += s[i] / n;
    for (let i = 0; i < D; i++) {
      const se = Math.sqrt(cov[i][i] / n);
      expect(Math.abs(m[i] - mean[i])).toBeLessThan(5 * se);
    }
    for (let i = 0; i < D; i++) {
      for (let j = 0; j <= i; j++) {
        const prods = samples.map((s) => (s[i] - mean[i]) * (s[j] - mean[j]));
        const c = prods.reduce((a, b) => a + b, 0) / n;
        const sd = Math.sqrt(prods.reduce((a, b) => a + (b - c) ** 2, 0) / (n - 1));
        expect(Math.abs(c - cov[i][j])).toBeLessThan(5 * (sd / Math.sqrt(n)) + 1e-9);
      }
    }
  }

  it('sample moments match mean() and covariance() (2-D, n = 20000)', () => {
    const g = mixture2d();
    const s = g.sample(20000, 3);
    checkMoments(s.arraySync(), g.mean(), g.covariance());
    s.dispose();
  });

  it('sample moments match (16-D, n = 20000)', () => {
    const g = mixture16d();
    const s = g.sample(20000, 4);
    checkMoments(s.arraySync(), g.mean(), g.covariance());
    s.dispose();
  });

  it('component frequencies follow the weights (binomial, 5 sd)', () => {
    // Well-separated 1-D components: each sample's component is recoverable from its sign region.
    const g = new GaussianMixture({ weights: [0.2, 0.5, 0.3], means: [[-100], [0], [100]], covariances: [1, 1, 1] });
    const n = 10000;
    const s = g.sample(n, 5);
    const v = s.dataSync();
    const counts = [0, 0, 0];
    for (const x of v) counts[x < -50 ? 0 : x > 50 ? 2 : 1]++;
    [0.2, 0.5, 0.3].forEach((w, k) => expect(Math.abs(counts[k] - n * w)).toBeLessThan(5 * Math.sqrt(n * w * (1 - w))));
    s.dispose();
  });

  it('perturbed samples have the perturbed moments (VP t = 0.3, VE t = 0.4)', () => {
    const g = mixture2d();
    for (const [sde, t] of [
      [new VpSde(), 0.3],
      [new VeSde(), 0.4],
    ] as const) {
      const p = g.perturbed(sde);
      const s = p.sample(20000, t, 11);
      checkMoments(s.arraySync(), p.mean(t), p.covariance(t));
      s.dispose();
    }
  });

  it('is reproducible: same seed ⇒ same samples, different seed ⇒ different', () => {
    const g = mixture16d();
    const [a, b, c] = [g.sample(50, 7), g.sample(50, 7), g.sample(50, 8)];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    tf.dispose([a, b, c]);
  });

  it('rejects a bad n or seed', () => {
    const g = mixture2d();
    expectThrowsSbm(() => g.sample(0, 1), 'INVALID_ARGUMENT', /n: expected an integer >= 1, got 0/);
    expectThrowsSbm(() => g.sample(5, 1.5), 'INVALID_ARGUMENT', /seed: expected a safe integer, got 1.5/);
  });
});
