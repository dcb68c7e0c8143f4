import * as tf from '@tensorflow/tfjs';
import { SbmError, broadcastBatch, checkNumber, brand } from '@sbm/core';
import { Sde } from './sde';
import type { DiscreteCoefficients, SdeConfig } from './types';

export interface VpSdeOptions {
  betaMin?: number;
  betaMax?: number;
  N?: number;
  T?: number;
}

/**
 * Shared by VP and sub-VP (Song et al. 2021, eqs. 32–34): β(t) = β_min + s (β_max − β_min) with s = t/T, and
 * log α(t) = −¼ s² (β_max − β_min) − ½ s β_min.
 */
abstract class LinearBetaSde extends Sde {
  readonly betaMin: number;
  readonly betaMax: number;
  readonly samplingEps = 1e-3;
  readonly priorStd = 1;

  constructor(opts: VpSdeOptions) {
    super(opts.T ?? 1, opts.N ?? 1000);
    this.betaMin = checkNumber(opts.betaMin ?? 0.1, 'betaMin', { gt: 0 });
    this.betaMax = checkNumber(opts.betaMax ?? 20, 'betaMax', { gt: this.betaMin });
  }

  betaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.add(this.betaMin, tf.mul(t, (this.betaMax - this.betaMin) / this.T))) as tf.Tensor1D;
  }
  beta(t: number): number {
    return this.betaMin + (t / this.T) * (this.betaMax - this.betaMin);
  }
  protected logMeanCoeffT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const s = tf.div(t, this.T);
      return tf.sub(tf.mul(tf.square(s), -0.25 * (this.betaMax - this.betaMin)), tf.mul(s, 0.5 * this.betaMin));
    }) as tf.Tensor1D;
  }
  protected logMeanCoeff(t: number): number {
    const s = t / this.T;
    return -0.25 * s * s * (this.betaMax - this.betaMin) - 0.5 * s * this.betaMin;
  }

  // f(x, t) = −½ β(t) x. β is a rate per unit of t/T, so the drift in t carries 1/T.
  driftCoefT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.mul(this.betaT(t), -0.5 / this.T)) as tf.Tensor1D;
  }
  override driftCoef(t: number): number {
    return (-0.5 * this.beta(t)) / this.T;
  }
  alphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.exp(this.logMeanCoeffT(t))) as tf.Tensor1D;
  }
  override alpha(t: number): number {
    return Math.exp(this.logMeanCoeff(t));
  }

  /** β_i of the DDPM grid: linspace(β_min/N, β_max/N, N). */
  discreteBeta(i: number): number {
    const lo = this.betaMin / this.N;
    const hi = this.betaMax / this.N;
    return this.N === 1 ? hi : lo + (i / (this.N - 1)) * (hi - lo);
  }
  discreteBetaT(i: tf.Tensor1D): tf.Tensor1D {
    const lo = this.betaMin / this.N;
    const step = this.N === 1 ? 0 : (this.betaMax / this.N - lo) / (this.N - 1);
    return tf.tidy(() => tf.add(lo, tf.mul(i, step))) as tf.Tensor1D;
  }

  /** The DDPM grid needs every β_i = β/N below 1, else √(1 − β_i) is NaN; fail loudly instead. */
  protected checkDiscreteGrid(): void {
    if (this.betaMax / this.N >= 1) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `N: the discrete DDPM grid needs betaMax / N < 1, got betaMax ${this.betaMax} and N ${this.N} (use N > ${Math.floor(this.betaMax)} or a continuous-time sampler)`,
        { argument: 'N', received: this.N },
      );
    }
  }

  /** Langevin step scale α_i = 1 − β_i on the DDPM grid (score_sde LangevinCorrector). */
  override correctorAlphaT(t: tf.Tensor1D): tf.Tensor1D {
    this.checkDiscreteGrid();
    return tf.tidy(() => tf.sub(1, this.discreteBetaT(this.timestepT(t)))) as tf.Tensor1D;
  }
}

