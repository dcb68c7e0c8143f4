import * as tf from '@tensorflow/tfjs';
import { SbmError, checkTensor, describeValue } from '@sbm/core';
import { cholesky, fromEigen, symmetricEigen, type Matrix } from '@sbm/metrics';
import type { GaussianMixture } from './mixture';
import { isFiniteArray } from './validate';

/**
 * A linear-Gaussian measurement y = A x + n, n ~ N(0, Σ_y), of a D-dimensional x.
 */
export interface LinearGaussianMeasurement {
  /** The m×D measurement matrix (m ≥ 1 rows of D finite numbers). */
  A: number[][];
  /** The measured y, m finite numbers. */
  y: number[];
  /**
   * The noise: a standard deviation σ_y ≥ 0 (Σ_y = σ_y² I), m variances ≥ 0 (Σ_y diagonal), or an m×m symmetric
   * positive semi-definite matrix. Zero noise (in some or all directions) is an exact constraint and is allowed as
   * long as A Σ_k Aᵀ + Σ_y stays positive definite for every component (A of full row rank when Σ_y = 0).
   */
  noise: number | number[] | number[][];
}

/** @internal One mixture component: Σ_k = U_k diag(λ_k) U_kᵀ (U_k's columns are the eigenvectors). */
export interface PosteriorComponent {
  weight: number;
  mean: number[];
  eigValues: number[];
  eigVectors: Matrix;
}

/** @internal The conditioned components before they are assembled into a mixture. */
export interface PosteriorParts {
  /** Posterior weights, normalized (some may underflow to 0). */
  weights: number[];
  means: number[][];
  /** Posterior covariances S_k, symmetric (positive semi-definite up to rounding). */
  covariances: Matrix[];
  /** log p(y) = logSumExp_k (ln π_k + ln N(y; A μ_k, A Σ_k Aᵀ + Σ_y)). */
  logEvidence: number;
}

const LOG_2PI = Math.log(2 * Math.PI);
const SYMMETRY_TOLERANCE = 1e-8;
// A pivot of the Cholesky factor of C = A Σ Aᵀ + Σ_y below this fraction of its diagonal entry means C is singular
// in float64 (same threshold as the constructor's positive-definiteness test of Σ_k).
const PIVOT_TOLERANCE = 1e-12;
// Posterior eigenvalues below this multiple of ε·λ_max(Σ_k) are rounding noise of Σ_k − WᵀW: they are set to 0.
const ROUNDING_EIGEN = 64 * Number.EPSILON;

function invalid(method: string, argument: string, expected: string, received: unknown): SbmError {
  return new SbmError(
    'INVALID_ARGUMENT',
    `GaussianMixture.${method}: ${argument}: expected ${expected}, got ${received}`,
    {
      argument,
      expected,
    },
  );
}

/** First entry of `v` that is not a finite number, for the error message. */
function firstBad(v: unknown[]): { index: number; value: unknown } | undefined {
  const index = v.findIndex((e) => typeof e !== 'number' || !Number.isFinite(e));
  return index < 0 ? undefined : { index, value: v[index] };
}

interface CheckedMeasurement {
  A: Matrix;
  y: number[];
  /** Σ_y as an m×m matrix. */
  noise: Matrix;
}

