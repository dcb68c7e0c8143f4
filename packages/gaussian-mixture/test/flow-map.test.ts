import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, type Sde } from '@sbm/sde';
import { expectThrowsSbm } from '@sbm/test-harness';
import { GaussianMixture, gaussian2d, mixture16d, mixture2d } from '@sbm/gaussian-mixture';
import { slicedWasserstein } from '@sbm/metrics';

const sdes: [string, Sde][] = [
  ['vp', new VpSde()],
  ['ve', new VeSde()],
  ['subvp', new SubVpSde()],
  ['tutorial-ve', new TutorialVeSde()],
];

/** n prior draws N(0, σ(T)² I), row-major float64 (tfjs's seeded normals: the same on every backend). */
function priorDraws(sde: Sde, n: number, D: number, seed: number): Float64Array {
  const z = tf.tidy(() => tf.randomNormal([n, D], 0, 1, 'float32', seed).dataSync());
  return Float64Array.from(z, (v) => v * sde.std(sde.T));
}

/** Exact draws of p_t as float64 rows. */
function drawsAt(mix: GaussianMixture, sde: Sde, t: number, n: number, seed: number): Float64Array {
  const x = mix.atTime(sde, t).sample(n, seed);
  const v = Float64Array.from(x.dataSync());
  x.dispose();
  return v;
}

