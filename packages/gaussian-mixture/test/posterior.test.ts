import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SeedStream, countTensors } from '@sbm/core';
import { VpSde, VeSde } from '@sbm/sde';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { GaussianMixture, gaussian2d, mixture16d, mixture2d } from '@sbm/gaussian-mixture';
import { referenceLogProbAndScore } from './reference';

// ---------- independent float64 helpers (Gauss–Jordan inverse, no Kalman form, no eigendecomposition) ----------

type M = number[][];
const T = (a: M): M => a[0].map((_, j) => a.map((row) => row[j]));
const mul = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, v, l) => s + v * b[l][j], 0)));
const mv = (a: M, x: number[]): number[] => a.map((row) => row.reduce((s, v, l) => s + v * x[l], 0));
const add = (a: M, b: M): M => a.map((row, i) => row.map((v, j) => v + b[i][j]));
const eye = (n: number): M => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (__, j) => +(i === j)));

/** Inverse by Gauss–Jordan elimination with partial pivoting. */
function inv(a: M): M {
  const n = a.length;
  const w = a.map((row, i) => [...row, ...eye(n)[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(w[r][c]) > Math.abs(w[p][c])) p = r;
    [w[c], w[p]] = [w[p], w[c]];
    const d = w[c][c];
    for (let j = 0; j < 2 * n; j++) w[c][j] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = w[r][c];
      for (let j = 0; j < 2 * n; j++) w[r][j] -= f * w[c][j];
    }
  }
  return w.map((row) => row.slice(n));
}

/** log-determinant of an SPD matrix by Gaussian elimination (product of pivots). */
function logDet(a: M): number {
  const w = a.map((r) => r.slice());
  const n = w.length;
  let s = 0;
  for (let c = 0; c < n; c++) {
    s += Math.log(w[c][c]);
    for (let r = c + 1; r < n; r++) {
      const f = w[r][c] / w[c][c];
      for (let j = c; j < n; j++) w[r][j] -= f * w[c][j];
    }
  }
  return s;
}

function logNormal(x: number[], mu: number[], cov: M): number {
  const d = x.map((v, i) => v - mu[i]);
  const q = mv(inv(cov), d).reduce((s, v, i) => s + v * d[i], 0);
  return -0.5 * (x.length * Math.log(2 * Math.PI) + logDet(cov) + q);
}

function logSumExp(v: number[]): number {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((s, e) => s + Math.exp(e - m), 0));
}

function normals(stream: SeedStream, n: number): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const r = Math.sqrt(-2 * Math.log(1 - stream.uniform()));
    const a = 2 * Math.PI * stream.uniform();
    out.push(r * Math.cos(a), r * Math.sin(a));
  }
  return out.slice(0, n);
}

/** The posterior by the information form, S = (Σ⁻¹ + Aᵀ Σ_y⁻¹ A)⁻¹, m = S (Aᵀ Σ_y⁻¹ y + Σ⁻¹ μ), per component. */
function informationForm(g: GaussianMixture, A: M, y: number[], noiseCov: M) {
  const Ry = inv(noiseCov);
  const AtRy = mul(T(A), Ry);
  const covs = g.covariances;
  const logw = g.weights.map(
    (w, k) => Math.log(w) + logNormal(y, mv(A, g.means[k]), add(noiseCov, mul(mul(A, covs[k]), T(A)))),
  );
  const lz = logSumExp(logw);
  return {
    logEvidence: lz,
    weights: logw.map((l) => Math.exp(l - lz)),
    comps: covs.map((Sig, k) => {
      const P = inv(Sig);
      const S = inv(add(P, mul(AtRy, A)));
      const rhs = mv(AtRy, y).map((v, i) => v + mv(P, g.means[k])[i]);
      return { mean: mv(S, rhs), cov: S };
    }),
  };
}

const maxAbs = (a: number[] | M): number =>
  Math.max(...(a as (number | number[])[]).flat().map((v) => Math.abs(v as number)));
const diff = (a: M, b: M): M => a.map((row, i) => row.map((v, j) => v - b[i][j]));
const vdiff = (a: number[], b: number[]): number[] => a.map((v, i) => v - b[i]);