/** Validates a measurement against dimension D; every failure names the argument (A, y or noise). */
export function checkMeasurement(measurement: unknown, D: number, method: string): CheckedMeasurement {
  if (measurement === null || typeof measurement !== 'object') {
    throw invalid(method, 'measurement', 'an object { A, y, noise }', describeValue(measurement));
  }
  const { A, y, noise } = measurement as Record<string, unknown>;
  if (!Array.isArray(A) || A.length === 0) {
    throw invalid(method, 'A', `a non-empty array of rows (an m×${D} matrix)`, describeValue(A));
  }
  const m = A.length;
  A.forEach((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== D) {
      throw invalid(method, `A[${i}]`, `a row of ${D} numbers (the mixture's dimension)`, describeValue(row));
    }
    const bad = firstBad(row);
    if (bad) throw invalid(method, `A[${i}][${bad.index}]`, 'a finite number', describeValue(bad.value));
  });
  if (!Array.isArray(y) || y.length !== m) {
    throw invalid(method, 'y', `an array of ${m} numbers (one per row of A)`, describeValue(y));
  }
  const badY = firstBad(y);
  if (badY) throw invalid(method, `y[${badY.index}]`, 'a finite number', describeValue(badY.value));

  let cov: Matrix;
  if (typeof noise === 'number') {
    if (!Number.isFinite(noise) || noise < 0) {
      throw invalid(method, 'noise', 'a standard deviation >= 0', describeValue(noise));
    }
    cov = Array.from({ length: m }, (_, i) => Array.from({ length: m }, (__, j) => (i === j ? noise * noise : 0)));
  } else if (Array.isArray(noise) && noise.length === m && noise.every((v) => typeof v === 'number')) {
    noise.forEach((v: number, i) => {
      if (!Number.isFinite(v) || v < 0) throw invalid(method, `noise[${i}]`, 'a variance >= 0', describeValue(v));
    });
    cov = Array.from({ length: m }, (_, i) => Array.from({ length: m }, (__, j) => (i === j ? noise[i] : 0)));
  } else if (Array.isArray(noise) && noise.length === m && noise.every((r) => isFiniteArray(r, m))) {
    const a = noise as Matrix;
    let scale = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) scale = Math.max(scale, Math.abs(a[i][j]));
    for (let i = 0; i < m; i++) {
      for (let j = i + 1; j < m; j++) {
        if (Math.abs(a[i][j] - a[j][i]) > SYMMETRY_TOLERANCE * scale) {
          throw invalid(
            method,
            'noise',
            'a symmetric positive semi-definite matrix',
            `entries [${i}][${j}] = ${a[i][j]} and [${j}][${i}] = ${a[j][i]}`,
          );
        }
      }
    }
    cov = a.map((row, i) => row.map((v, j) => 0.5 * (v + a[j][i])));
    const { values } = symmetricEigen(cov);
    const lmin = Math.min(...values);
    if (lmin < -ROUNDING_EIGEN * m * scale) {
      throw invalid(
        method,
        'noise',
        'a symmetric positive semi-definite matrix',
        `one with smallest eigenvalue ${lmin} (largest ${Math.max(...values)})`,
      );
    }
  } else {
    throw invalid(
      method,
      'noise',
      `a standard deviation >= 0, ${m} variances, or a ${m}x${m} covariance matrix`,
      describeValue(noise),
    );
  }
  return { A: A as Matrix, y: y as number[], noise: cov };
}

/** Solves L z = b for lower-triangular L (forward substitution). */
function forward(L: Matrix, b: number[]): number[] {
  const n = L.length;
  const z = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let j = 0; j < i; j++) s -= L[i][j] * z[j];
    z[i] = s / L[i][i];
  }
  return z;
}

function logSumExp(v: number[]): number {
  const max = Math.max(...v);
  if (!Number.isFinite(max)) return max;
  let s = 0;
  for (const e of v) s += Math.exp(e - max);
  return max + Math.log(s);
}

/**
 * Bayes' rule for a Gaussian mixture prior and a linear-Gaussian likelihood, in float64. Per component, with
 * B = A Σ_k (m×D), C_k = B Aᵀ + Σ_y = L Lᵀ (Cholesky), r = y − A μ_k, z = L⁻¹ r and W = L⁻¹ B:
 *   Kalman gain K = Σ_k Aᵀ C_k⁻¹, so K r = Wᵀ z and K A Σ_k = Wᵀ W, hence
 *   m_k = μ_k + Wᵀ z,  S_k = Σ_k − Wᵀ W (symmetrized),
 *   ln N(y; A μ_k, C_k) = −½ (m ln 2π + 2 Σ_i ln L_ii + zᵀ z),
 *   posterior weights ∝ π_k N(y; A μ_k, C_k) (normalized by logSumExp; the normalizer is log p(y)).
 * This is the covariance (Kalman / Woodbury) form of S_k = (Σ_k⁻¹ + Aᵀ Σ_y⁻¹ A)⁻¹,
 * m_k = S_k (Aᵀ Σ_y⁻¹ y + Σ_k⁻¹ μ_k) (Bishop, Pattern Recognition and Machine Learning, eqs. 2.113–2.117; Särkkä,
 * Bayesian Filtering and Smoothing, Lemma A.2): it never inverts Σ_y, so Σ_y → 0 and Σ_y = 0 (an exact constraint
 * A x = y, A of full row rank) work; S_k is then singular (rank D − m).
 * With `wantPosterior` false only log p(y) is computed (the weights and moments are left empty).
 */