function maxAbsDiff(a: Float64Array, b: Float64Array | ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The yardstick of @sbm/samplers/testing (not imported: samplers depends on this package): sliced W2 with one fixed
// set of 128 directions; the floor is the mean over pairs of K exact sets, a candidate's distance its mean to all K.
const swd = (a: number[][], b: number[][]): number => slicedWasserstein(a, b, { projections: 128, seed: 3 });
const meanSwd = (x: number[][], refs: number[][][]): number => refs.reduce((s, r) => s + swd(x, r), 0) / refs.length;
function floorOf(refs: number[][][]): number {
  const d: number[] = [];
  for (let i = 0; i < refs.length; i++) for (let j = i + 1; j < refs.length; j++) d.push(swd(refs[i], refs[j]));
  return d.reduce((s, v) => s + v, 0) / d.length;
}

function toRows(x: Float64Array, D: number): number[][] {
  return Array.from({ length: x.length / D }, (_, b) => Array.from(x.subarray(b * D, (b + 1) * D)));
}

describe('flowMap: one Gaussian (closed form)', () => {
  it.each(sdes)('%s: the closed form and the float64 adaptive solve agree within 1e-8', (_, sde) => {
    const g = gaussian2d();
    const xT = priorDraws(sde, 200, 2, 11);
    const closed = g.flowMap(sde, xT);
    const solved = g.flowMap(sde, xT, { method: 'ode' });
    expect(maxAbsDiff(closed, solved)).toBeLessThanOrEqual(1e-8);
    // not vacuous: the map moves the points by O(σ(T)) and lands them near the data (mean (2, −1))
    expect(maxAbsDiff(closed, xT)).toBeGreaterThan(0.5);
  });

  it('a two-component mixture of identical Gaussians takes the mixture path and equals the closed form', () => {
    // Same mean and covariance twice: p_t is still that Gaussian, but the solve goes through the responsibilities.
    const cov = [
      [1, 0.6],
      [0.6, 0.5],
    ];
    const twin = new GaussianMixture({
      weights: [0.3, 0.7],
      means: [
        [2, -1],
        [2, -1],
      ],
      covariances: [cov, cov],
    });
    for (const [, sde] of sdes.slice(0, 2)) {
      const xT = priorDraws(sde, 100, 2, 12);
      expect(maxAbsDiff(twin.flowMap(sde, xT), gaussian2d().flowMap(sde, xT))).toBeLessThanOrEqual(1e-8);
    }
  });

  it('pushes exact p_T draws to p_eps: the sample moments match α μ and α² Σ + σ² I within 4 standard errors', () => {
    const sde = new VpSde();
    const g = gaussian2d();
    const n = 4000;
    const x = g.flowMap(sde, drawsAt(g, sde, sde.T, n, 21));
    const mean = g.perturbedMean(sde, sde.samplingEps);
    const cov = g.perturbedCovariance(sde, sde.samplingEps);
    for (let i = 0; i < 2; i++) {
      let m = 0;
      for (let b = 0; b < n; b++) m += x[b * 2 + i] / n;
      expect(Math.abs(m - mean[i]) / Math.sqrt(cov[i][i] / n)).toBeLessThan(4);
      for (let j = 0; j < 2; j++) {
        let c = 0;
        for (let b = 0; b < n; b++) c += ((x[b * 2 + i] - mean[i]) * (x[b * 2 + j] - mean[j])) / n;
        const se = Math.sqrt((cov[i][i] * cov[j][j] + cov[i][j] ** 2) / n);
        expect(Math.abs(c - cov[i][j]) / se).toBeLessThan(4);
      }
    }
  });
});

describe('flowMap: mixtures (float64 Dormand–Prince 5(4))', () => {
  it.each(sdes.slice(0, 2))('%s, mixture2d: invertible — forward after backward returns x_T within 1e-7', (_, sde) => {
    const mix = mixture2d();
    const xT = priorDraws(sde, 200, 2, 13);
    const x0 = mix.flowMap(sde, xT);
    const back = mix.flowMap(sde, x0, { from: sde.samplingEps, to: sde.T });
    expect(maxAbsDiff(back, xT)).toBeLessThanOrEqual(1e-7);
  });

  it.each(sdes.slice(0, 2))('%s, mixture2d: halving rtol and atol changes the map by ≤ 1e-9 (tight)', (_, sde) => {
    const mix = mixture2d();
    const xT = priorDraws(sde, 200, 2, 14);
    const a = mix.flowMap(sde, xT);
    const b = mix.flowMap(sde, xT, { rtol: 5e-11, atol: 5e-11 });
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-9);
    // and a loose solve is measurably different (the tolerance is honoured, not ignored)
    expect(maxAbsDiff(a, mix.flowMap(sde, xT, { rtol: 1e-3, atol: 1e-3 }))).toBeGreaterThan(1e-7);
  });

  it('mixture16d, VP: tight too (halving rtol and atol changes 20 points by ≤ 1e-9)', () => {
    const sde = new VpSde();
    const mix = mixture16d();
    const xT = priorDraws(sde, 20, 16, 15);
    expect(maxAbsDiff(mix.flowMap(sde, xT), mix.flowMap(sde, xT, { rtol: 5e-11, atol: 5e-11 }))).toBeLessThanOrEqual(
      1e-9,
    );
  });

  it.each(sdes.slice(0, 2))(
    '%s, mixture2d: 2000 prior draws land within 1.2 × the sliced-W2 floor of the data; a wrong mixture does not',
    (_, sde) => {
      const mix = mixture2d();
      const n = 2000;
      const refs = [0, 1, 2, 3].map((i) => toRows(drawsAt(mix, sde, sde.samplingEps, n, 300 + i), 2));
      const floor = floorOf(refs);
      const xT = priorDraws(sde, n, 2, 16);
      const d = meanSwd(toRows(mix.flowMap(sde, xT), 2), refs);
      expect(d).toBeLessThanOrEqual(1.2 * floor);
      // negative control: the flow of the same modes with other weights misses by far more than the floor
      const other = new GaussianMixture({
        weights: [0.05, 0.35, 0.05, 0.35, 0.2],
        means: mix.means,
        covariances: mix.covariances,
      });
      expect(meanSwd(toRows(other.flowMap(sde, xT), 2), refs)).toBeGreaterThan(2 * floor);
    },
  );

  it.each(sdes)(
    '%s, mixture2d: the map to the level toSigma = σ̃(eps) (solved in x̃ = x/α against σ̃) equals the map to eps',
    (_, sde) => {
      const mix = mixture2d();
      const xT = priorDraws(sde, 50, 2, 18);
      const a = mix.flowMap(sde, xT);
      const b = mix.flowMap(sde, xT, { toSigma: sde.edmSigma(sde.samplingEps) });
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-8);
      // and down to σ̃ = 0 (where EDM / k-diffusion grids end) it is the map to σ̃ = 0, close to but not at eps
      const z = mix.flowMap(sde, xT, { toSigma: 0 });
      expect(maxAbsDiff(a, z)).toBeGreaterThan(1e-5);
      expect(maxAbsDiff(a, z)).toBeLessThan(0.05);
      // one Gaussian: the closed form in σ̃ agrees with the solve
      const g = gaussian2d();
      expect(
        maxAbsDiff(g.flowMap(sde, xT, { toSigma: 0 }), g.flowMap(sde, xT, { toSigma: 0, method: 'ode' })),
      ).toBeLessThanOrEqual(1e-8);
    },
  );

  it('each point is solved on its own: the map of a subset is the subset of the map; rows and flat agree', () => {
    const sde = new VeSde();
    const mix = mixture2d();
    const xT = priorDraws(sde, 10, 2, 17);
    const all = mix.flowMap(sde, xT);
    expect(Array.from(mix.flowMap(sde, xT.subarray(6, 10)))).toEqual(Array.from(all.subarray(6, 10)));
    expect(Array.from(mix.flowMap(sde, toRows(xT, 2)))).toEqual(Array.from(all));
    expect(Array.from(mix.flowMap(sde, Array.from(xT)))).toEqual(Array.from(all));
    // from = to is the identity (a copy, not the caller's array)
    const same = mix.flowMap(sde, xT, { from: 0.5, to: 0.5 });
    expect(same).not.toBe(xT);
    expect(Array.from(same)).toEqual(Array.from(xT));
  });
});

