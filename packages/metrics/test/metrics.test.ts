import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { randomNormal, withLeakCheck } from '@sbm/core';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { medianHeuristic, mmd, mmd2, sampleCovariance, sampleMean, slicedWasserstein, w2Squared1d } from '@sbm/metrics';

/** n draws of N(shift, scale² I) in D dims as plain rows. */
function gaussianRows(n: number, D: number, seed: number, shift: number[] | number = 0, scale = 1): number[][] {
  const z = tf.tidy(() => randomNormal([n, D], seed).arraySync() as number[][]);
  return z.map((row) => row.map((v, j) => scale * v + (typeof shift === 'number' ? shift : shift[j])));
}

describe('w2Squared1d (exact 1-D empirical W2²)', () => {
  it('equal sizes: mean squared difference of sorted values', () => {
    // sorted [1, 2, 3] vs [0, 1, 5]: (1 + 1 + 4) / 3
    expect(w2Squared1d([1, 2, 3], [0, 1, 5])).toBeCloseTo(2, 14);
  });
  it('unequal sizes: integral over merged quantile breakpoints', () => {
    // F⁻¹ of {0, 1} vs {0, 0.5, 1}: differ by 0.5 on [1/3, 2/3) → 0.25 · 1/3
    expect(w2Squared1d([0, 1], [0, 0.5, 1])).toBeCloseTo(1 / 12, 14);
    // a point mass vs two points: ((0 − 1)² + (0 − 3)²) / 2
    expect(w2Squared1d([0], [1, 3])).toBeCloseTo(5, 14);
  });
});

describe('sampleMean / sampleCovariance', () => {
  it('match hand-computed values', () => {
    const x = [
      [1, 2],
      [3, 0],
      [5, 4],
    ];
    expect(sampleMean(x)).toEqual([3, 2]);
    // deviations (−2, 0), (0, −2), (2, 2): Σ dx² = 8, Σ dy² = 8, Σ dx dy = 4; ÷ (n − 1) = 2
    expect(sampleCovariance(x)).toEqual([
      [4, 2],
      [2, 4],
    ]);
    const biased = sampleCovariance(x, { unbiased: false });
    expect(biased[0][0]).toBeCloseTo(8 / 3, 14);
    const t = tf.tensor2d(x);
    expect(sampleMean(t)).toEqual([3, 2]);
    t.dispose();
  });
  it('is accurate far from the origin (two-pass)', () => {
    const x = [[1e8 + 1], [1e8 + 2], [1e8 + 3]];
    expect(sampleCovariance(x)[0][0]).toBeCloseTo(1, 10);
  });
});