export function conditionComponents(
  comps: readonly PosteriorComponent[],
  D: number,
  measurement: unknown,
  method: string,
  wantPosterior = true,
): PosteriorParts {
  const { A, y, noise } = checkMeasurement(measurement, D, method);
  const m = A.length;
  const logWeights: number[] = [];
  const means: number[][] = [];
  const covariances: Matrix[] = [];
  comps.forEach((c, k) => {
    const S = fromEigen(c.eigValues, c.eigVectors);
    const B: Matrix = A.map((row) => {
      const out = new Array<number>(D).fill(0);
      for (let l = 0; l < D; l++) {
        const a = row[l];
        if (a === 0) continue;
        const Sl = S[l];
        for (let j = 0; j < D; j++) out[j] += a * Sl[j];
      }
      return out;
    });
    // A Σ Aᵀ = B Aᵀ is symmetric in exact arithmetic: average the two triangles, then add Σ_y.
    const BAt: Matrix = B.map((Bi) =>
      A.map((Aj) => {
        let s = 0;
        for (let l = 0; l < D; l++) s += Bi[l] * Aj[l];
        return s;
      }),
    );
    const C: Matrix = BAt.map((row, i) => row.map((v, j) => 0.5 * (v + BAt[j][i]) + noise[i][j]));
    const L = cholesky(C);
    const singular = !L || L.some((row, i) => !(row[i] * row[i] > PIVOT_TOLERANCE * C[i][i]));
    if (singular) {
      throw invalid(
        method,
        'A',
        'a measurement with A Σ_k Aᵀ + Σ_y positive definite (A of full row rank where the noise is 0)',
        `a singular one for component ${k}`,
      );
    }
    const r = y.map((yi, i) => {
      let s = yi;
      for (let l = 0; l < D; l++) s -= A[i][l] * c.mean[l];
      return s;
    });
    const z = forward(L, r);
    let logdet = 0;
    let maha = 0;
    for (let i = 0; i < m; i++) {
      logdet += 2 * Math.log(L[i][i]);
      maha += z[i] * z[i];
    }
    logWeights.push(Math.log(c.weight) - 0.5 * (m * LOG_2PI + logdet + maha));
    if (!wantPosterior) return;
    // W = L⁻¹ B, column by column of B (forward substitution on all D columns at once).
    const W: Matrix = Array.from({ length: m }, () => new Array<number>(D).fill(0));
    for (let i = 0; i < m; i++) {
      const Wi = W[i];
      for (let j = 0; j < D; j++) {
        let s = B[i][j];
        for (let l = 0; l < i; l++) s -= L[i][l] * W[l][j];
        Wi[j] = s / L[i][i];
      }
    }
    const mean = c.mean.slice();
    for (let i = 0; i < m; i++) for (let j = 0; j < D; j++) mean[j] += W[i][j] * z[i];
    const post: Matrix = Array.from({ length: D }, () => new Array<number>(D).fill(0));
    for (let i = 0; i < D; i++) {
      for (let j = i; j < D; j++) {
        let s = 0;
        for (let l = 0; l < m; l++) s += W[l][i] * W[l][j];
        const v = 0.5 * (S[i][j] + S[j][i]) - s;
        post[i][j] = v;
        post[j][i] = v;
      }
    }
    means.push(mean);
    covariances.push(post);
  });
  const logEvidence = logSumExp(logWeights);
  const raw = wantPosterior ? logWeights.map((l) => Math.exp(l - logEvidence)) : [];
  const total = raw.reduce((a, b) => a + b, 0);
  return { weights: raw.map((w) => w / total), means, covariances, logEvidence };
}