/** Variance-preserving SDE (DDPM in continuous time): dx = −½ β(t) x dt + √β(t) dw. */
export class VpSde extends LinearBetaSde {
  readonly name: string = 'vp';

  constructor(opts: VpSdeOptions = {}) {
    super(opts);
  }

  diffusionT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sqrt(tf.div(this.betaT(t), this.T))) as tf.Tensor1D;
  }
  override diffusion(t: number): number {
    return Math.sqrt(this.beta(t) / this.T);
  }
  stdT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sqrt(tf.neg(tf.expm1(tf.mul(this.logMeanCoeffT(t), 2))))) as tf.Tensor1D;
  }
  override std(t: number): number {
    return Math.sqrt(-Math.expm1(2 * this.logMeanCoeff(t)));
  }
  /**
   * Closed-form inverse of λ(t) = ln α − ln σ, as in DPM-Solver's NoiseScheduleVP: with L = −ln α = ½ ln(1 + e^{−2λ}),
   * ¼ Δβ s² + ½ β_min s = L gives s = 4L / (β_min + √(β_min² + 4 Δβ L)) (the stable root).
   */
  override tFromLambda(lambda: number): number {
    this.checkLambdaArg(lambda);
    // L = ½ softplus(−2λ), written so that very negative λ (high noise) does not overflow exp.
    const x = -2 * lambda;
    const L = 0.5 * (Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
    if (L === Infinity) return this.T;
    const d = this.betaMax - this.betaMin;
    const s = (4 * L) / (this.betaMin + Math.sqrt(this.betaMin * this.betaMin + 4 * d * L));
    return Math.min(this.T, Math.max(0, s * this.T));
  }
  /** For VP, σ_EDM = σ/α = e^{−λ}. */
  override tFromEdmSigma(sigma: number): number {
    this.checkEdmSigmaArg(sigma);
    return this.tFromLambda(-Math.log(sigma));
  }

  /** DDPM chain: x_i = √(1 − β_i) x_{i−1} + √β_i z (score_sde VPSDE.discretize). */
  override discretize(x: tf.Tensor, t: tf.Tensor1D): DiscreteCoefficients {
    this.checkXt(x, t);
    return tf.tidy(() => {
      this.checkDiscreteGrid();
      const beta = this.discreteBetaT(this.timestepT(t));
      const f = tf.mul(tf.sub(tf.sqrt(broadcastBatch(tf.sub(1, beta), x)), 1), x);
      return { f, G: tf.sqrt(beta) as tf.Tensor1D };
    });
  }

  toConfig(): SdeConfig {
    return { name: this.name, betaMin: this.betaMin, betaMax: this.betaMax, N: this.N, T: this.T };
  }
}

/**
 * sub-VP SDE (Song et al. 2021, eq. 34): same drift as VP, g² = β(t)(1 − e^{−2 β_min s − (β_max − β_min) s²});
 * marginal std 1 − α² — not square-rooted, which is right for sub-VP. The discretization is the default Euler one.
 */
export class SubVpSde extends LinearBetaSde {
  readonly name = 'subvp';

  constructor(opts: VpSdeOptions = {}) {
    super(opts);
  }

  diffusionT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const discount = tf.neg(tf.expm1(tf.mul(this.logMeanCoeffT(t), 4)));
      return tf.sqrt(tf.div(tf.mul(this.betaT(t), discount), this.T));
    }) as tf.Tensor1D;
  }
  override diffusion(t: number): number {
    return Math.sqrt((this.beta(t) * -Math.expm1(4 * this.logMeanCoeff(t))) / this.T);
  }
  stdT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.neg(tf.expm1(tf.mul(this.logMeanCoeffT(t), 2)))) as tf.Tensor1D;
  }
  override std(t: number): number {
    return -Math.expm1(2 * this.logMeanCoeff(t));
  }
  toConfig(): SdeConfig {
    return { name: 'subvp', betaMin: this.betaMin, betaMax: this.betaMax, N: this.N, T: this.T };
  }
}

brand(VpSde.prototype, 'sde/vp');

brand(SubVpSde.prototype, 'sde/subvp');
