import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors, isSbmError } from '@sbm/core';
import { GaussianMixture } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, type ScoreFn, type Sde } from '@sbm/sde';
import {
  cfg,
  clipX0,
  dynamicThresholding,
  fromDenoiser,
  fromEpsilon,
  fromScore,
  fromV,
  fromX0,
  sample,
  thresholdX0,
  toEpsilon,
  toV,
  toX0,
  type NetworkFn,
} from '@sbm/samplers';
import { momentErrors } from './helpers';

// Model-output adapters, classifier-free guidance and thresholding against closed forms.
//
// Conventions are checked independently of the code under test: for one isotropic Gaussian N(μ, v I) the exact
// x̂₀, ε̂, v̂ and score are written here in float64 (x̂₀ = μ + α v (x − α μ)/c, c = α² v + σ², ε̂ = (x − α x̂₀)/σ,
// v̂ = α ε̂ − σ x̂₀, s = −(x − α μ)/c), and an EDM denoiser is a genuine function of (x̃, σ̃): D = μ + v (x̃ − μ)/(v + σ̃²).
// Round trips (to* then from*) run on the exact score of a 3-component mixture (@sbm/gaussian-mixture).
//
// Float32 bound of the x̂₀-type adapters: s = (α x̂₀ − x)/σ² cancels, so a network output rounded to float32
// (relative u = 2⁻²⁴) moves s by ≈ u (|x| + α|x̂₀|)/σ² — about 1e-2 at σ ≈ 0.01 (VP / VE at t = eps), in any float32
// framework. Their tolerance per element is 1e-5 (1 + |s|) + 8u (|x| + α|x̂₀|)/σ² (a few roundings of each term);
// ε, v and score adapters get 1e-5 (1 + |s|). The largest error/tolerance ratio is printed.
const U = 2 ** -24;
const MU = [0.7, -1.2];
const V0 = 0.6;

const sdes: Sde[] = [new VeSde(), new VpSde(), new SubVpSde(), new TutorialVeSde()];
const timesOf = (sde: Sde): number[] => [sde.samplingEps, 0.02, 0.1, 0.3, 0.6, 1];

/** Points x_i at per-sample times t_i: x = α x₀ + σ z with x₀ around μ (float64, then float32), 2 per time. */
function points(sde: Sde, seedShift = 0): { x: number[][]; t: number[] } {
  const x: number[][] = [];
  const t: number[] = [];
  let k = 1 + seedShift;
  const rnd = (): number => {
    // A fixed low-discrepancy stream (no RNG state): values in (−2, 2).
    k += 1;
    return 4 * ((k * 0.6180339887498949) % 1) - 2;
  };
  for (const ti of timesOf(sde)) {
    for (let r = 0; r < 2; r++) {
      const a = sde.alpha(ti);
      const s = sde.std(ti);
      x.push(MU.map((m) => a * (m + Math.sqrt(V0) * rnd()) + s * rnd()));
      t.push(ti);
    }
  }
  return { x, t };
}

/** Exact float64 quantities of N(μ, V0 I) at (x, t). */
function gaussExact(sde: Sde, x: number[][], t: number[]) {
  const out = { score: [] as number[][], x0: [] as number[][], eps: [] as number[][], v: [] as number[][] };
  x.forEach((row, i) => {
    const a = sde.alpha(t[i]);
    const s = sde.std(t[i]);
    const c = a * a * V0 + s * s;
    const sc = row.map((xi, j) => -(xi - a * MU[j]) / c);
    const x0 = row.map((xi, j) => MU[j] + (a * V0 * (xi - a * MU[j])) / c);
    const eps = row.map((xi, j) => (xi - a * x0[j]) / s);
    out.score.push(sc);
    out.x0.push(x0);
    out.eps.push(eps);
    out.v.push(eps.map((e, j) => a * e - s * x0[j]));
  });
  return out;
}

async function rows(x: tf.Tensor): Promise<number[][]> {
  const v = await x.data();
  const D = x.shape[1] ?? 1;
  return Array.from({ length: x.shape[0] }, (_, i) => Array.from(v.subarray(i * D, (i + 1) * D)));
}
/** rows() of a result this test owns, then disposed. */
async function take(x: tf.Tensor): Promise<number[][]> {
  try {
    return await rows(x);
  } finally {
    x.dispose();
  }
}