/**
 * The eigendecomposition of a posterior covariance S_k (positive semi-definite up to rounding) with the rounding
 * noise removed: eigenvalues below 64 ε λ_max(Σ_k) (`scale`) — where Σ_k − WᵀW has no significant digits left —
 * become exactly 0, so an exact constraint leaves an exactly singular covariance.
 */
export function psdEigen(S: Matrix, scale: number): { values: number[]; vectors: Matrix } {
  const D = S.length;
  let diagonal = true;
  for (let i = 0; i < D && diagonal; i++) for (let j = i + 1; j < D; j++) if (S[i][j] !== 0) diagonal = false;
  const { values, vectors } = diagonal
    ? {
        values: S.map((row, i) => row[i]),
        vectors: Array.from({ length: D }, (_, i) => Array.from({ length: D }, (__, j) => +(i === j))),
      }
    : symmetricEigen(S);
  const floor = ROUNDING_EIGEN * scale;
  return { values: values.map((v) => (v > floor ? v : 0)), vectors };
}

/** Validated known / unknown coordinate split for `conditionOnCoordinates`. */
export function checkCoordinates(
  known: unknown,
  values: unknown,
  D: number,
): { known: number[]; unknown: number[]; values: number[] } {
  const method = 'conditionOnCoordinates';
  if (!Array.isArray(known) || known.length === 0 || known.length >= D) {
    throw invalid(
      method,
      'known',
      `an array of 1 to ${D - 1} coordinate indices (at least one coordinate must stay unknown)`,
      describeValue(known),
    );
  }
  const seen = new Set<number>();
  known.forEach((i: unknown, n) => {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= D) {
      throw invalid(method, `known[${n}]`, `an integer index in [0, ${D - 1}]`, describeValue(i));
    }
    if (seen.has(i)) throw invalid(method, `known[${n}]`, 'distinct indices', `${i} a second time`);
    seen.add(i);
  });
  if (!Array.isArray(values) || values.length !== known.length) {
    throw invalid(method, 'values', `an array of ${known.length} numbers (one per known index)`, describeValue(values));
  }
  const bad = firstBad(values);
  if (bad) throw invalid(method, `values[${bad.index}]`, 'a finite number', describeValue(bad.value));
  const unknown: number[] = [];
  for (let i = 0; i < D; i++) if (!seen.has(i)) unknown.push(i);
  return { known: (known as number[]).slice(), unknown, values: (values as number[]).slice() };
}

/**
 * The noise-free inpainting posterior of a mixture given x[known] = values: the conditional of the unknown
 * coordinates (a mixture in D_u = D − |known| dimensions with positive definite covariances, the Schur complements
 * Σ_uu − Σ_uk Σ_kk⁻¹ Σ_ku, means μ_u + Σ_uk Σ_kk⁻¹ (values − μ_k), weights ∝ π_k N(values; μ_k, Σ_kk)), the same
 * posterior in all D dimensions (singular covariances, known coordinates fixed exactly), and the maps between them.
 */
export class CoordinateConditional {
  /** The posterior of x[unknown]: a mixture in unknown.length dimensions (coordinates in the order of `unknown`). */
  readonly mixture: GaussianMixture;
  /**
   * The posterior in all D dimensions: the known coordinates are exactly `values` and their rows and columns of
   * every covariance are 0 (singular covariances). Its `perturbed(sde).scoreFn` is the exact posterior score at
   * every t with σ(t) > 0; it has no density at σ = 0.
   */
  readonly full: GaussianMixture;
  /** log p(x[known] = values): the log-density of the known coordinates' marginal. */
  readonly logEvidence: number;
  readonly known: readonly number[];
  /** The remaining coordinates, ascending: coordinate i of `mixture` is coordinate unknown[i] of x. */
  readonly unknown: readonly number[];
  readonly values: readonly number[];
  private readonly perm: Int32Array;

