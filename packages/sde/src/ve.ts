import * as tf from '@tensorflow/tfjs';
import { checkNumber, brand } from '@sbm/core';
import { Sde } from './sde';
import type { DiscreteCoefficients, SdeConfig } from './types';

export interface VeSdeOptions {
  sigmaMin?: number;
  sigmaMax?: number;
  N?: number;
  T?: number;
}

/**
 * Variance-exploding SDE (SMLD / NCSN in continuous time; Song et al. 2021, eq. 30):
 * dx = σ(t) √(2 ln(σ_max/σ_min)) dw, σ(t) = σ_min (σ_max/σ_min)^t.
 * Like score_sde, the marginal std is σ(t) itself, not √(σ(t)² − σ_min²).
 */
export class VeSde extends Sde {
  readonly name = 've';
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  readonly samplingEps = 1e-5;
  private readonly logRatio: number;

  constructor(opts: VeSdeOptions = {}) {
    super(opts.T ?? 1, opts.N ?? 1000);
    this.sigmaMin = checkNumber(opts.sigmaMin ?? 0.01, 'sigmaMin', { gt: 0 });
    this.sigmaMax = checkNumber(opts.sigmaMax ?? 50, 'sigmaMax', { gt: this.sigmaMin });
    this.logRatio = Math.log(this.sigmaMax / this.sigmaMin);
  }

  get priorStd(): number {
    return this.sigmaMax;
  }

  /** σ(t) for t ∈ [0, T] (t/T is the exponent, so that σ(T) = σ_max for any T). */
  sigmaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.mul(this.sigmaMin, tf.exp(tf.mul(t, this.logRatio / this.T)))) as tf.Tensor1D;
  }

  driftCoefT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.zerosLike(t);
  }
  diffusionT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.mul(this.sigmaT(t), Math.sqrt((2 * this.logRatio) / this.T))) as tf.Tensor1D;
  }
  alphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.onesLike(t);
  }
  stdT(t: tf.Tensor1D): tf.Tensor1D {
    return this.sigmaT(t);
  }

  override driftCoef(): number {
    return 0;
  }
  override diffusion(t: number): number {
    return this.sigma(t) * Math.sqrt((2 * this.logRatio) / this.T);
  }
  override alpha(): number {
    return 1;
  }
  override std(t: number): number {
    return this.sigma(t);
  }
  sigma(t: number): number {
    return this.sigmaMin * Math.exp((t / this.T) * this.logRatio);
  }
  override tFromEdmSigma(sigma: number): number {
    this.checkEdmSigmaArg(sigma);
    return Math.min(this.T, Math.max(0, (this.T * Math.log(sigma / this.sigmaMin)) / this.logRatio));
  }

  /** σ_i of the SMLD grid: geometric from σ_min (i = 0) to σ_max (i = N − 1). */
  discreteSigma(i: number): number {
    return this.N === 1 ? this.sigmaMax : this.sigmaMin * Math.exp((i / (this.N - 1)) * this.logRatio);
  }
  /** σ_i for a [B] tensor of indices. */
  discreteSigmaT(i: tf.Tensor1D): tf.Tensor1D {
    const step = this.N === 1 ? 0 : this.logRatio / (this.N - 1);
    return tf.tidy(() => tf.mul(this.sigmaMin, tf.exp(tf.mul(i, step)))) as tf.Tensor1D;
  }

  /** SMLD chain: x_i = x_{i−1} + √(σ_i² − σ_{i−1}²) z, σ_{−1} = 0 (score_sde VESDE.discretize). */
  override discretize(x: tf.Tensor, t: tf.Tensor1D): DiscreteCoefficients {
    this.checkXt(x, t);
    return tf.tidy(() => {
      const i = this.timestepT(t);
      const sigma = this.discreteSigmaT(i);
      const prev = tf.where(tf.equal(i, 0), tf.zerosLike(t), this.discreteSigmaT(tf.sub(i, 1) as tf.Tensor1D));
      const G = tf.sqrt(tf.sub(tf.square(sigma), tf.square(prev))) as tf.Tensor1D;
      return { f: tf.zerosLike(x), G };
    });
  }

  toConfig(): SdeConfig {
    return { name: 've', sigmaMin: this.sigmaMin, sigmaMax: this.sigmaMax, N: this.N, T: this.T };
  }
}

brand(VeSde.prototype, 'sde/ve');