/** A seeded m×D Gaussian matrix. */
function randomMatrix(m: number, D: number, seed: number): M {
  const z = normals(new SeedStream(seed), m * D);
  return Array.from({ length: m }, (_, i) => z.slice(i * D, (i + 1) * D));
}

/** One float64 draw of the prior (component 0's mean plus its Cholesky-free eigen factor): a plausible x₀. */
function priorPoint(g: GaussianMixture, seed: number): number[] {
  const k = 0;
  const z = normals(new SeedStream(seed), g.dim);
  const S = g.covariances[k];
  // x = μ + 0.5 S z: inside the component's bulk, no factorization needed.
  return g.means[k].map((v, i) => v + 0.5 * S[i].reduce((s, e, l) => s + e * z[l], 0));
}

// -------------------------------------------------------------------------------------------------------------

describe('GaussianMixture#condition: closed forms', () => {
  it('single Gaussian: the textbook posterior and evidence (3-D, full noise matrix) to 1e-12', () => {
    const g = new GaussianMixture({
      weights: [1],
      means: [[1, -2, 0.5]],
      covariances: [
        [
          [2, 0.3, -0.4],
          [0.3, 1, 0.2],
          [-0.4, 0.2, 0.7],
        ],
      ],
    });
    const A = [
      [1, 0.5, -1],
      [0, 2, 0.3],
    ];
    const noise = [
      [0.2, 0.05],
      [0.05, 0.1],
    ];
    const y = [0.4, -3];
    const post = g.condition({ A, y, noise });
    const ref = informationForm(g, A, y, noise);
    expect(post.numComponents).toBe(1);
    expect(maxAbs(vdiff(post.means[0], ref.comps[0].mean))).toBeLessThan(1e-12);
    expect(maxAbs(diff(post.covariances[0], ref.comps[0].cov))).toBeLessThan(1e-12);
    expect(Math.abs(g.logEvidence({ A, y, noise }) - ref.logEvidence)).toBeLessThan(1e-12);
    expect(post.singular).toBe(false);
  });

  it('σ_y, a variance vector and the equivalent matrix give the same posterior', () => {
    const g = mixture2d();
    const A = [
      [0.7, -0.4],
      [0.2, 1.1],
    ];
    const y = [0.9, 1.4];
    const a = g.condition({ A, y, noise: 0.3 });
    const b = g.condition({ A, y, noise: [0.09, 0.09] });
    const c = g.condition({
      A,
      y,
      noise: [
        [0.09, 0],
        [0, 0.09],
      ],
    });
    for (const other of [b, c]) {
      expect(other.weights).toEqual(a.weights);
      expect(other.means).toEqual(a.means);
    }
  });

  it('1-D: the weights follow π_k N(y; a μ_k, σ² + a² v_k) in closed form', () => {
    const g = new GaussianMixture({ weights: [0.3, 0.7], means: [[-1], [2]], covariances: [0.5, 2] });
    const a = 1.5;
    const s = 0.4;
    const y = 0.7;
    const post = g.condition({ A: [[a]], y: [y], noise: s });
    const n = (mu: number, v: number): number => Math.exp(-((y - a * mu) ** 2) / (2 * v)) / Math.sqrt(2 * Math.PI * v);
    const p = [0.3 * n(-1, s * s + a * a * 0.5), 0.7 * n(2, s * s + a * a * 2)];
    expect(Math.abs(post.weights[0] - p[0] / (p[0] + p[1]))).toBeLessThan(1e-14);
    expect(Math.abs(g.logEvidence({ A: [[a]], y: [y], noise: s }) - Math.log(p[0] + p[1]))).toBeLessThan(1e-14);
    // component 0: precision 1/0.5 + a²/s², mean (a y / s² + μ/v)/precision
    const prec = 1 / 0.5 + (a * a) / (s * s);
    expect(Math.abs(post.covariances[0][0][0] - 1 / prec)).toBeLessThan(1e-14);
    expect(Math.abs(post.means[0][0] - ((a * y) / (s * s) + -1 / 0.5) / prec)).toBeLessThan(1e-14);
  });

  it('a measurement near one component moves the weight there', () => {
    const g = mixture2d();
    for (let k = 0; k < g.numComponents; k++) {
      const post = g.condition({ A: eye(2), y: g.means[k], noise: 0.1 });
      // prior weights 0.15–0.25; the posterior puts > 99 % on the component measured at its mean
      expect(post.weights[k], `component ${k}`).toBeGreaterThan(0.99);
      expect(post.weights.indexOf(Math.max(...post.weights))).toBe(k);
    }
    // and a far-off measurement along x₁ = 0 only (the first coordinate unobserved) splits by the x₂ marginals
    const post = g.condition({ A: [[0, 1]], y: [3], noise: 0.05 });
    const top = post.weights.indexOf(Math.max(...post.weights));
    expect(top).toBe(3); // μ₃ = (−2, 3): the component sitting at x₂ = 3
  });
});