describe('flowMap: validation', () => {
  const mix = mixture2d();
  const sde = new VpSde();
  const x = [0, 0, 1, 1];
  it('rejects bad points', () => {
    expectThrowsSbm(
      () => mix.flowMap(sde, [0, 0, 1]),
      'INVALID_ARGUMENT',
      /xT: expected a length that is a positive multiple of the dimension 2, got length 3/,
    );
    expectThrowsSbm(() => mix.flowMap(sde, []), 'INVALID_ARGUMENT', /xT: .*length 0/);
    expectThrowsSbm(() => mix.flowMap(sde, [0, NaN]), 'INVALID_ARGUMENT', /xT\[1\]: expected a finite number, got NaN/);
    expectThrowsSbm(() => mix.flowMap(sde, [[0, 1], [2]]), 'INVALID_ARGUMENT', /xT\[1\]: expected a row of 2 numbers/);
    expectThrowsSbm(() => mix.flowMap(sde, 'abc' as never), 'INVALID_ARGUMENT', /xT: expected a Float64Array/);
  });
  it('rejects bad times, tolerances, method and SDE', () => {
    expectThrowsSbm(() => mix.flowMap(sde, x, { from: 1.5 }), 'INVALID_ARGUMENT', /from: expected .*<= 1, got 1.5/);
    expectThrowsSbm(() => mix.flowMap(sde, x, { to: -0.1 }), 'INVALID_ARGUMENT', /to: expected .*>= 0/);
    expectThrowsSbm(
      () => mix.flowMap(sde, x, { rtol: 0 }),
      'INVALID_ARGUMENT',
      /rtol: expected a finite number > 0 < 1, got 0/,
    );
    expectThrowsSbm(() => mix.flowMap(sde, x, { atol: NaN }), 'INVALID_ARGUMENT', /atol: expected a finite number/);
    expectThrowsSbm(() => mix.flowMap(sde, x, { method: 'rk4' as never }), 'UNKNOWN_NAME', /method: expected one of/);
    expectThrowsSbm(
      () => mix.flowMap(sde, x, { method: 'closed-form' }),
      'INVALID_ARGUMENT',
      /method: expected "auto" or "ode" for a mixture of 5 components/,
    );
    expectThrowsSbm(() => mix.flowMap({} as never, x), 'INVALID_ARGUMENT', /sde: expected an Sde/);
    expectThrowsSbm(() => mix.flowMap(sde, x, { toSigma: -1 }), 'INVALID_ARGUMENT', /toSigma: expected .*>= 0/);
    expectThrowsSbm(
      () => mix.flowMap(sde, x, { toSigma: 0, to: 0.5 }),
      'INVALID_ARGUMENT',
      /toSigma: expected to or toSigma, not both/,
    );
  });
  it('gives up with an SbmError naming maxSteps instead of looping', () => {
    expectThrowsSbm(
      () => mix.flowMap(sde, x, { maxSteps: 3 }),
      'INVALID_ARGUMENT',
      /point 0: no convergence in maxSteps = 3/,
    );
  });
});