  /** @internal Built by GaussianMixture#conditionOnCoordinates. */
  constructor(parts: {
    mixture: GaussianMixture;
    full: GaussianMixture;
    logEvidence: number;
    known: number[];
    unknown: number[];
    values: number[];
  }) {
    this.mixture = parts.mixture;
    this.full = parts.full;
    this.logEvidence = parts.logEvidence;
    this.known = parts.known;
    this.unknown = parts.unknown;
    this.values = parts.values;
    // Coordinate i of x sits at perm[i] in [x_unknown..., values...].
    const D = parts.known.length + parts.unknown.length;
    this.perm = new Int32Array(D);
    parts.unknown.forEach((i, n) => (this.perm[i] = n));
    parts.known.forEach((i, n) => (this.perm[i] = parts.unknown.length + n));
  }

  /**
   * Full D-dimensional points from unknown-coordinate ones: [n, D_u] → [n, D] with x[known] = values. A tensor
   * gives a tensor (exact gathers, no arithmetic); a Float64Array (row-major n×D_u) or rows give a Float64Array.
   */
  embed(samples: tf.Tensor): tf.Tensor2D;
  embed(samples: Float64Array | number[][]): Float64Array;
  embed(samples: tf.Tensor | Float64Array | number[][]): tf.Tensor2D | Float64Array {
    const Du = this.unknown.length;
    const Dk = this.known.length;
    if (samples instanceof tf.Tensor) {
      checkTensor(samples, 'samples', [null, Du]);
      return tf.tidy(() => {
        const n = samples.shape[0];
        const known = tf.tile(tf.tensor2d(this.values as number[], [1, Dk], samples.dtype), [n, 1]);
        return tf.gather(tf.concat([samples as tf.Tensor2D, known], 1), tf.tensor1d(this.perm, 'int32'), 1);
      });
    }
    const flat = flatten(samples, Du, 'samples', 'embed');
    const n = flat.length / Du;
    const D = Du + Dk;
    const out = new Float64Array(n * D);
    for (let b = 0; b < n; b++) {
      this.unknown.forEach((i, j) => (out[b * D + i] = flat[b * Du + j]));
      this.known.forEach((i, j) => (out[b * D + i] = this.values[j]));
    }
    return out;
  }

  /** The unknown coordinates of full points: [n, D] → [n, D_u] (the inverse of `embed` on its image). */
  extract(x: tf.Tensor): tf.Tensor2D;
  extract(x: Float64Array | number[][]): Float64Array;
  extract(x: tf.Tensor | Float64Array | number[][]): tf.Tensor2D | Float64Array {
    const Du = this.unknown.length;
    const D = Du + this.known.length;
    if (x instanceof tf.Tensor) {
      checkTensor(x, 'x', [null, D]);
      return tf.tidy(() => tf.gather(x, tf.tensor1d(this.unknown as number[], 'int32'), 1) as tf.Tensor2D);
    }
    const flat = flatten(x, D, 'x', 'extract');
    const n = flat.length / D;
    const out = new Float64Array(n * Du);
    for (let b = 0; b < n; b++) this.unknown.forEach((i, j) => (out[b * Du + j] = flat[b * D + i]));
    return out;
  }
}

function flatten(x: Float64Array | number[][], width: number, argument: string, method: string): Float64Array {
  if (x instanceof Float64Array) {
    if (x.length % width !== 0) {
      throw new SbmError(
        'INVALID_SHAPE',
        `CoordinateConditional.${method}: ${argument}: expected a row-major n×${width} array, got ${x.length} values`,
        { argument },
      );
    }
    return x;
  }
  if (!Array.isArray(x) || !x.every((row) => isFiniteArray(row, width))) {
    throw new SbmError(
      'INVALID_SHAPE',
      `CoordinateConditional.${method}: ${argument}: expected a tf.Tensor, a Float64Array or rows of ${width} finite numbers, got ${describeValue(x)}`,
      { argument },
    );
  }
  return Float64Array.from(x.flat());
}