describe('GaussianMixture#condition: Bayes by brute force', () => {
  it('1-D grid: posterior density = p(x) p(y | x) / p(y) to 1e-9, p(y) = ∫ p(x) p(y | x) dx by quadrature', () => {
    const g = new GaussianMixture({
      weights: [0.2, 0.5, 0.3],
      means: [[-3], [0.5], [2.5]],
      covariances: [0.6, 1.2, 0.3],
    });
    const a = 0.8;
    const s = 0.5;
    const y = 1.3;
    const meas = { A: [[a]], y: [y], noise: s };
    const post = g.condition(meas);
    const lz = g.logEvidence(meas);
    const logLik = (x: number): number => -0.5 * ((y - a * x) ** 2 / (s * s) + Math.log(2 * Math.PI * s * s));
    const lp = (m: GaussianMixture, x: number): number =>
      referenceLogProbAndScore([x], m.weights, m.means, m.covariances, 1, 0).logp;
    let worst = 0;
    for (let x = -6; x <= 6; x += 0.25) worst = Math.max(worst, Math.abs(lp(post, x) - (lp(g, x) + logLik(x) - lz)));
    expect(worst).toBeLessThan(1e-9);
    // trapezoid rule on [−14, 14]: spectrally accurate for these smooth, rapidly decaying integrands
    const h = 28 / 4000;
    let z = 0;
    for (let i = 0; i <= 4000; i++) {
      const x = -14 + i * h;
      z += (i === 0 || i === 4000 ? 0.5 : 1) * Math.exp(lp(g, x) + logLik(x));
    }
    expect(Math.abs((z * h) / Math.exp(lz) - 1)).toBeLessThan(1e-9);
  });

  it('2-D grid (mixture2d, 1 and 2 measurements): density ratio to 1e-9 and p(y) by quadrature', () => {
    const g = mixture2d();
    const cases = [
      { A: [[0.7, -0.4]], y: [0.9], noise: 0.3 },
      {
        A: [
          [1, 0.5],
          [-0.3, 0.8],
        ],
        y: [1.5, 2],
        noise: [
          [0.5, 0.1],
          [0.1, 0.3],
        ],
      },
    ];
    for (const meas of cases) {
      const post = g.condition(meas);
      const lz = g.logEvidence(meas);
      const R = Array.isArray(meas.noise) ? meas.noise : [[0.09]];
      const logLik = (x: number[]): number => logNormal(meas.y, mv(meas.A, x), R);
      const lp = (m: GaussianMixture, x: number[]): number =>
        referenceLogProbAndScore(x, m.weights, m.means, m.covariances, 1, 0).logp;
      let worst = 0;
      for (let i = 0; i <= 24; i++) {
        for (let j = 0; j <= 24; j++) {
          const x = [-6 + 0.5 * i, -6 + 0.5 * j];
          worst = Math.max(worst, Math.abs(lp(post, x) - (lp(g, x) + logLik(x) - lz)));
        }
      }
      expect(worst).toBeLessThan(1e-9);
      const N = 280;
      const h = 28 / N;
      let z = 0;
      for (let i = 0; i <= N; i++) {
        const wi = i === 0 || i === N ? 0.5 : 1;
        for (let j = 0; j <= N; j++) {
          const x = [-14 + i * h, -14 + j * h];
          z += wi * (j === 0 || j === N ? 0.5 : 1) * Math.exp(lp(g, x) + logLik(x));
        }
      }
      expect(Math.abs((z * h * h) / Math.exp(lz) - 1)).toBeLessThan(1e-9);
    }
  });
});

