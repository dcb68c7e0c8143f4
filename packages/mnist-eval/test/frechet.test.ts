import { describe, expect, it } from 'vitest';
import { SeedStream, isSbmError } from '@sbm/core';
import { frechetDistance, jacobiEigen, moments, sqrtPsd } from '@sbm/mnist-eval';
import { symmetricEigen } from './reference-eigen';

type M = number[][];

function normals(stream: SeedStream, n: number): number[] {
  const out: number[] = [];
  while (out.length < n) {
    // Box–Muller on two uniforms in (0, 1].
    const u = 1 - stream.uniform();
    const v = stream.uniform();
    out.push(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
}

const transpose = (a: M): M => a[0].map((_, j) => a.map((r) => r[j]));
const mul = (a: M, b: M): M => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const trace = (a: M): number => a.reduce((s, r, i) => s + r[i], 0);

/** A random SPD matrix G Gᵀ/d + εI of size d (full rank, well spread spectrum). */
function randomSpd(d: number, seed: number, eps = 0.01): M {
  const s = new SeedStream(seed);
  const g = Array.from({ length: d }, () => normals(s, d));
  const a = mul(g, transpose(g));
  return a.map((r, i) => r.map((v, j) => v / d + (i === j ? eps : 0)));
}

/** A random orthogonal matrix: eigenvectors of a random symmetric matrix. */
function randomOrthogonal(d: number, seed: number): M {
  const s = new SeedStream(seed);
  const g = Array.from({ length: d }, () => normals(s, d));
  const sym = g.map((r, i) => r.map((v, j) => 0.5 * (v + g[j][i])));
  return symmetricEigen(sym).vectors;
}

const fromEigen = (u: M, lam: number[]): M =>
  mul(
    u.map((r) => r.map((v, j) => v * lam[j])),
    transpose(u),
  );

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isSbmError(e) ? e.code : `not an SbmError: ${String(e)}`;
  }
  return undefined;
}

