import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkNumber,
  checkTensor,
  describeValue,
  randomNormal,
  randomUniform,
  sampleSize,
  seedStream,
  type SeedStream,
} from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';
import { cholesky, fromEigen, symmetricEigen, type Matrix } from '@sbm/metrics';
import { mixtureFlowMap, type FlowMapOptions } from './flow-map';
import {
  CoordinateConditional,
  checkCoordinates,
  conditionComponents,
  psdEigen,
  type LinearGaussianMeasurement,
  type PosteriorParts,
} from './posterior';
import { isFiniteArray } from './validate';

export interface GaussianMixtureOptions {
  /** Mixture weights π_k ≥ 0; must sum to 1 within 1e-6 (they are then renormalized exactly). */
  weights: number[];
  /** Component means μ_k, K arrays of length D. */
  means: number[][];
  /**
   * Component covariances Σ_k: K symmetric positive definite D×D matrices, or K positive numbers (isotropic
   * variances v_k, Σ_k = v_k I). Default: identity for every component.
   */
  covariances?: number[][][] | number[];
}

/** Time argument: one number for the whole batch or a [B] tensor (one time per sample). */
export type TimeArg = number | tf.Tensor1D;

interface Component {
  weight: number;
  mean: number[];
  /** Eigenvalues λ_kj of Σ_k. */
  eigValues: number[];
  /** Eigenvectors of Σ_k as columns (U_k). */
  eigVectors: Matrix;
}

const LOG_2PI = Math.log(2 * Math.PI);
const WEIGHT_TOLERANCE = 1e-6;
const SYMMETRY_TOLERANCE = 1e-8;
// Eigenvalues below this fraction of the largest are treated as zero: such a Σ_k is singular in float64 already
// and its density cannot be evaluated meaningfully in float32.
const PD_TOLERANCE = 1e-12;

function invalid(argument: string, expected: string, received: unknown): SbmError {
  return new SbmError('INVALID_ARGUMENT', `GaussianMixture: ${argument}: expected ${expected}, got ${received}`, {
    argument,
    expected,
  });
}

/**
 * A Gaussian mixture p_0 = Σ_k π_k N(μ_k, Σ_k) in D dimensions: the closed-form oracle of the test suites.
 *
 * Under any SDE with an affine Gaussian kernel p_0t(x_t | x_0) = N(α(t) x_0, σ(t)² I) the marginal stays a mixture,
 * p_t = Σ_k π_k N(α μ_k, α² Σ_k + σ² I) (REFERENCE.md, "Closed-form oracle"), so its density and score are exact at
 * every t. Each Σ_k is eigendecomposed once (float64, Jacobi) as U_k Λ_k U_kᵀ; then α² Σ_k + σ² I = U_k (α² Λ_k + σ² I)
 * U_kᵀ, whose inverse and log-determinant cost O(D) per sample after one rotation — no float32 factorization, and
 * the components are combined by logSumExp, which keeps log-densities of far-away points finite.
 */
export class GaussianMixture {
  /** Dimension D. */
  readonly dim: number;
  /** Number of components with positive weight. */
  readonly numComponents: number;
  private readonly comps: Component[];
  /** True when every U_k is the identity (isotropic or diagonal covariances): the rotations are skipped. */
  private readonly axisAligned: boolean;
  // Flat float32 copies for building tensors per call (kept as typed arrays, not tensors, so that the object
  // owns no tensors and constructing or dropping it cannot leak).
  private readonly meansFlat: Float32Array;
  private readonly eigValuesFlat: Float32Array;
  private readonly eigVectorsFlat: Float32Array;
  private readonly logWeights: Float32Array;
  private cholCache: { factor: Matrix; lower: boolean }[] | null = null;
  /**
   * True when some Σ_k is singular: only posteriors given exact (noise-free) measurements are (`condition` with zero
   * noise, `conditionOnCoordinates(...).full`). Such a mixture samples and has moments, and its perturbed density and
   * score exist wherever σ(t) > 0, but it has no density at σ = 0.
   */
  readonly singular: boolean;