describe('GaussianMixture#condition: 16-D mixture, random A with m = 1..8', () => {
  const g = mixture16d();
  const D = g.dim;
  for (let m = 1; m <= 8; m++) {
    it(`m = ${m}: components, weights and moments equal the information form within 1e-8`, () => {
      const A = randomMatrix(m, D, 100 + m);
      const noiseKinds = [
        { noise: 0.3, cov: eye(m).map((r) => r.map((v) => 0.09 * v)) },
        { noise: Array.from({ length: m }, (_, i) => 0.05 + 0.1 * i), cov: null as M | null },
        { noise: null as M | null, cov: null as M | null },
      ];
      const kind = noiseKinds[m % 3];
      let noise: number | number[] | M;
      let cov: M;
      if (typeof kind.noise === 'number') {
        noise = kind.noise;
        cov = kind.cov!;
      } else if (Array.isArray(kind.noise)) {
        noise = kind.noise;
        cov = eye(m).map((r, i) => r.map((v) => v * (kind.noise as number[])[i]));
      } else {
        // a dense SPD noise: 0.1 I + 0.05 B Bᵀ / m
        const Bn = randomMatrix(m, m, 900 + m);
        cov = add(
          eye(m).map((r) => r.map((v) => 0.1 * v)),
          mul(Bn, T(Bn)).map((r) => r.map((v) => (0.05 * v) / m)),
        );
        noise = cov;
      }
      const x0 = priorPoint(g, 7 + m);
      const y = mv(A, x0).map((v, i) => v + 0.2 * Math.sin(i + m));
      const post = g.condition({ A, y, noise });
      const ref = informationForm(g, A, y, cov);
      expect(post.numComponents).toBe(ref.weights.filter((w) => w > 0).length);
      const scale = Math.max(1, maxAbs(g.covariances[0]));
      ref.comps.forEach((c, k) => {
        expect(Math.abs(post.weights[k] - ref.weights[k])).toBeLessThan(1e-8);
        expect(maxAbs(vdiff(post.means[k], c.mean))).toBeLessThan(1e-8 * scale);
        expect(maxAbs(diff(post.covariances[k], c.cov))).toBeLessThan(1e-8 * scale);
      });
      expect(Math.abs(g.logEvidence({ A, y, noise }) - ref.logEvidence)).toBeLessThan(1e-8);
      // mixture moments (law of total covariance) against the information-form mixture's
      const ref2 = new GaussianMixture({
        weights: ref.weights,
        means: ref.comps.map((c) => c.mean),
        covariances: ref.comps.map((c) => c.cov.map((r, i) => r.map((v, j) => 0.5 * (v + c.cov[j][i])))),
      });
      expect(maxAbs(vdiff(post.mean(), ref2.mean()))).toBeLessThan(1e-8 * scale);
      expect(maxAbs(diff(post.covariance(), ref2.covariance()))).toBeLessThan(1e-8 * scale);
    });

    it(`m = ${m}, noise 0: the exact constraint A x = y (null-space formula within 1e-8)`, () => {
      const A = randomMatrix(m, D, 200 + m);
      const y = mv(A, priorPoint(g, 30 + m));
      const post = g.condition({ A, y, noise: 0 });
      expect(post.singular).toBe(true);
      // x = x_p + N z with N an orthonormal basis of null(A) (the eigenvectors of I − A⁺A with eigenvalue 1) and
      // x_p = A⁺ y; the prior restricted to that affine plane has precision Nᵀ Σ⁻¹ N:
      //   S = N (Nᵀ Σ⁻¹ N)⁻¹ Nᵀ,  m = x_p − N (Nᵀ Σ⁻¹ N)⁻¹ Nᵀ Σ⁻¹ (x_p − μ).
      const Apinv = mul(T(A), inv(mul(A, T(A))));
      const P = diff(eye(D), mul(Apinv, A));
      // Gram–Schmidt on the columns of the projector P gives D − m orthonormal null-space vectors.
      const basis: number[][] = [];
      for (let j = 0; j < D && basis.length < D - m; j++) {
        let v = P.map((row) => row[j]);
        for (const b of basis) {
          const d = b.reduce((s, e, i) => s + e * v[i], 0);
          v = v.map((e, i) => e - d * b[i]);
        }
        const nv = Math.hypot(...v);
        if (nv > 1e-6) basis.push(v.map((e) => e / nv));
      }
      expect(basis.length).toBe(D - m);
      const N = T(basis);
      const xp = mv(Apinv, y);
      post.means.forEach((mean, k) => {
        const Pk = inv(g.covariances[k]);
        const G = inv(mul(mul(T(N), Pk), N));
        const S = mul(mul(N, G), T(N));
        const corr = mv(mul(mul(N, G), T(N)), mv(Pk, vdiff(xp, g.means[k])));
        expect(maxAbs(vdiff(mean, vdiff(xp, corr)))).toBeLessThan(1e-8);
        expect(maxAbs(diff(post.covariances[k], S))).toBeLessThan(1e-8);
        expect(maxAbs(vdiff(mv(A, mean), y))).toBeLessThan(1e-10 * Math.max(1, maxAbs(y)));
        expect(maxAbs(mul(A, post.covariances[k]))).toBeLessThan(1e-10);
      });
      // the weights still follow π_k N(y; A μ_k, A Σ_k Aᵀ)
      const logw = g.weights.map(
        (w, k) => Math.log(w) + logNormal(y, mv(A, g.means[k]), mul(mul(A, g.covariances[k]), T(A))),
      );
      const lz = logSumExp(logw);
      logw.forEach((l, k) => expect(Math.abs(post.weights[k] - Math.exp(l - lz))).toBeLessThan(1e-8));
    });
  }
});