describe('frechetDistance (closed forms)', () => {
  it('is 0 for identical Gaussians (128-d, full covariance)', () => {
    const cov = randomSpd(128, 1);
    const mu = normals(new SeedStream(2), 128);
    const fd = frechetDistance(mu, cov, mu, cov);
    // d² = 2 tr Σ − 2 tr Σ exactly; rounding of two 128×128 eigendecompositions is ~1e-13 relative to tr Σ (~128).
    expect(Math.abs(fd)).toBeLessThan(1e-9 * trace(cov));
  });

  it('1-D Gaussians: (μ1 − μ2)² + (σ1 − σ2)²', () => {
    for (const [m1, s1, m2, s2] of [
      [0, 1, 0, 2],
      [1.5, 0.3, -2, 0.7],
      [3, 2, 3, 2],
      [0, 0, 1, 1],
    ]) {
      const expected = (m1 - m2) ** 2 + (s1 - s2) ** 2;
      expect(frechetDistance([m1], [[s1 * s1]], [m2], [[s2 * s2]])).toBeCloseTo(expected, 12);
    }
  });

  it('diagonal covariances: ‖Δμ‖² + Σ (√a_i − √b_i)², including zero variances', () => {
    const s = new SeedStream(3);
    const d = 20;
    const a = Array.from({ length: d }, (_, i) => (i % 7 === 0 ? 0 : 0.1 + 3 * s.uniform()));
    const b = Array.from({ length: d }, () => 0.1 + 3 * s.uniform());
    const mu1 = normals(s, d);
    const mu2 = normals(s, d);
    const diag = (v: number[]): M => v.map((x, i) => v.map((_, j) => (i === j ? x : 0)));
    let expected = 0;
    for (let i = 0; i < d; i++) expected += (mu1[i] - mu2[i]) ** 2 + (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2;
    expect(frechetDistance(mu1, diag(a), mu2, diag(b))).toBeCloseTo(expected, 10);
  });

  it('commuting covariances U diag(a) Uᵀ, U diag(b) Uᵀ: Σ (√a_i − √b_i)²', () => {
    const d = 32;
    const u = randomOrthogonal(d, 4);
    const s = new SeedStream(5);
    const a = Array.from({ length: d }, () => 0.05 + 2 * s.uniform());
    const b = Array.from({ length: d }, () => 0.05 + 2 * s.uniform());
    const mu = new Array<number>(d).fill(0.25);
    let expected = 0;
    for (let i = 0; i < d; i++) expected += (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2;
    const fd = frechetDistance(mu, fromEigen(u, a), mu, fromEigen(u, b));
    expect(fd).toBeCloseTo(expected, 9);
  });

  it('non-commuting 2×2: tr (Σ1 Σ2)^{1/2} = √(tr Σ1Σ2 + 2√(det Σ1 det Σ2))', () => {
    // For a 2×2 PSD M, tr √M = √(tr M + 2 √det M); M = Σ1^{1/2} Σ2 Σ1^{1/2} has tr M = tr Σ1Σ2, det M = det Σ1 det Σ2.
    const c1 = [
      [2, 0.9],
      [0.9, 1],
    ];
    const c2 = [
      [0.5, -0.3],
      [-0.3, 3],
    ];
    const det = (c: M): number => c[0][0] * c[1][1] - c[0][1] * c[1][0];
    const cross = Math.sqrt(trace(mul(c1, c2)) + 2 * Math.sqrt(det(c1) * det(c2)));
    const mu1 = [1, -1];
    const mu2 = [0.5, 2];
    const expected = 0.25 + 9 + trace(c1) + trace(c2) - 2 * cross;
    expect(frechetDistance(mu1, c1, mu2, c2)).toBeCloseTo(expected, 12);
  });

  it('scaled covariance Σ2 = c² Σ1 (equal means): (1 − c)² tr Σ1', () => {
    const cov = randomSpd(64, 6);
    const scaled = cov.map((r) => r.map((v) => 2.25 * v));
    const mu = new Array<number>(64).fill(0);
    expect(frechetDistance(mu, cov, mu, scaled)).toBeCloseTo(0.25 * trace(cov), 8);
  });

  it('is symmetric in its two Gaussians (128-d, non-commuting) and grows with the mean shift', () => {
    const c1 = randomSpd(128, 7);
    const c2 = randomSpd(128, 8, 0.1);
    const m1 = normals(new SeedStream(9), 128);
    const m2 = normals(new SeedStream(10), 128);
    const ab = frechetDistance(m1, c1, m2, c2);
    const ba = frechetDistance(m2, c2, m1, c1);
    expect(Math.abs(ab - ba)).toBeLessThan(1e-9 * ab);
    // Shifting one mean by δ adds exactly ‖m1 + δ − m2‖² − ‖m1 − m2‖² to d².
    const shifted = m1.map((v) => v + 0.5);
    let dMean = 0;
    for (let i = 0; i < 128; i++) dMean += (shifted[i] - m2[i]) ** 2 - (m1[i] - m2[i]) ** 2;
    expect(frechetDistance(shifted, c1, m2, c2) - ab).toBeCloseTo(dMean, 7);
  });

  it('sqrtPsd(A)² = A for an SPD and a rank-deficient PSD matrix', () => {
    const a = randomSpd(24, 11);
    const u = randomOrthogonal(24, 12);
    const lam = Array.from({ length: 24 }, (_, i) => (i < 8 ? 0 : i / 10));
    for (const m of [a, fromEigen(u, lam)]) {
      const r = sqrtPsd(m);
      const back = mul(r, r);
      const err = Math.max(...back.flatMap((row, i) => row.map((v, j) => Math.abs(v - m[i][j]))));
      expect(err).toBeLessThan(1e-10);
    }
  });

  it('jacobiEigen: same spectrum as an independent Jacobi (test/reference-eigen.ts) and A = U Λ Uᵀ', () => {
    const d = 40;
    const a = randomSpd(d, 13);
    const flatA = Float64Array.from(a.flat());
    const { values, vectors } = jacobiEigen(flatA, d, true);
    const ours = Array.from(values).sort((x, y) => x - y);
    const ref = symmetricEigen(a)
      .values.slice()
      .sort((x, y) => x - y);
    ours.forEach((v, i) => expect(Math.abs(v - ref[i])).toBeLessThan(1e-12 * ref[d - 1]));
    const u: M = Array.from({ length: d }, (_, i) =>
      Array.from((vectors as Float64Array).subarray(i * d, (i + 1) * d)),
    );
    const back = fromEigen(u, Array.from(values));
    const err = Math.max(...back.flatMap((row, i) => row.map((v, j) => Math.abs(v - a[i][j]))));
    expect(err).toBeLessThan(1e-12 * ref[d - 1]);
  });

  it('rejects bad input with SbmErrors naming the argument', () => {
    const eye = [
      [1, 0],
      [0, 1],
    ];
    expect(code(() => frechetDistance([0, 0], eye, [0, 0, 0], eye))).toBe('INVALID_SHAPE');
    expect(code(() => frechetDistance([0, 0], eye, [0, 0], [[1, 0]]))).toBe('INVALID_SHAPE');
    expect(code(() => frechetDistance([0, NaN], eye, [0, 0], eye))).toBe('NON_FINITE');
    expect(
      code(() =>
        frechetDistance(
          [0, 0],
          [
            [1, 0.5],
            [0, 1],
          ],
          [0, 0],
          eye,
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      code(() =>
        frechetDistance(
          [0, 0],
          [
            [1, 2],
            [2, 1],
          ],
          [0, 0],
          eye,
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(code(() => frechetDistance([], [], [], []))).toBe('INVALID_ARGUMENT');
    try {
      frechetDistance([0, 0], eye, [0], eye);
    } catch (e) {
      expect((e as Error).message).toMatch(/mu2: expected length 2, got 1/);
    }
  });
});

describe('moments', () => {
  it('matches the hand-computed mean and unbiased covariance', () => {
    // Rows (1, 2), (3, 0), (5, 4): mean (3, 2); centred (−2, 0), (0, −2), (2, 2);
    // Σ = [[8, 4], [4, 8]] / (n − 1 = 2).
    const { mean, cov } = moments(new Float32Array([1, 2, 3, 0, 5, 4]), 3, 2);
    expect(mean).toEqual([3, 2]);
    expect(cov).toEqual([
      [4, 2],
      [2, 4],
    ]);
  });
});