  constructor(options: GaussianMixtureOptions) {
    if (options === null || typeof options !== 'object') {
      throw invalid('options', 'an object { weights, means, covariances? }', describeValue(options));
    }
    const { weights, means, covariances } = options;
    if (!Array.isArray(weights) || weights.length === 0) {
      throw invalid('weights', 'a non-empty array of numbers', describeValue(weights));
    }
    const K = weights.length;
    weights.forEach((w, k) => {
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
        throw invalid(`weights[${k}]`, 'a finite number >= 0', describeValue(w));
      }
    });
    const total = weights.reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > WEIGHT_TOLERANCE) {
      throw invalid('weights', `weights summing to 1 (within ${WEIGHT_TOLERANCE})`, `a sum of ${total}`);
    }
    if (!Array.isArray(means) || means.length !== K) {
      throw invalid('means', `an array of ${K} mean vectors (one per weight)`, describeValue(means));
    }
    const D = Array.isArray(means[0]) ? means[0].length : 0;
    if (D === 0) throw invalid('means[0]', 'a non-empty array of numbers', describeValue(means[0]));
    means.forEach((m, k) => {
      if (!isFiniteArray(m, D)) {
        throw invalid(`means[${k}]`, `an array of ${D} finite numbers (the dimension of means[0])`, describeValue(m));
      }
    });

    const eig: { values: number[]; vectors: Matrix; diagonal: boolean }[] = [];
    const identity = (): Matrix => Array.from({ length: D }, (_, i) => Array.from({ length: D }, (_, j) => +(i === j)));
    if (covariances === undefined) {
      for (let k = 0; k < K; k++) eig.push({ values: new Array(D).fill(1), vectors: identity(), diagonal: true });
    } else if (!Array.isArray(covariances) || covariances.length !== K) {
      throw invalid(
        'covariances',
        `an array of ${K} covariance matrices or ${K} isotropic variances`,
        describeValue(covariances),
      );
    } else if (covariances.every((c) => typeof c === 'number')) {
      (covariances as number[]).forEach((v, k) => {
        if (!Number.isFinite(v) || v <= 0) throw invalid(`covariances[${k}]`, 'a variance > 0', describeValue(v));
        eig.push({ values: new Array(D).fill(v), vectors: identity(), diagonal: true });
      });
    } else {
      (covariances as unknown[]).forEach((c, k) => {
        const name = `covariances[${k}]`;
        if (!Array.isArray(c) || c.length !== D || !c.every((row) => isFiniteArray(row, D))) {
          throw invalid(name, `a ${D}x${D} matrix of finite numbers`, describeValue(c));
        }
        const a = c as Matrix;
        let scale = 0;
        for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) scale = Math.max(scale, Math.abs(a[i][j]));
        let diagonal = true;
        for (let i = 0; i < D; i++) {
          for (let j = i + 1; j < D; j++) {
            if (Math.abs(a[i][j] - a[j][i]) > SYMMETRY_TOLERANCE * scale) {
              throw invalid(
                name,
                'a symmetric matrix',
                `entries [${i}][${j}] = ${a[i][j]} and [${j}][${i}] = ${a[j][i]}`,
              );
            }
            if (a[i][j] !== 0 || a[j][i] !== 0) diagonal = false;
          }
        }
        const sym = a.map((row, i) => row.map((v, j) => 0.5 * (v + a[j][i])));
        const { values, vectors } = diagonal
          ? { values: sym.map((row, i) => row[i]), vectors: identity() }
          : symmetricEigen(sym);
        const lmax = Math.max(...values);
        const lmin = Math.min(...values);
        if (!(lmax > 0) || !(lmin > PD_TOLERANCE * lmax)) {
          throw invalid(name, 'a positive definite matrix', `one with smallest eigenvalue ${lmin} (largest ${lmax})`);
        }
        eig.push({ values, vectors, diagonal });
      });
    }

    // Zero-weight components contribute nothing to p_t; dropping them avoids log(0) in the logSumExp.
    const comps: Component[] = [];
    for (let k = 0; k < K; k++) {
      if (weights[k] > 0) {
        comps.push({
          weight: weights[k] / total,
          mean: means[k].slice(),
          eigValues: eig[k].values,
          eigVectors: eig[k].vectors,
        });
      }
    }
    this.dim = D;
    this.comps = comps;
    this.numComponents = comps.length;
    this.singular = false;
    this.axisAligned = eig.every((e, k) => weights[k] === 0 || e.diagonal);
    const Kp = comps.length;
    this.meansFlat = new Float32Array(Kp * D);
    this.eigValuesFlat = new Float32Array(Kp * D);
    this.eigVectorsFlat = new Float32Array(this.axisAligned ? 0 : Kp * D * D);
    this.logWeights = new Float32Array(Kp);
    comps.forEach((c, k) => {
      this.logWeights[k] = Math.log(c.weight);
      for (let i = 0; i < D; i++) {
        this.meansFlat[k * D + i] = c.mean[i];
        this.eigValuesFlat[k * D + i] = c.eigValues[i];
        if (!this.axisAligned)
          for (let j = 0; j < D; j++) this.eigVectorsFlat[(k * D + i) * D + j] = c.eigVectors[i][j];
      }
    });
  }

  /** The weights π_k (normalized; zero-weight components omitted). */
  get weights(): number[] {
    return this.comps.map((c) => c.weight);
  }
  /** The means μ_k. */
  get means(): number[][] {
    return this.comps.map((c) => c.mean.slice());
  }
  /** The covariances Σ_k as D×D matrices (float64, reassembled from the eigendecomposition). */
  get covariances(): number[][][] {
    return this.comps.map((c) => fromEigen(c.eigValues, c.eigVectors));
  }

  /** Mixture mean Σ_k π_k μ_k (float64). */
  mean(): number[] {
    const m = new Array(this.dim).fill(0);
    for (const c of this.comps) for (let i = 0; i < this.dim; i++) m[i] += c.weight * c.mean[i];
    return m;
  }

  /** Mixture covariance Σ_k π_k (Σ_k + μ_k μ_kᵀ) − m mᵀ (law of total covariance; float64). */
  covariance(): number[][] {
    const D = this.dim;
    const m = this.mean();
    const out: Matrix = Array.from({ length: D }, () => new Array(D).fill(0));
    const covs = this.covariances;
    this.comps.forEach((c, k) => {
      const S = covs[k];
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) out[i][j] += c.weight * (S[i][j] + (c.mean[i] - m[i]) * (c.mean[j] - m[j]));
      }
    });
    return out;
  }

  /**
   * The mixture of x_t at a fixed time t under `sde`: Σ_k π_k N(α μ_k, α² Σ_k + σ² I). Sample it to get exact draws
   * of p_t (e.g. the true x_T, or reference samples for a sampler at an intermediate time).
   */
  atTime(sde: Sde, t: number): GaussianMixture {
    const { alpha, variance } = scalarCoefficients(sde, t);
    return this.transformed(alpha, variance);
  }

  /** The mixture of α x + σ z, z ~ N(0, I), for fixed α ≠ 0 and σ² ≥ 0 (reuses the eigendecomposition). */
  private transformed(alpha: number, variance: number): GaussianMixture {
    const out = Object.create(GaussianMixture.prototype) as GaussianMixture;
    const comps = this.comps.map((c) => ({
      weight: c.weight,
      mean: c.mean.map((v) => alpha * v),
      eigValues: c.eigValues.map((l) => alpha * alpha * l + variance),
      eigVectors: c.eigVectors,
    }));
    const D = this.dim;
    const fields = {
      dim: D,
      numComponents: comps.length,
      comps,
      axisAligned: this.axisAligned,
      meansFlat: Float32Array.from(comps.flatMap((c) => c.mean)),
      eigValuesFlat: Float32Array.from(comps.flatMap((c) => c.eigValues)),
      eigVectorsFlat: this.eigVectorsFlat,
      logWeights: this.logWeights,
      cholCache: null,
      singular: this.singular && !(variance > 0),
    };
    Object.assign(out, fields);
    return out;
  }

  /** Mean of x_t under `sde` at time t: α(t) · mean(). */
  perturbedMean(sde: Sde, t: number): number[] {
    return this.atTime(sde, t).mean();
  }

  /** Covariance of x_t under `sde` at time t: α(t)² · covariance() + σ(t)² I. */
  perturbedCovariance(sde: Sde, t: number): number[][] {
    return this.atTime(sde, t).covariance();
  }

  /**
   * n seeded draws, shape [n, D]: a categorical component index from one uniform per sample, then μ_k + L_k z with
   * L_k the Cholesky factor of Σ_k. The uniforms and normals come from tfjs's seeded generators (JS-side, identical
   * on every backend) and the affine map is done in float64 JS, so the samples are the same on every backend.
   */
  sample(n: number, seed: number | SeedStream): tf.Tensor2D {
    checkNumber(n, 'n', { integer: true, min: 1 });
    const stream = seedStream(seed);
    const D = this.dim;
    const u = tf.tidy(() => randomUniform([n], stream).dataSync() as Float32Array);
    const z = tf.tidy(() => randomNormal([n, D], stream).dataSync() as Float32Array);
    const chol = this.choleskyFactors();
    const cum: number[] = [];
    let acc = 0;
    for (const c of this.comps) cum.push((acc += c.weight));
    const out = new Float32Array(n * D);
    for (let b = 0; b < n; b++) {
      let k = 0;
      while (k < cum.length - 1 && u[b] >= cum[k]) k++;
      const { factor: L, lower } = chol[k];
      const mu = this.comps[k].mean;
      for (let i = 0; i < D; i++) {
        let s = mu[i];
        const Li = L[i];
        const top = lower ? i : D - 1;
        for (let j = 0; j <= top; j++) s += Li[j] * z[b * D + j];
        out[b * D + i] = s;
      }
    }
    return tf.tensor2d(out, [n, D]);
  }

  /**
   * A factor F_k with F_k F_kᵀ = Σ_k per component: the lower Cholesky factor, or for a singular Σ_k (only in
   * posteriors given exact measurements) the full U_k diag(√λ_k).
   */
  private choleskyFactors(): { factor: Matrix; lower: boolean }[] {
    if (!this.cholCache) {
      this.cholCache = this.comps.map((c, k) => {
        const L = cholesky(fromEigen(c.eigValues, c.eigVectors));
        if (L) return { factor: L, lower: true };
        if (!this.singular) {
          throw new SbmError('INVALID_ARGUMENT', `GaussianMixture: covariances[${k}] is not positive definite`);
        }
        const root = c.eigValues.map((v) => Math.sqrt(v));
        return { factor: c.eigVectors.map((row) => row.map((u, j) => u * root[j])), lower: false };
      });
    }
    return this.cholCache;
  }

  private checkDensity(what: string): void {
    if (this.singular) {
      throw new SbmError(
        'UNSUPPORTED',
        `GaussianMixture.${what}: this mixture has singular covariances (a posterior given an exact measurement) and no density at σ = 0; evaluate it perturbed, at a time with σ(t) > 0`,
        { argument: what === 'logProb' || what === 'score' ? 'x' : 't' },
      );
    }
  }

  /** log p_0(x) per sample; x has shape [B, D] or [B, ...dims] with product D. */
  logProb(x: tf.Tensor): tf.Tensor1D {
    this.checkX(x);
    this.checkDensity('logProb');
    return tf.tidy(() => {
      const B = x.shape[0];
      return this.evaluate(x, tf.ones([B]) as tf.Tensor1D, tf.zeros([B]) as tf.Tensor1D, false).logp;
    });
  }

  /** ∇ₓ log p_0(x), shaped like x. */
  score(x: tf.Tensor): tf.Tensor {
    this.checkX(x);
    this.checkDensity('score');
    return tf.tidy(() => {
      const B = x.shape[0];
      return this.evaluate(x, tf.ones([B]) as tf.Tensor1D, tf.zeros([B]) as tf.Tensor1D, true).score as tf.Tensor;
    });
  }

  /**
   * The exact probability-flow ODE map under `sde` in float64: the rows of `xT` (row-major n×D, or n rows) at time
   * `from` (default sde.T) carried along dx/dt = f(t) x − ½ g(t)² ∇ log p_t(x) to `to` (default sde.samplingEps).
   * Closed form for a single Gaussian; for a mixture a per-point adaptive Dormand–Prince 5(4) solve with the exact
   * float64 score (rtol = atol = 1e-10 by default). The reference a deterministic sampler is measured against: run
   * it from the same x_T (`init`) and compare with `flowMapError` of `@sbm/samplers/testing`.
   */
  flowMap(sde: Sde, xT: Float64Array | number[] | number[][], options: FlowMapOptions = {}): Float64Array {
    return mixtureFlowMap(this.comps, this.dim, sde, xT, options);
  }

  /**
   * The posterior p(x | y) of this mixture as a prior, given a linear-Gaussian measurement y = A x + n,
   * n ~ N(0, Σ_y): again a Gaussian mixture, with per component S_k = (Σ_k⁻¹ + Aᵀ Σ_y⁻¹ A)⁻¹,
   * m_k = S_k (Aᵀ Σ_y⁻¹ y + Σ_k⁻¹ μ_k) and weights ∝ π_k N(y; A μ_k, Σ_y + A Σ_k Aᵀ), computed in float64 in the
   * Kalman form (no inverse of Σ_y, so noise 0 — an exact constraint A x = y, A of full row rank — works and gives
   * singular covariances: see `singular`). Components whose weight underflows to 0 are dropped.
   * `posterior.perturbed(sde).scoreFn` is the exact score ∇ log p_t(x_t | y) of the diffused posterior.
   */
  condition(measurement: LinearGaussianMeasurement): GaussianMixture {
    const parts = conditionComponents(this.comps, this.dim, measurement, 'condition');
    return GaussianMixture.fromParts(parts, this.comps);
  }

  /** log p(y) = log Σ_k π_k N(y; A μ_k, Σ_y + A Σ_k Aᵀ) of a linear-Gaussian measurement (float64). */
  logEvidence(measurement: LinearGaussianMeasurement): number {
    return conditionComponents(this.comps, this.dim, measurement, 'logEvidence', false).logEvidence;
  }

  /**
   * Noise-free inpainting: the posterior given x[known[i]] = values[i]. Returns the conditional of the unknown
   * coordinates as a mixture over them (`mixture`, positive definite), the same posterior in all D dimensions
   * (`full`, singular covariances with the known coordinates fixed exactly), log p(x[known] = values)
   * (`logEvidence`) and `embed` / `extract` between the two spaces.
   */
  conditionOnCoordinates(known: number[], values: number[]): CoordinateConditional {
    const split = checkCoordinates(known, values, this.dim);
    const A = split.known.map((i) => Array.from({ length: this.dim }, (_, j) => +(i === j)));
    const parts = conditionComponents(this.comps, this.dim, { A, y: split.values, noise: 0 }, 'conditionOnCoordinates');
    // Exactly: x[known] = values, and the known rows and columns of S_k vanish (Σ_kk − Σ_kk Σ_kk⁻¹ Σ_kk = 0).
    const isKnown = new Array<boolean>(this.dim).fill(false);
    split.known.forEach((i, n) => {
      isKnown[i] = true;
      for (const mean of parts.means) mean[i] = split.values[n];
    });
    for (const S of parts.covariances) {
      for (let i = 0; i < this.dim; i++) for (let j = 0; j < this.dim; j++) if (isKnown[i] || isKnown[j]) S[i][j] = 0;
    }
    const full = GaussianMixture.fromParts(parts, this.comps);
    const keep = parts.weights.map((w) => w > 0);
    const mixture = new GaussianMixture({
      weights: parts.weights.filter((_, k) => keep[k]),
      means: parts.means.filter((_, k) => keep[k]).map((mu) => split.unknown.map((i) => mu[i])),
      covariances: parts.covariances
        .filter((_, k) => keep[k])
        .map((S) => split.unknown.map((i) => split.unknown.map((j) => S[i][j]))),
    });
    return new CoordinateConditional({ mixture, full, logEvidence: parts.logEvidence, ...split });
  }

  /**
   * A mixture from conditioned components without the constructor's positive-definiteness test: each S_k is
   * eigendecomposed with its rounding-level eigenvalues (below 64 ε λ_max(Σ_k) of the prior component) set to 0.
   */
  private static fromParts(parts: PosteriorParts, prior: readonly Component[]): GaussianMixture {
    const D = parts.means[0].length;
    const comps: Component[] = [];
    let axisAligned = true;
    let singular = false;
    parts.weights.forEach((weight, k) => {
      if (!(weight > 0)) return;
      const { values, vectors } = psdEigen(parts.covariances[k], Math.max(...prior[k].eigValues));
      for (let i = 0; i < D && axisAligned; i++) {
        for (let j = 0; j < D; j++) {
          if (vectors[i][j] !== +(i === j)) {
            axisAligned = false;
            break;
          }
        }
      }
      const lmax = Math.max(...values);
      if (!(Math.min(...values) > PD_TOLERANCE * lmax)) singular = true;
      comps.push({ weight, mean: parts.means[k], eigValues: values, eigVectors: vectors });
    });
    const out = Object.create(GaussianMixture.prototype) as GaussianMixture;
    const fields = {
      dim: D,
      numComponents: comps.length,
      comps,
      axisAligned,
      meansFlat: Float32Array.from(comps.flatMap((c) => c.mean)),
      eigValuesFlat: Float32Array.from(comps.flatMap((c) => c.eigValues)),
      eigVectorsFlat: axisAligned ? new Float32Array(0) : Float32Array.from(comps.flatMap((c) => c.eigVectors.flat())),
      logWeights: Float32Array.from(comps.map((c) => Math.log(c.weight))),
      cholCache: null,
      singular,
    };
    Object.assign(out, fields);
    return out;
  }

  /** The marginals p_t of this mixture under `sde`: exact score function, log-density and moments. */
  perturbed(sde: Sde): PerturbedGaussianMixture {
    return new PerturbedGaussianMixture(this, sde);
  }

  /** @internal log p_t (`what` = 'logp') or its score ('score') at (x, t) under `sde`. */
  evaluateAt(x: tf.Tensor, sde: Sde, t: TimeArg, what: 'logp' | 'score'): tf.Tensor {
    this.checkX(x);
    const B = x.shape[0];
    const wantScore = what === 'score';
    const pick = (r: { logp: tf.Tensor1D; score?: tf.Tensor }): tf.Tensor => (wantScore ? r.score! : r.logp);
    if (typeof t === 'number') {
      const { alpha, variance } = scalarCoefficients(sde, t);
      if (!(variance > 0)) this.checkDensity(what === 'score' ? 'perturbed(sde).score' : 'perturbed(sde).logProb');
      return tf.tidy(() =>
        pick(this.evaluate(x, tf.fill([B], alpha) as tf.Tensor1D, tf.fill([B], variance) as tf.Tensor1D, wantScore)),
      );
    }
    checkTensor(t, 't', [B]);
    return tf.tidy(() => pick(this.evaluate(x, sde.alphaT(t), tf.square(sde.stdT(t)) as tf.Tensor1D, wantScore)));
  }

  /**
   * The shared kernel. With y_k = x − α μ_k, w_k = U_kᵀ y_k and c_k = α² λ_k + σ² (the eigenvalues of the
   * component covariance at t):
   *   log N_k = −½ (D ln 2π + Σ_j ln c_kj + Σ_j w_kj² / c_kj),
   *   ∇ log N_k = −U_k (w_k / c_k),
   *   log p = logSumExp_k (ln π_k + log N_k),  ∇ log p = Σ_k r_k ∇ log N_k with r_k = softmax_k (the posterior
   * responsibilities). Tensors are laid out [K, B, D] so each rotation is one batched matMul.
   */
  private evaluate(
    x: tf.Tensor,
    alpha: tf.Tensor1D,
    variance: tf.Tensor1D,
    wantScore: boolean,
  ): { logp: tf.Tensor1D; score?: tf.Tensor } {
    const K = this.numComponents;
    const D = this.dim;
    const B = x.shape[0];
    const x2 = tf.reshape(x, [1, B, D]);
    const mu = tf.tensor3d(this.meansFlat, [K, 1, D]);
    const lam = tf.tensor3d(this.eigValuesFlat, [K, 1, D]);
    const a = tf.reshape(alpha, [1, B, 1]);
    const v = tf.reshape(variance, [1, B, 1]);
    const y = tf.sub(x2, tf.mul(a, mu));
    const U = this.axisAligned ? null : tf.tensor3d(this.eigVectorsFlat, [K, D, D]);
    const w = U ? tf.matMul(y, U) : y;
    const c = tf.add(tf.mul(tf.square(a), lam), v);
    const q = tf.div(w, c);
    const maha = tf.sum(tf.mul(w, q), 2);
    const logdet = tf.sum(tf.log(c), 2);
    const logits = tf.add(
      tf.tensor2d(this.logWeights, [K, 1]),
      tf.mul(-0.5, tf.add(tf.add(maha, logdet), D * LOG_2PI)),
    ) as tf.Tensor2D;
    const logp = tf.logSumExp(logits, 0) as tf.Tensor1D;
    if (!wantScore) return { logp };
    const r = tf.exp(tf.sub(logits, tf.reshape(logp, [1, B])));
    const back = U ? tf.matMul(q, U, false, true) : q;
    const score = tf.neg(tf.sum(tf.mul(tf.reshape(r, [K, B, 1]), back), 0));
    return { logp, score: tf.reshape(score, x.shape) };
  }

  private checkX(x: tf.Tensor): void {
    checkTensor(x, 'x', undefined, { minRank: 2 });
    if (sampleSize(x.shape) !== this.dim) {
      throw new SbmError(
        'INVALID_SHAPE',
        `x: expected shape [batch, ${this.dim}] (or [batch, ...dims] with ${this.dim} values per sample), got [${x.shape.join(', ')}]`,
        { argument: 'x', expected: [null, this.dim], received: x.shape },
      );
    }
  }
}

