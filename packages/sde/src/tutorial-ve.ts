import * as tf from '@tensorflow/tfjs';
import { checkNumber, brand } from '@sbm/core';
import { Sde } from './sde';
import type { SdeConfig } from './types';

export interface TutorialVeSdeOptions {
  sigma?: number;
  N?: number;
}

/**
 * The VE SDE of Song's MNIST tutorial: dx = σ^t dw (t ∈ [0, 1]), with marginal std
 * √((σ^{2t} − 1) / (2 ln σ)) and the prior N(0, std(1)² I) — std(1) ≈ 9.85 for σ = 25, not 25.
 */
export class TutorialVeSde extends Sde {
  readonly name = 'tutorial-ve';
  readonly sigma: number;
  readonly samplingEps = 1e-3;
  private readonly logSigma: number;

  constructor(opts: TutorialVeSdeOptions = {}) {
    super(1, opts.N ?? 1000);
    this.sigma = checkNumber(opts.sigma ?? 25, 'sigma', { gt: 1 });
    this.logSigma = Math.log(this.sigma);
  }

  get priorStd(): number {
    return this.std(1);
  }

  driftCoefT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.zerosLike(t);
  }
  diffusionT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.exp(tf.mul(t, this.logSigma))) as tf.Tensor1D;
  }
  alphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.onesLike(t);
  }
  stdT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sqrt(tf.div(tf.expm1(tf.mul(t, 2 * this.logSigma)), 2 * this.logSigma))) as tf.Tensor1D;
  }

  override driftCoef(): number {
    return 0;
  }
  override diffusion(t: number): number {
    return Math.exp(t * this.logSigma);
  }
  override alpha(): number {
    return 1;
  }
  override std(t: number): number {
    return Math.sqrt(Math.expm1(2 * t * this.logSigma) / (2 * this.logSigma));
  }
  override tFromEdmSigma(sigma: number): number {
    this.checkEdmSigmaArg(sigma);
    return Math.min(1, Math.max(0, Math.log1p(2 * this.logSigma * sigma * sigma) / (2 * this.logSigma)));
  }

  toConfig(): SdeConfig {
    return { name: 'tutorial-ve', sigma: this.sigma, N: this.N };
  }
}

brand(TutorialVeSde.prototype, 'sde/tutorial-ve');