describe('GaussianMixture#conditionOnCoordinates', () => {
  const g = mixture16d();
  const known = [0, 3, 5, 9, 14];
  const values = [1.2, -0.5, 2, 0.3, -1.1];
  const cc = g.conditionOnCoordinates(known, values);

  it('is the Schur-complement conditional of the unknown coordinates (1e-10) with weights ∝ π_k N(values; μ_k, Σ_kk)', () => {
    const u = cc.unknown as number[];
    expect(u).toEqual([1, 2, 4, 6, 7, 8, 10, 11, 12, 13, 15]);
    expect(cc.mixture.dim).toBe(11);
    const logw = g.covariances.map((S, k) => {
      const Skk = known.map((i) => known.map((j) => S[i][j]));
      return (
        Math.log(g.weights[k]) +
        logNormal(
          values,
          known.map((i) => g.means[k][i]),
          Skk,
        )
      );
    });
    const lz = logSumExp(logw);
    expect(Math.abs(cc.logEvidence - lz)).toBeLessThan(1e-10);
    g.covariances.forEach((S, k) => {
      const sub = (r: number[], c: number[]): M => r.map((i) => c.map((j) => S[i][j]));
      const G = mul(sub(u, known), inv(sub(known, known)));
      const mean = u.map(
        (i, n) =>
          g.means[k][i] +
          mv(
            G,
            vdiff(
              values,
              known.map((j) => g.means[k][j]),
            ),
          )[n],
      );
      const cov = diff(sub(u, u), mul(G, sub(known, u)));
      expect(Math.abs(cc.mixture.weights[k] - Math.exp(logw[k] - lz))).toBeLessThan(1e-10);
      expect(maxAbs(vdiff(cc.mixture.means[k], mean))).toBeLessThan(1e-10);
      expect(maxAbs(diff(cc.mixture.covariances[k], cov))).toBeLessThan(1e-10);
    });
  });

  it('the full-D posterior fixes the known coordinates exactly and equals condition(A = rows of I, noise 0)', () => {
    expect(cc.full.singular).toBe(true);
    expect(cc.mixture.singular).toBe(false);
    const A = known.map((i) => eye(16)[i]);
    const viaA = g.condition({ A, y: values, noise: 0 });
    cc.full.means.forEach((mean, k) => {
      known.forEach((i, n) => expect(mean[i]).toBe(values[n]));
      expect(maxAbs(vdiff(mean, viaA.means[k]))).toBeLessThan(1e-12);
      expect(maxAbs(diff(cc.full.covariances[k], viaA.covariances[k]))).toBeLessThan(1e-12);
      for (const i of known) for (let j = 0; j < 16; j++) expect(cc.full.covariances[k][i][j]).toBe(0);
    });
    // embed ∘ (unknown-coordinate moments) = full-D moments
    const fm = cc.full.mean();
    const um = cc.mixture.mean();
    expect(maxAbs(vdiff(Array.from(cc.embed([um])), fm))).toBeLessThan(1e-12);
    expect(Array.from(cc.extract([fm]))).toEqual(Array.from(cc.extract(cc.embed([um]))));
  });

  it('noise → 0: condition(rows of I, σ) converges to it at rate σ² (and σ = 0 is it within 1e-12)', () => {
    const A = known.map((i) => eye(16)[i]);
    const errs = [1e-1, 1e-2, 1e-3].map((s) => {
      const p = g.condition({ A, y: values, noise: s });
      let e = maxAbs(vdiff(p.weights, cc.full.weights));
      p.means.forEach((mu, k) => {
        e = Math.max(e, maxAbs(vdiff(mu, cc.full.means[k])), maxAbs(diff(p.covariances[k], cc.full.covariances[k])));
      });
      return e;
    });
    // O(σ²): each tenfold drop in σ cuts the error ~100-fold (allow 50–200)
    expect(errs[0] / errs[1]).toBeGreaterThan(50);
    expect(errs[0] / errs[1]).toBeLessThan(200);
    expect(errs[1] / errs[2]).toBeGreaterThan(50);
    expect(errs[1] / errs[2]).toBeLessThan(200);
    expect(errs[2]).toBeLessThan(1e-4);
  });
});