function scalarCoefficients(sde: Sde, t: number): { alpha: number; variance: number } {
  checkNumber(t, 't', { min: 0, max: sde.T });
  const alpha = sde.alpha(t);
  const std = sde.std(t);
  return { alpha, variance: std * std };
}

/** p_t of a GaussianMixture under an affine SDE: p_t = Σ_k π_k N(α(t) μ_k, α(t)² Σ_k + σ(t)² I). */
export class PerturbedGaussianMixture {
  /** The exact score ∇ₓ log p_t(x) as a ScoreFn (t: one time per sample), ready for samplers and losses. */
  readonly scoreFn: ScoreFn;

  constructor(
    readonly mixture: GaussianMixture,
    readonly sde: Sde,
  ) {
    this.scoreFn = (x, t) => this.score(x, t);
  }

  /** ∇ₓ log p_t(x), shaped like x ([B, D] or [B, ...dims]); t is a number or a [B] tensor. */
  score(x: tf.Tensor, t: TimeArg): tf.Tensor {
    return this.mixture.evaluateAt(x, this.sde, t, 'score');
  }

  /** log p_t(x) per sample. */
  logProb(x: tf.Tensor, t: TimeArg): tf.Tensor1D {
    return this.mixture.evaluateAt(x, this.sde, t, 'logp') as tf.Tensor1D;
  }

  /** E[x_t] = α(t) E[x_0]. */
  mean(t: number): number[] {
    return this.mixture.perturbedMean(this.sde, t);
  }

  /** Cov[x_t] = α(t)² Cov[x_0] + σ(t)² I. */
  covariance(t: number): number[][] {
    return this.mixture.perturbedCovariance(this.sde, t);
  }

  /** The mixture p_t itself at a fixed t. */
  atTime(t: number): GaussianMixture {
    return this.mixture.atTime(this.sde, t);
  }

  /** n exact draws of x_t, shape [n, D]. */
  sample(n: number, t: number, seed: number | SeedStream): tf.Tensor2D {
    return this.atTime(t).sample(n, seed);
  }
}