/** Largest |got − want| / tol over all elements (≤ 1 passes). */
function worst(got: number[][], want: number[][], tol: (i: number, j: number) => number): number {
  let r = 0;
  got.forEach((row, i) => row.forEach((g, j) => (r = Math.max(r, Math.abs(g - want[i][j]) / tol(i, j)))));
  return r;
}

const mixture = new GaussianMixture({
  weights: [0.5, 0.3, 0.2],
  means: [
    [-1.5, 0.5],
    [1, 1],
    [0.5, -2],
  ],
  covariances: [
    [
      [0.5, 0.2],
      [0.2, 0.4],
    ],
    [
      [0.3, 0],
      [0, 0.6],
    ],
    [
      [0.8, -0.3],
      [-0.3, 0.5],
    ],
  ],
});

describeWithBackends(
  'model-output adapters',
  () => {
    for (const sde of sdes) {
      it(`${sde.name}: from* on exact ε̂ / x̂₀ / v̂ / D and to* on the exact score match the closed forms (per-sample t)`, async () => {
        const before = countTensors();
        const { x, t } = points(sde);
        const ex = gaussExact(sde, x, t);
        const xT = tf.tensor2d(x);
        const tT = tf.tensor1d(t);
        // A network that returns the exact float64 target (rounded to float32) at these points.
        const fixed =
          (vals: number[][]): NetworkFn =>
          () =>
            tf.tensor2d(vals);
        const exactScore: ScoreFn = () => tf.tensor2d(ex.score);
        const denoiser: NetworkFn = (xt, sig) =>
          tf.tidy(() => {
            const s2 = tf.square(sig).reshape([-1, 1]);
            const mu = tf.tensor2d([MU]);
            return tf.add(mu, tf.div(tf.mul(V0, tf.sub(xt, mu)), tf.add(V0, s2)));
          });
        const A = (i: number) => sde.alpha(t[i]);
        const S = (i: number) => sde.std(t[i]);
        const tolEps = (i: number, j: number) => 1e-5 * (1 + Math.abs(ex.score[i][j]));
        // x̂₀-type: 16 roundings of the terms of α x̂₀ − x (the denoiser's own ops on x̃ and μ included), over σ².
        const tolX0 = (i: number, j: number) =>
          tolEps(i, j) + (16 * U * (Math.abs(x[i][j]) + A(i) * (Math.abs(ex.x0[i][j]) + Math.abs(MU[j])))) / S(i) ** 2;
        // toX0 = (x + σ² s)/α and toV = −(σ/α)((α² + σ²) s + x) cancel at large t, where α is small (VP α(1) ≈ 0.0066).
        const tolToX0 = (i: number, j: number) =>
          1e-5 * (1 + Math.abs(ex.x0[i][j])) +
          (8 * U * (Math.abs(x[i][j]) + S(i) ** 2 * Math.abs(ex.score[i][j]))) / A(i);
        const tolToV = (i: number, j: number) =>
          1e-5 * (1 + Math.abs(ex.v[i][j])) +
          (8 * U * S(i) * (Math.abs(x[i][j]) + (A(i) ** 2 + S(i) ** 2) * Math.abs(ex.score[i][j]))) / A(i);
        const cases: [string, ScoreFn | ((x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor), number[][], typeof tolEps][] = [
          ['fromEpsilon', fromEpsilon(sde, fixed(ex.eps)), ex.score, tolEps],
          ['fromV', fromV(sde, fixed(ex.v)), ex.score, tolEps],
          ['fromX0', fromX0(sde, fixed(ex.x0)), ex.score, tolX0],
          ['fromDenoiser', fromDenoiser(sde, denoiser), ex.score, tolX0],
          ['fromScore', fromScore(sde, fixed(ex.score)), ex.score, tolEps],
          ['toEpsilon', toEpsilon(sde, exactScore), ex.eps, (i, j) => 1e-5 * (1 + Math.abs(ex.eps[i][j]))],
          ['toX0', toX0(sde, exactScore), ex.x0, tolToX0],
          ['toV', toV(sde, exactScore), ex.v, tolToV],
        ];
        const report: string[] = [];
        for (const [name, fn, want, tol] of cases) {
          const out = fn(xT, tT);
          const r = worst(await rows(out), want, tol);
          out.dispose();
          report.push(`${name} ${r.toFixed(3)}`);
          expect(r, `${sde.name} ${name}: error / tolerance`).toBeLessThanOrEqual(1);
        }
        console.log(`[adapters] ${sde.name} closed forms, error/tol: ${report.join(', ')}`);
        tf.dispose([xT, tT]);
        expect(countTensors()).toBe(before);
      });

      it(`${sde.name}: every adapter round-trips the exact mixture score (per-sample t)`, async () => {
        const before = countTensors();
        const { x, t } = points(sde, 7);
        const xT = tf.tensor2d(x);
        const tT = tf.tensor1d(t);
        const exact = mixture.perturbed(sde).scoreFn;
        const s = await take(exact(xT, tT));
        const x0Exact = x.map((row, i) => row.map((xi, j) => (xi + sde.std(t[i]) ** 2 * s[i][j]) / sde.alpha(t[i])));
        // The denoiser of the mixture: D(x̃, σ̃) = x̂₀(α x̃, t) with t = t(σ̃) (test-only readback of σ̃).
        const mixDenoiser: NetworkFn = (xt, sig) => {
          const ts = Array.from(sig.dataSync()).map((v) => sde.tFromEdmSigma(v));
          return tf.tidy(() => {
            const tt = tf.tensor1d(ts);
            return toX0(sde, exact)(tf.mul(xt, sde.alphaT(tt).reshape([-1, 1])), tt);
          });
        };
        const tolEps = (i: number, j: number) => 1e-5 * (1 + Math.abs(s[i][j]));
        const tolX0 = (i: number, j: number) =>
          tolEps(i, j) + (8 * U * (Math.abs(x[i][j]) + sde.alpha(t[i]) * Math.abs(x0Exact[i][j]))) / sde.std(t[i]) ** 2;
        // σ̃ goes through float32 in the denoiser round trip: t(σ̃) moves by ≈ u·σ̃/σ̃'(t); the score's t-derivative
        // is bounded by |ds/dt| ≲ |s|·|d ln c/dt|, far below the x̂₀ term at these points — covered by tolX0.
        const cases: [string, ScoreFn, typeof tolEps][] = [
          ['eps', fromEpsilon(sde, toEpsilon(sde, exact)), tolEps],
          ['v', fromV(sde, toV(sde, exact)), tolEps],
          ['x0', fromX0(sde, toX0(sde, exact)), tolX0],
          ['denoiser', fromDenoiser(sde, mixDenoiser), tolX0],
          ['score', fromScore(sde, exact), tolEps],
        ];
        const report: string[] = [];
        for (const [name, fn, tol] of cases) {
          const out = fn(xT, tT);
          const r = worst(await rows(out), s, tol);
          out.dispose();
          report.push(`${name} ${r.toFixed(3)}`);
          expect(r, `${sde.name} ${name} round trip: error / tolerance`).toBeLessThanOrEqual(1);
        }
        console.log(`[adapters] ${sde.name} round trips, error/tol: ${report.join(', ')}`);
        tf.dispose([xT, tT]);
        expect(countTensors()).toBe(before);
      });

      it(`${sde.name}: timeInput gives the network t, σ(t), σ(t)/α(t) or t·(N − 1)`, async () => {
        const { t } = points(sde);
        const xT = tf.zeros([t.length, 2]);
        const tT = tf.tensor1d(t);
        const seen: number[][] = [];
        const net: NetworkFn = (x, c) => {
          seen.push(Array.from(c.dataSync()));
          return tf.onesLike(x);
        };
        const want: [string, Parameters<typeof fromEpsilon>[2], (ti: number) => number][] = [
          ['default', undefined, (ti) => ti],
          ['t', { timeInput: 't' }, (ti) => ti],
          ['sigma', { timeInput: 'sigma' }, (ti) => sde.std(ti)],
          ['edm-sigma', { timeInput: 'edm-sigma' }, (ti) => sde.edmSigma(ti)],
          ['discrete', { timeInput: 'discrete' }, (ti) => ti * 999],
          ['discrete N=50', { timeInput: 'discrete', N: 50 }, (ti) => ti * 49],
          ['function', { timeInput: (tt) => tf.log(tt) }, (ti) => Math.log(ti)],
        ];
        for (const [label, opts, f] of want) {
          seen.length = 0;
          tf.dispose(fromEpsilon(sde, net, opts)(xT, tT));
          seen[0].forEach((c, i) =>
            expect(Math.abs(c - f(t[i])), `${label} at t = ${t[i]}`).toBeLessThanOrEqual(
              2e-6 * (1 + Math.abs(f(t[i]))),
            ),
          );
        }
        // The denoiser sees x/α and σ̃ by default.
        let seenX: number[] = [];
        const d: NetworkFn = (x, c) => {
          seenX = Array.from(x.dataSync());
          seen.push(Array.from(c.dataSync()));
          return tf.zerosLike(x);
        };
        seen.length = 0;
        const ones = tf.onesLike(xT);
        tf.dispose(fromDenoiser(sde, d)(ones, tT));
        t.forEach((ti, i) => {
          expect(seen[0][i]).toBeCloseTo(sde.edmSigma(ti), 4);
          expect(seenX[2 * i] * sde.alpha(ti)).toBeCloseTo(1, 5);
        });
        tf.dispose([xT, tT, ones]);
      });
    }

    it('bad input gives an SbmError naming the argument; wrong shapes INVALID_SHAPE; nothing leaks', () => {
      const sde = new VpSde();
      const ok: NetworkFn = (x) => tf.zerosLike(x);
      expectThrowsSbm(() => fromEpsilon(sde, 'net' as never), 'INVALID_ARGUMENT', /^epsFn: .*a function/);
      expectThrowsSbm(() => fromX0({} as never, ok), 'INVALID_ARGUMENT', /^sde: /);
      expectThrowsSbm(() => fromV(sde, undefined as never), 'INVALID_ARGUMENT', /^vFn: /);
      expectThrowsSbm(() => fromDenoiser(sde, 3 as never), 'INVALID_ARGUMENT', /^denoiser: /);
      expectThrowsSbm(() => fromScore(sde, null as never), 'INVALID_ARGUMENT', /^score: /);
      expectThrowsSbm(() => toV(sde, null as never), 'INVALID_ARGUMENT', /^score: /);
      expectThrowsSbm(
        () => fromEpsilon(sde, ok, { timeinput: 'sigma' } as never),
        'INVALID_ARGUMENT',
        /unknown option "timeinput" \(did you mean "timeInput"\?\)/,
      );
      expectThrowsSbm(() => fromEpsilon(sde, ok, { timeInput: 'steps' as never }), 'UNKNOWN_NAME', /^timeInput: /);
      expectThrowsSbm(() => fromEpsilon(sde, ok, { timeInput: 'sigma', N: 1000 }), 'INVALID_ARGUMENT', /^N: /);
      expectThrowsSbm(() => fromEpsilon(sde, ok, { timeInput: 'discrete', N: 1 }), 'INVALID_ARGUMENT', /^N: /);
      expectThrowsSbm(() => fromEpsilon(sde, ok, { timeInput: 'discrete', N: 2.5 }), 'INVALID_ARGUMENT', /^N: /);

      const before = countTensors();
      const x = tf.zeros([3, 2]);
      const t = tf.fill([3], 0.5) as tf.Tensor1D;
      const wrong = fromEpsilon(sde, (xx) => tf.zeros([xx.shape[0], 1]));
      expectThrowsSbm(() => wrong(x, t), 'INVALID_SHAPE', /^epsFn: expected the ε network to return .*\[3, 2\]/);
      const nonTensor = fromX0(sde, () => 1 as never);
      expectThrowsSbm(() => nonTensor(x, t), 'INVALID_SHAPE', /^x0Fn: /);
      const badT = tf.fill([2], 0.5) as tf.Tensor1D;
      expectThrowsSbm(() => fromV(sde, ok)(x, badT), 'INVALID_SHAPE', /^t: /);
      const badLabel = fromEpsilon(sde, ok, { timeInput: () => tf.zeros([1]) as tf.Tensor1D });
      expectThrowsSbm(() => badLabel(x, t), 'INVALID_SHAPE', /^timeInput: /);
      // An exception of the network propagates unchanged and leaves nothing behind.
      const boom = new Error('network failed');
      const throwing = fromDenoiser(sde, (xx) => {
        tf.ones(xx.shape);
        throw boom;
      });
      expect(() => throwing(x, t)).toThrow(boom);
      tf.dispose([x, t, badT]);
      expect(countTensors()).toBe(before);
    });
  },
  { backends: ['cpu', 'wasm'] },
);

// ---- classifier-free guidance ---------------------------------------------------------------------------------------

// Two classes in 2-D: N(±2 e₁, 0.25 I) with weights ½; the unconditional model is their mixture, class 1's
// conditional model its component N(+2 e₁, 0.25 I). Scores in float64 for the closed-form check.
const CLASS_MEANS = [
  [-2, 0],
  [2, 0],
];
const CLASS_VAR = 0.25;
const uncondMix = new GaussianMixture({ weights: [0.5, 0.5], means: CLASS_MEANS, covariances: [CLASS_VAR, CLASS_VAR] });
const classMix = CLASS_MEANS.map((m) => new GaussianMixture({ weights: [1], means: [m], covariances: [CLASS_VAR] }));

function isoMixtureScore64(weights: number[], means: number[][], v: number, a: number, s: number, x: number[]) {
  const c = a * a * v + s * s;
  const logw = means.map(
    (m, k) => Math.log(weights[k]) - m.reduce((acc, mj, j) => acc + (x[j] - a * mj) ** 2, 0) / (2 * c),
  );
  const mx = Math.max(...logw);
  const r = logw.map((l) => Math.exp(l - mx));
  const z = r.reduce((p, q) => p + q, 0);
  return x.map((xj, j) => -means.reduce((acc, m, k) => acc + (r[k] / z) * (xj - a * m[j]), 0) / c);
}

describeWithBackends(
  'classifier-free guidance',
  () => {
    const sde = new VpSde();
    const uncond = uncondMix.perturbed(sde).scoreFn;
    const cond = classMix[1].perturbed(sde).scoreFn;
    // One conditional network: label tensor [B] of class ids (0 or 1), or null for the unconditional branch.
    const calls: number[] = [];
    const conditional = (x: tf.Tensor, t: tf.Tensor1D, label: tf.Tensor | null): tf.Tensor => {
      calls.push(x.shape[0]);
      if (label === null) return uncond(x, t);
      return tf.tidy(() => {
        const s0 = classMix[0].perturbed(sde).scoreFn(x, t);
        const s1 = classMix[1].perturbed(sde).scoreFn(x, t);
        const isNull = tf.equal(label, -1).reshape([-1, 1]);
        const is1 = tf.equal(label, 1).reshape([-1, 1]);
        return tf.where(isNull, uncond(x, t), tf.where(is1, s1, s0));
      });
    };

    it('w = 0 / 1 give the unconditional / conditional score; w = 2 and w = −0.5 the closed form; the one-network forms agree', async () => {
      const before = countTensors();
      const t = [0.01, 0.05, 0.2, 0.5, 0.8, 1, 0.3, 0.1];
      const x = t.map((_, i) => [((i * 1.37) % 5) - 2.5, ((i * 0.71) % 2) - 1]);
      const xT = tf.tensor2d(x);
      const tT = tf.tensor1d(t);
      const su = await take(uncond(xT, tT));
      const sc = await take(cond(xT, tT));
      expect(await take(cfg(uncond, cond, 0)(xT, tT))).toEqual(su);
      expect(await take(cfg(uncond, cond, 1)(xT, tT))).toEqual(sc);
      const labels = tf.fill([t.length], 1);
      const nulls = tf.fill([t.length], -1);
      for (const w of [2, -0.5, 7.5]) {
        const want = x.map((row, i) => {
          const a = sde.alpha(t[i]);
          const s = sde.std(t[i]);
          const u = isoMixtureScore64([0.5, 0.5], CLASS_MEANS, CLASS_VAR, a, s, row);
          const c = isoMixtureScore64([1], [CLASS_MEANS[1]], CLASS_VAR, a, s, row);
          return row.map((_, j) => u[j] + w * (c[j] - u[j]));
        });
        const tol = (i: number, j: number) => 1e-5 * (1 + Math.abs(want[i][j]));
        const two = await take(cfg(uncond, cond, w)(xT, tT));
        expect(worst(two, want, tol), `w = ${w}`).toBeLessThanOrEqual(1);
        calls.length = 0;
        const one = await take(cfg(conditional, { condition: labels, w })(xT, tT));
        expect(calls).toEqual([t.length, t.length]);
        calls.length = 0;
        const batched = await take(
          cfg(conditional, { condition: labels, nullCondition: nulls, w, batched: true })(xT, tT),
        );
        expect(calls).toEqual([2 * t.length]); // one call on the doubled batch
        expect(worst(one, want, tol), `w = ${w}, one network`).toBeLessThanOrEqual(1);
        expect(worst(batched, want, tol), `w = ${w}, batched`).toBeLessThanOrEqual(1);
      }
      tf.dispose([xT, tT, labels, nulls]);
      expect(countTensors()).toBe(before);
    });

    it('sampling with cfg: w = 0 gives both classes ½–½, w = 1 exactly class 1, w = 3 pulls further to class 1', async () => {
      const n = tf.getBackend() === 'cpu' ? 300 : 1000;
      const run = async (w: number) => {
        const { samples } = await sample({
          sampler: 'dpm-solver',
          sde,
          score: cfg(uncond, cond, w),
          shape: [n, 2],
          seed: 5,
          steps: 30,
        });
        const r = await rows(samples);
        samples.dispose();
        return r;
      };
      const before = countTensors();
      const share1 = (r: number[][]) => r.filter((p) => p[0] > 0).length / r.length;
      const meanX = (r: number[][]) => r.reduce((a, p) => a + p[0], 0) / r.length;
      const r0 = await run(0);
      const r1 = await run(1);
      const r3 = await run(3);
      const p0 = share1(r0);
      const m = momentErrors(r1, CLASS_MEANS[1], [
        [CLASS_VAR, 0],
        [0, CLASS_VAR],
      ]);
      console.log(
        `[cfg] n ${n}: class-1 share w=0 ${p0.toFixed(3)}, w=1 ${share1(r1).toFixed(3)} (mean z ${m.meanZ.toFixed(2)}, cov z ${m.covZ.toFixed(2)}), w=3 ${share1(r3).toFixed(3)}; mean x₁ w=1 ${meanX(r1).toFixed(3)}, w=3 ${meanX(r3).toFixed(3)}`,
      );
      // w = 0: a Binomial(n, ½) share, 4 standard errors.
      expect(Math.abs(p0 - 0.5)).toBeLessThanOrEqual(4 * Math.sqrt(0.25 / n));
      // w = 1: class 1's component N((2, 0), 0.25 I); a point of it lands at x₁ < 0 with probability Φ(−4) ≈ 3e-5.
      expect(share1(r1)).toBe(1);
      expect(m.meanZ).toBeLessThanOrEqual(4);
      expect(m.covZ).toBeLessThanOrEqual(4);
      // w = 3 (guidance): still class 1, pushed away from class 0.
      expect(share1(r3)).toBe(1);
      expect(meanX(r3)).toBeGreaterThan(meanX(r1));
      expect(countTensors()).toBe(before);
    });

    it('bad input names the argument; a throwing branch or an abort leaves no tensors', async () => {
      const f: ScoreFn = (x) => tf.zerosLike(x);
      expectThrowsSbm(() => cfg('u' as never, f, 1), 'INVALID_ARGUMENT', /^uncond: /);
      expectThrowsSbm(() => cfg(f, 'c' as never, 1), 'INVALID_ARGUMENT', /^cond: /);
      expectThrowsSbm(() => cfg(f, f, NaN), 'INVALID_ARGUMENT', /^w: /);
      expectThrowsSbm(() => cfg(f, f, Infinity), 'INVALID_ARGUMENT', /^w: /);
      expectThrowsSbm(() => cfg(f, f, undefined as never), 'INVALID_ARGUMENT', /^w: /);
      expectThrowsSbm(() => cfg(conditional, { w: 2 } as never), 'INVALID_ARGUMENT', /^condition: /);
      expectThrowsSbm(
        () => cfg(conditional, { condition: null, w: 2, scale: 1 } as never),
        'INVALID_ARGUMENT',
        /unknown option "scale"/,
      );
      expectThrowsSbm(
        () => cfg(conditional, { condition: 1 as never, w: 2, batched: true }),
        'INVALID_ARGUMENT',
        /^condition: .*tensor/,
      );
      const before = countTensors();
      const x = tf.zeros([4, 2]);
      const t = tf.fill([4], 0.5) as tf.Tensor1D;
      const c3 = tf.fill([3], 1);
      const n3 = tf.fill([3], -1);
      expectThrowsSbm(
        () => cfg(conditional, { condition: c3, nullCondition: n3, w: 2, batched: true })(x, t),
        'INVALID_SHAPE',
        /^condition: .*batch size 4/,
      );
      expectThrowsSbm(() => cfg(f, (xx) => tf.zeros([xx.shape[0]]), 2)(x, t), 'INVALID_SHAPE', /^cond: /);
      const boom = new Error('cond failed');
      expect(() =>
        cfg(
          uncond,
          () => {
            throw boom;
          },
          2,
        )(x, t),
      ).toThrow(boom);
      // Through a sampler: the error propagates and the driver frees everything; an abort likewise.
      let k = 0;
      const failing = cfg(
        uncond,
        (xx, tt) => {
          if (++k === 3) throw boom;
          return cond(xx, tt);
        },
        2,
      );
      await expect(
        sample({ sampler: 'dpm-solver', sde, score: failing, shape: [16, 2], seed: 1, steps: 10 }),
      ).rejects.toBe(boom);
      const ac = new AbortController();
      const p = sample({
        sampler: 'dpm-solver',
        sde,
        score: cfg(uncond, cond, 2),
        shape: [16, 2],
        seed: 1,
        steps: 10,
        signal: ac.signal,
        onProgress: (q) => {
          if (q.step === 2) ac.abort();
        },
      });
      await expect(p).rejects.toSatisfy((e) => isSbmError(e, 'ABORTED'));
      tf.dispose([x, t, c3, n3]);
      expect(countTensors()).toBe(before);
    });
  },
  { backends: ['cpu', 'wasm'] },
);

// ---- thresholding ---------------------------------------------------------------------------------------------------

/** numpy / torch.quantile's default ('linear'): v sorted ascending, position p (n − 1), linear between neighbours. */
function quantile64(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  const pos = p * (v.length - 1);
  const i = Math.floor(pos);
  return i + 1 < v.length ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}
/** diffusers' _threshold_sample on one flattened sample, float64. */
function threshold64(row: number[], p: number, maxValue: number): number[] {
  const s = Math.min(Math.max(quantile64(row.map(Math.abs), p), 1), maxValue);
  return row.map((v) => Math.min(Math.max(v, -s), s) / s);
}

describeWithBackends(
  'dynamic and static thresholding',
  () => {
    it('thresholdX0 follows Imagen / diffusers per sample (percentile, maxValue), any rank', async () => {
      const before = countTensors();
      // 4 samples of shape [3, 3, 2] (n = 18): one in range, three with outliers of different sizes.
      const B = 4;
      const n = 18;
      const flat = Array.from({ length: B }, (_, b) =>
        Array.from({ length: n }, (_, j) => {
          const base = Math.sin(1.7 * j + b) * 0.9;
          return b === 0 ? base : base * (1 + b * 0.8) + (j === 5 ? 2.5 * b : 0);
        }),
      );
      const x0 = tf.tensor4d(flat.flat(), [B, 3, 3, 2]);
      const report: string[] = [];
      for (const p of [0.995, 0.9, 0.5, 1]) {
        for (const maxValue of [1, 1.5, Infinity]) {
          const got = await take(tf.tidy(() => thresholdX0(x0, { percentile: p, maxValue }).reshape([B, n])));
          const want = flat.map((r) => threshold64(r, p, maxValue));
          const r = worst(got, want, () => 1e-6);
          report.push(r.toFixed(2));
          expect(r, `p ${p}, maxValue ${maxValue}`).toBeLessThanOrEqual(1);
        }
      }
      // The in-range sample (max |x̂₀| = 0.9 < 1) comes back unchanged under every setting.
      const same = await take(tf.tidy(() => thresholdX0(x0, { maxValue: Infinity }).reshape([B, n])));
      expect(same[0]).toEqual(Array.from(Float32Array.from(flat[0])));
      console.log(`[threshold] error/1e-6 over 12 settings: max ${Math.max(...report.map(Number)).toFixed(2)}`);
      x0.dispose();
      expect(countTensors()).toBe(before);
    });

    for (const sde of sdes) {
      it(`${sde.name}: dynamicThresholding / clipX0 leave an in-range x̂₀'s score bit-identical and clamp an out-of-range one`, async () => {
        const before = countTensors();
        // Data in [−1, 1]: two tight components at ±0.5. Row 0: x near data at small t (x̂₀ in range). Rows 1–2: x̂₀
        // out of range, from an x₀-network that predicts 1.8·(data-ish) values at a moderate t.
        const data = new GaussianMixture({
          weights: [0.5, 0.5],
          means: [
            [-0.5, 0.5],
            [0.5, -0.5],
          ],
          covariances: [0.01, 0.01],
        });
        const exact = data.perturbed(sde).scoreFn;
        const t = [0.05, 0.5, 0.5];
        const a = t.map((ti) => sde.alpha(ti));
        const xIn = [-0.5 * a[0], 0.5 * a[0]];
        const x0Out = [
          [1.8, -0.4],
          [-3, 2.2],
        ];
        const x = [xIn, x0Out[0].map((v) => v * a[1] * 0.9), x0Out[1].map((v) => v * a[2] * 1.1)];
        const xT = tf.tensor2d(x);
        const tT = tf.tensor1d(t);
        // Row 0 uses the exact score; rows 1–2 an x̂₀ network returning x0Out.
        const mixed: ScoreFn = (xx, tt) =>
          tf.tidy(() => {
            const fake = fromX0(sde, () => tf.tensor2d([xIn, ...x0Out]))(xx, tt);
            return tf.concat([exact(xx, tt).slice([0, 0], [1, 2]), fake.slice([1, 0], [2, 2])], 0);
          });
        const s = await take(mixed(xT, tT));
        const x0 = await take(toX0(sde, mixed)(xT, tT));
        expect(Math.max(...x0[0].map(Math.abs)), 'row 0 is in range').toBeLessThan(1);
        for (const [label, wrapped, f] of [
          [
            'dynamic p .995 max ∞',
            dynamicThresholding(sde, mixed, { maxValue: Infinity }),
            (r: number[]) => threshold64(r, 0.995, Infinity),
          ],
          [
            'dynamic p .5 max 2',
            dynamicThresholding(sde, mixed, { percentile: 0.5, maxValue: 2 }),
            (r: number[]) => threshold64(r, 0.5, 2),
          ],
          ['dynamic defaults', dynamicThresholding(sde, mixed), (r: number[]) => threshold64(r, 0.995, 1)],
          ['clip [−1, 1]', clipX0(sde, mixed), (r: number[]) => r.map((v) => Math.min(Math.max(v, -1), 1))],
          [
            'clip [−2, 0.5]',
            clipX0(sde, mixed, [-2, 0.5]),
            (r: number[]) => r.map((v) => Math.min(Math.max(v, -2), 0.5)),
          ],
        ] as const) {
          const out = await take(wrapped(xT, tT));
          if (!label.startsWith('clip [−2')) expect(out[0], `${label}: row 0 untouched`).toEqual(s[0]);
          // Rows 1–2: the score whose x̂₀ is the thresholded one, s' = (α f(x̂₀) − x)/σ² (float64 from the float32 x̂₀).
          for (const i of [1, 2]) {
            const target = f(x0[i]);
            const sd = sde.std(t[i]);
            const want = target.map((v, j) => (a[i] * v - x[i][j]) / sd ** 2);
            want.forEach((w, j) =>
              expect(Math.abs(out[i][j] - w), `${label} row ${i}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(w))),
            );
          }
        }
        tf.dispose([xT, tT]);
        expect(countTensors()).toBe(before);
      });
    }

    it('bad options name the argument', () => {
      const sde = new VpSde();
      const f: ScoreFn = (x) => tf.zerosLike(x);
      for (const p of [0, -0.1, 1.5, NaN]) {
        expectThrowsSbm(() => dynamicThresholding(sde, f, { percentile: p }), 'INVALID_ARGUMENT', /^percentile: /);
      }
      expectThrowsSbm(() => dynamicThresholding(sde, f, { maxValue: 0.5 }), 'INVALID_ARGUMENT', /^maxValue: /);
      expectThrowsSbm(
        () => dynamicThresholding(sde, f, { ratio: 0.9 } as never),
        'INVALID_ARGUMENT',
        /unknown option "ratio"/,
      );
      expectThrowsSbm(() => dynamicThresholding(sde, 'f' as never), 'INVALID_ARGUMENT', /^score: /);
      expectThrowsSbm(() => dynamicThresholding(null as never, f), 'INVALID_ARGUMENT', /^sde: /);
      expectThrowsSbm(() => clipX0(sde, f, [1, -1]), 'INVALID_ARGUMENT', /^range\[1\]: /);
      expectThrowsSbm(() => clipX0(sde, f, [NaN, 1]), 'INVALID_ARGUMENT', /^range\[0\]: /);
      expectThrowsSbm(() => clipX0(sde, f, 1 as never), 'INVALID_ARGUMENT', /^range: /);
      const v = tf.zeros([3]);
      expectThrowsSbm(() => thresholdX0(v, {}), 'INVALID_ARGUMENT', /^x0: /);
      v.dispose();
    });
  },
  { backends: ['cpu', 'wasm'] },
);