describeWithBackends(
  'posterior sampling and score',
  () => {
    it('16-D posterior samples: A x − y residual mean and variance within 4 standard errors (n = 4000)', () => {
      const g = mixture16d();
      const m = 4;
      const A = randomMatrix(m, 16, 55);
      const y = mv(A, priorPoint(g, 5)).map((v) => v + 0.1);
      const post = g.condition({ A, y, noise: 0.3 });
      const n = 4000;
      const before = countTensors();
      const xs = post.sample(n, 11);
      const x = xs.arraySync();
      xs.dispose();
      expect(countTensors()).toBe(before);
      const exactMean = vdiff(mv(A, post.mean()), y);
      const exactVar = mul(mul(A, post.covariance()), T(A)).map((r, i) => r[i]);
      for (let i = 0; i < m; i++) {
        const r = x.map((row) => A[i].reduce((s, a, l) => s + a * row[l], 0) - y[i]);
        const mean = r.reduce((s, v) => s + v, 0) / n;
        const c2 = r.map((v) => (v - mean) ** 2);
        const v2 = c2.reduce((s, v) => s + v, 0) / (n - 1);
        const m4 = c2.reduce((s, v) => s + v * v, 0) / n;
        expect(Math.abs(mean - exactMean[i])).toBeLessThan(4 * Math.sqrt(exactVar[i] / n));
        expect(Math.abs(v2 - exactVar[i])).toBeLessThan(4 * Math.sqrt((m4 - v2 * v2) / n));
      }
    });

    it('noise 0: samples satisfy A x = y to float32 rounding; the coordinate posterior samples the known values', () => {
      const g = mixture16d();
      const A = randomMatrix(3, 16, 77);
      const y = mv(A, priorPoint(g, 9));
      const post = g.condition({ A, y, noise: 0 });
      const x = tf.tidy(() => post.sample(500, 3).arraySync());
      let worst = 0;
      for (const row of x) {
        A.forEach((a, i) => {
          const r = a.reduce((s, e, l) => s + e * row[l], 0) - y[i];
          // rounding of each x_l to float32 (relative 2⁻²⁴) carried through the row of A
          const bound = 4 * 2 ** -24 * a.reduce((s, e, l) => s + Math.abs(e * row[l]), 0);
          worst = Math.max(worst, Math.abs(r) / bound);
        });
      }
      expect(worst).toBeLessThan(1);
      const cc = g.conditionOnCoordinates([2, 7], [0.25, -1.5]);
      const full = tf.tidy(() => cc.full.sample(200, 4).arraySync());
      for (const row of full) expect([row[2], row[7]]).toEqual([0.25, -1.5]);
    });

    it('embed / extract: exact gathers, no tensor leaks', () => {
      const cc = gaussian2d().conditionOnCoordinates([1], [-0.75]);
      const before = countTensors();
      const u = tf.tensor2d([[1], [2], [3]]);
      const full = cc.embed(u);
      expect(full.arraySync()).toEqual([
        [1, -0.75],
        [2, -0.75],
        [3, -0.75],
      ]);
      const back = cc.extract(full);
      expect(back.arraySync()).toEqual([[1], [2], [3]]);
      tf.dispose([u, full, back]);
      expect(countTensors()).toBe(before);
      const wrong = tf.zeros([2, 2]);
      expectThrowsSbm(() => cc.embed(wrong), 'INVALID_SHAPE', /samples/);
      wrong.dispose();
      expect(countTensors()).toBe(before);
    });

    it('the exact posterior score: closed form for a Gaussian given x₀ = 1.5 (VP, t = 0.5), none at σ = 0', () => {
      // gaussian2d: x₁ | x₀ = 1.5 ~ N(−1 + 0.6 (1.5 − 2), 0.5 − 0.36) = N(−1.3, 0.14)
      const post = gaussian2d().conditionOnCoordinates([0], [1.5]).full;
      const sde = new VpSde();
      const t = 0.5;
      const a = sde.alpha(t);
      const v = sde.std(t) ** 2;
      const pts = [
        [1, 0],
        [-0.5, 2],
        [0.3, -1.2],
      ];
      const s = tf.tidy(() => post.perturbed(sde).score(tf.tensor2d(pts), t).arraySync() as number[][]);
      pts.forEach(([x0, x1], b) => {
        const exact = [-(x0 - a * 1.5) / v, -(x1 + a * 1.3) / (a * a * 0.14 + v)];
        for (let i = 0; i < 2; i++)
          expect(Math.abs(s[b][i] - exact[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(exact[i])));
      });
      // VP has σ(0) = 0: the singular posterior has no density there; VE (σ(0) = σ_min > 0) does.
      const before = countTensors();
      const x = tf.tensor2d(pts);
      expectThrowsSbm(() => post.perturbed(sde).score(x, 0), 'UNSUPPORTED', /singular covariances/);
      expectThrowsSbm(() => post.logProb(x), 'UNSUPPORTED', /no density at σ = 0/);
      const ve = tf.tidy(() => post.perturbed(new VeSde()).score(x, 0).arraySync() as number[][]);
      expect(ve.flat().every(Number.isFinite)).toBe(true);
      x.dispose();
      expect(countTensors()).toBe(before);
    });
  },
  { backends: ['cpu'] },
);

describe('GaussianMixture#condition: bad input names the argument', () => {
  const g = mixture2d();
  const A = [[1, 0.5]];
  it('wrong shapes and non-finite values', () => {
    expectThrowsSbm(
      () => g.condition({ A: [], y: [], noise: 1 }),
      'INVALID_ARGUMENT',
      /condition: A: expected a non-empty/,
    );
    expectThrowsSbm(
      () => g.condition({ A: [[1, 2, 3]], y: [0], noise: 1 }),
      'INVALID_ARGUMENT',
      /A\[0\]: expected a row of 2/,
    );
    expectThrowsSbm(
      () => g.condition({ A: [[1, NaN]], y: [0], noise: 1 }),
      'INVALID_ARGUMENT',
      /A\[0\]\[1\]: expected a finite number, got NaN/,
    );
    expectThrowsSbm(
      () => g.condition({ A, y: [0, 1], noise: 1 }),
      'INVALID_ARGUMENT',
      /y: expected an array of 1 numbers/,
    );
    expectThrowsSbm(
      () => g.condition({ A, y: [NaN], noise: 1 }),
      'INVALID_ARGUMENT',
      /y\[0\]: expected a finite number, got NaN/,
    );
    expectThrowsSbm(() => g.logEvidence({ A, y: [Infinity], noise: 1 }), 'INVALID_ARGUMENT', /logEvidence: y\[0\]/);
    expectThrowsSbm(
      () => g.condition(null as unknown as { A: number[][]; y: number[]; noise: number }),
      'INVALID_ARGUMENT',
      /measurement: expected an object/,
    );
  });
  it('bad noise: negative σ_y or variance, wrong size, asymmetric or indefinite matrix', () => {
    expectThrowsSbm(
      () => g.condition({ A, y: [0], noise: -0.1 }),
      'INVALID_ARGUMENT',
      /noise: expected a standard deviation >= 0, got -0.1/,
    );
    expectThrowsSbm(
      () => g.condition({ A, y: [0], noise: NaN }),
      'INVALID_ARGUMENT',
      /noise: expected a standard deviation >= 0, got NaN/,
    );
    const A2 = [
      [1, 0],
      [0, 1],
    ];
    expectThrowsSbm(
      () => g.condition({ A: A2, y: [0, 0], noise: [0.1, -1] }),
      'INVALID_ARGUMENT',
      /noise\[1\]: expected a variance >= 0/,
    );
    expectThrowsSbm(
      () => g.condition({ A: A2, y: [0, 0], noise: [0.1] }),
      'INVALID_ARGUMENT',
      /noise: expected a standard deviation >= 0, 2 variances, or a 2x2/,
    );
    expectThrowsSbm(
      () =>
        g.condition({
          A: A2,
          y: [0, 0],
          noise: [
            [1, 0.5],
            [0.2, 1],
          ],
        }),
      'INVALID_ARGUMENT',
      /noise: expected a symmetric positive semi-definite matrix, got entries \[0\]\[1\]/,
    );
    expectThrowsSbm(
      () =>
        g.condition({
          A: A2,
          y: [0, 0],
          noise: [
            [1, 2],
            [2, 1],
          ],
        }),
      'INVALID_ARGUMENT',
      /noise: expected a symmetric positive semi-definite matrix, got one with smallest eigenvalue -/,
    );
  });
  it('noise 0 with A of deficient row rank', () => {
    expectThrowsSbm(
      () =>
        g.condition({
          A: [
            [1, 2],
            [2, 4],
          ],
          y: [0, 0],
          noise: 0,
        }),
      'INVALID_ARGUMENT',
      /A: expected a measurement with A Σ_k Aᵀ \+ Σ_y positive definite .*got a singular one for component 0/,
    );
    expectThrowsSbm(
      () => g.condition({ A: [[0, 0]], y: [0], noise: 0 }),
      'INVALID_ARGUMENT',
      /A: expected .*full row rank/,
    );
  });
  it('conditionOnCoordinates: known out of range, duplicated, empty or all; values of the wrong length or NaN', () => {
    const h = mixture16d();
    expectThrowsSbm(
      () => h.conditionOnCoordinates([16], [0]),
      'INVALID_ARGUMENT',
      /known\[0\]: expected an integer index in \[0, 15\], got 16/,
    );
    expectThrowsSbm(
      () => h.conditionOnCoordinates([1, -1], [0, 0]),
      'INVALID_ARGUMENT',
      /known\[1\]: expected an integer index/,
    );
    expectThrowsSbm(
      () => h.conditionOnCoordinates([1.5], [0]),
      'INVALID_ARGUMENT',
      /known\[0\]: expected an integer index/,
    );
    expectThrowsSbm(
      () => h.conditionOnCoordinates([3, 4, 3], [0, 0, 0]),
      'INVALID_ARGUMENT',
      /known\[2\]: expected distinct indices, got 3 a second time/,
    );
    expectThrowsSbm(() => h.conditionOnCoordinates([], []), 'INVALID_ARGUMENT', /known: expected an array of 1 to 15/);
    expectThrowsSbm(
      () =>
        h.conditionOnCoordinates(
          Array.from({ length: 16 }, (_, i) => i),
          new Array(16).fill(0),
        ),
      'INVALID_ARGUMENT',
      /known: expected an array of 1 to 15 coordinate indices/,
    );
    expectThrowsSbm(
      () => h.conditionOnCoordinates([1, 2], [0]),
      'INVALID_ARGUMENT',
      /values: expected an array of 2 numbers/,
    );
    expectThrowsSbm(
      () => h.conditionOnCoordinates([1, 2], [0, NaN]),
      'INVALID_ARGUMENT',
      /values\[1\]: expected a finite number, got NaN/,
    );
  });
});