describeWithBackends('slicedWasserstein', () => {
  it('is 0 for identical sets and symmetric', () => {
    const a = gaussianRows(500, 4, 1);
    const b = gaussianRows(400, 4, 2);
    expect(slicedWasserstein(a, a, { seed: 3 })).toBe(0);
    expect(slicedWasserstein(a, b, { seed: 3 })).toBe(slicedWasserstein(b, a, { seed: 3 }));
  });

  it('1-D: equals the exact W2 whatever the direction', () => {
    // θ = ±1 in 1-D, and W2 is invariant under x ↦ −x for both sets
    expect(slicedWasserstein([[3], [1], [2]], [[0], [5], [1]], { seed: 1, projections: 7 })).toBeCloseTo(
      Math.SQRT2,
      12,
    );
    expect(slicedWasserstein([[0], [1]], [[0], [0.5], [1]], { seed: 1 })).toBeCloseTo(Math.sqrt(1 / 12), 12);
  });

  it('a set against its own shift by m: SW² → ‖m‖²/D over directions', () => {
    // Per direction the shift moves every projection by θᵀm, so W2²(θ) = (θᵀm)² exactly; only the direction average
    // is random: θ₁² ~ Beta(½, (D−1)/2) has variance 2(D−1)/(D²(D+2)), so with P directions the estimate of
    // ‖m‖²/D has sd ‖m‖² √(2(D−1)/(D²(D+2)P)). Tolerance 5 sd.
    const D = 8;
    const P = 2048;
    const m = [2, 0, 0, 0, 0, 0, 0, 0];
    const a = gaussianRows(300, D, 5);
    const b = a.map((row) => row.map((v, j) => v + m[j]));
    const sw2 = slicedWasserstein(a, b, { seed: 9, projections: P }) ** 2;
    const sd = 4 * Math.sqrt((2 * (D - 1)) / (D * D * (D + 2) * P));
    expect(Math.abs(sw2 - 4 / D)).toBeLessThan(5 * sd);
  });

  it('N(0, I) vs N(m, I) samples: SW → ‖m‖/√D; N(0, I) vs N(0, s² I): SW → |1 − s| (unequal n)', () => {
    const D = 4;
    const n = 4000;
    const m = [1.5, -1, 0.5, 1];
    const norm2 = m.reduce((s, v) => s + v * v, 0);
    const a = gaussianRows(n, D, 11);
    const b = gaussianRows(n, D, 12, m);
    // Sampling error of W2²(θ) between empirical measures of N(0,1) and N(δ,1): the cross term 2δ(ȳ − x̄) has
    // sd 2|δ|√(2/n) ≤ 2‖m‖√(2/n), plus a positive O(log n / n) bias; directions add sd as in the test above.
    const P = 512;
    const sw2 = slicedWasserstein(a, b, { seed: 13, projections: P }) ** 2;
    const tol =
      5 * 2 * Math.sqrt(norm2) * Math.sqrt(2 / n) +
      5 * norm2 * Math.sqrt((2 * (D - 1)) / (D * D * (D + 2) * P)) +
      (10 * Math.log(n)) / n;
    expect(Math.abs(sw2 - norm2 / D)).toBeLessThan(tol);
    // scale 2: per direction N(0,1) vs N(0,4) has W2 = |1 − 2| = 1 for every θ; m = 3000 ≠ n exercises the quantile merge
    const c = gaussianRows(3000, D, 14, 0, 2);
    const sw = slicedWasserstein(a, c, { seed: 15 });
    // W2 between scales estimates |σ_a − σ_c| with sd ≈ √((σ_a² / 2n) + (σ_c² / 2m)) (sd of a sample std), plus O(log n/n)
    expect(Math.abs(sw - 1)).toBeLessThan(5 * Math.sqrt(1 / (2 * n) + 4 / (2 * 3000)) + (10 * Math.log(n)) / n);
  });

  it('is seeded: same seed ⇒ same value, different seed ⇒ different', () => {
    const a = gaussianRows(200, 3, 1);
    const b = gaussianRows(200, 3, 2, 1);
    const v = slicedWasserstein(a, b, { seed: 4, projections: 16 });
    expect(slicedWasserstein(a, b, { seed: 4, projections: 16 })).toBe(v);
    expect(slicedWasserstein(a, b, { seed: 5, projections: 16 })).not.toBe(v);
  });

  it('rejects bad inputs', () => {
    const a = [
      [0, 0],
      [1, 1],
    ];
    expectThrowsSbm(
      () => slicedWasserstein(a, [[0, 0, 0]], { seed: 1 }),
      'INVALID_SHAPE',
      /b: expected samples of dimension 2 \(that of a\), got dimension 3/,
    );
    expectThrowsSbm(
      () => slicedWasserstein(a, [[0, NaN]], { seed: 1 }),
      'NON_FINITE',
      /b\[0\]\[1\]: expected a finite number, got NaN/,
    );
    const nanT = tf.tensor2d([[0, NaN]]);
    expectThrowsSbm(() => slicedWasserstein(a, nanT, { seed: 1 }), 'NON_FINITE', /b: expected finite values/);
    const vec = tf.tensor1d([1, 2]);
    expectThrowsSbm(
      () => slicedWasserstein(vec, a, { seed: 1 }),
      'INVALID_SHAPE',
      /a: expected samples of shape \[n, D\].*got \[2\]/,
    );
    expectThrowsSbm(
      () => slicedWasserstein(a, a, { seed: 1, projections: 0 }),
      'INVALID_ARGUMENT',
      /projections: expected an integer >= 1, got 0/,
    );
    expectThrowsSbm(() => slicedWasserstein(a, a, { seed: 0.5 }), 'INVALID_ARGUMENT', /seed: expected a safe integer/);
    tf.dispose([nanT, vec]);
  });

  it('leaks no tensors', async () => {
    const a = tf.tidy(() => randomNormal([100, 3], 1));
    const b = tf.tidy(() => randomNormal([80, 3], 2));
    await withLeakCheck(() => slicedWasserstein(a, b, { seed: 1 }), 'slicedWasserstein');
    tf.dispose([a, b]);
  });
});

describeWithBackends('mmd', () => {
  it('is exactly 0 for identical sets (biased) and symmetric', () => {
    const a = gaussianRows(300, 3, 1);
    const b = gaussianRows(250, 3, 2, 0.5);
    expect(mmd2(a, a)).toBe(0);
    expect(mmd(a, a, { bandwidth: 0.7 })).toBe(0);
    expect(mmd2(a, b, { bandwidth: 1.3 })).toBeCloseTo(mmd2(b, a, { bandwidth: 1.3 }), 6);
  });

  it('median heuristic: median pairwise distance of the pooled points', () => {
    // pooled {0, 1, 3}: distances 1, 3, 2 → 2
    expect(medianHeuristic([[0], [1]], [[3]])).toBe(2);
    // pooled {0, 1, 3, 7}: distances 1, 3, 7, 2, 6, 4 → (3 + 4) / 2
    expect(medianHeuristic([[0], [1]], [[3], [7]])).toBe(3.5);
  });

  it('a tiny example by hand (biased and unbiased)', () => {
    // a = {0, 1}, b = {2}, h = 1: k(d) = e^{−d²/2}
    const k = (d: number): number => Math.exp((-d * d) / 2);
    const biased = (2 + 2 * k(1)) / 4 + 1 - (2 * (k(2) + k(1))) / 2;
    expect(mmd2([[0], [1]], [[2]], { bandwidth: 1 })).toBeCloseTo(biased, 6);
    const a = [[0], [1], [4]];
    const b = [[2], [2.5]];
    const kaa = (2 * (k(1) + k(4) + k(3))) / 6;
    const kbb = (2 * k(0.5)) / 2;
    const kab = (k(2) + k(2.5) + k(1) + k(1.5) + k(2) + k(1.5)) / 6;
    expect(mmd2(a, b, { bandwidth: 1, estimator: 'unbiased' })).toBeCloseTo(kaa + kbb - 2 * kab, 6);
  });

  it('unbiased MMD² of N(0, s²I) vs N(m, s²I) matches the closed form', () => {
    // E k(x, y) for x ~ N(μ₁, s²I), y ~ N(μ₂, s²I): (h²/(h² + 2s²))^{D/2} exp(−‖μ₁ − μ₂‖² / (2(h² + 2s²))), so
    // MMD² = 2c(1 − exp(−‖m‖²/(2(h² + 2s²)))) with c = (h²/(h² + 2s²))^{D/2}.
    const D = 2;
    const h = 1.5;
    const s = 1;
    const m = [1, 0.5];
    const c = ((h * h) / (h * h + 2 * s * s)) ** (D / 2);
    const expected = 2 * c * (1 - Math.exp(-(m[0] ** 2 + m[1] ** 2) / (2 * (h * h + 2 * s * s))));
    const n = 1500;
    const a = gaussianRows(n, D, 21);
    const b = gaussianRows(n, D, 22, m);
    const est = mmd2(a, b, { bandwidth: h, estimator: 'unbiased' });
    // Tolerance from the data: the estimates on 10 disjoint chunks of n/10 have sample sd σ_c; the full-sample
    // U-statistic has variance ≤ that of the chunk mean (σ_c²/10). 5 of those sd.
    const chunks: number[] = [];
    for (let k = 0; k < 10; k++) {
      const sl = (x: number[][]): number[][] => x.slice((k * n) / 10, ((k + 1) * n) / 10);
      chunks.push(mmd2(sl(a), sl(b), { bandwidth: h, estimator: 'unbiased' }));
    }
    const mean = chunks.reduce((x, y) => x + y, 0) / 10;
    const sdChunk = Math.sqrt(chunks.reduce((x, y) => x + (y - mean) ** 2, 0) / 9);
    expect(Math.abs(est - expected)).toBeLessThan(5 * (sdChunk / Math.sqrt(10)));
    expect(expected).toBeGreaterThan(0.1); // the test has power: the effect is well above the tolerance
    expect(5 * (sdChunk / Math.sqrt(10))).toBeLessThan(0.05);
  });

  it('rejects bad inputs', () => {
    const a = [[0], [1]];
    expectThrowsSbm(() => mmd2(a, [[0, 1]]), 'INVALID_SHAPE', /b: expected samples of dimension 1/);
    expectThrowsSbm(
      () => mmd2(a, a, { bandwidth: -1 }),
      'INVALID_ARGUMENT',
      /bandwidth: expected a finite number > 0, got -1/,
    );
    expectThrowsSbm(() => mmd2([[0], [0], [0]], [[0]]), 'INVALID_ARGUMENT', /bandwidth: the median heuristic gave 0/);
    expectThrowsSbm(() => mmd2(a, [[1]], { estimator: 'unbiased' }), 'INVALID_SHAPE', /b: expected at least 2 sample/);
    expectThrowsSbm(
      () => mmd2(a, a, { estimator: 'fancy' as 'biased' }),
      'UNKNOWN_NAME',
      /estimator: expected one of "biased", "unbiased", got "fancy"/,
    );
    const nanT = tf.tensor2d([[NaN]]);
    expectThrowsSbm(() => mmd(nanT, a), 'NON_FINITE', /a: expected finite values/);
    nanT.dispose();
  });

  it('leaks no tensors', async () => {
    const a = tf.tidy(() => randomNormal([120, 3], 1));
    const b = tf.tidy(() => randomNormal([90, 3], 2));
    await withLeakCheck(() => mmd(a, b), 'mmd');
    await withLeakCheck(() => mmd2(a, b, { estimator: 'unbiased', bandwidth: 2 }), 'mmd2');
    tf.dispose([a, b]);
  });
});
