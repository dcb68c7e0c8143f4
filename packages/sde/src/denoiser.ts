import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, checkFnOutput } from '@sbm/core';
import type { Sde } from './sde';
import type { ScoreFn } from './types';

/** α(t) and σ(t) of p_0t(x_t | x_0) = N(α x_0, σ² I) at one time, when the caller has them already (a sampler's grid). */
export interface MarginalScale {
  alpha: number;
  std: number;
}

/**
 * The data prediction x̂₀ = E[x₀ | x_t] = (x + σ(t)² s(x, t)) / α(t): Tweedie's formula for the affine Gaussian
 * kernel x_t = α x₀ + σ z (Efron 2011; Song et al. 2021, Appendix B), the denoiser D(x, σ) of Karras et al. 2022 and
 * the x̂₀ of DPM-Solver++ (Lu et al. 2022b, eq. 9). Exact when `s` is the true score of p_t.
 *
 * `t` is one time for the batch (α, σ in float64 on the CPU; pass `at` to reuse values a sampler has precomputed) or
 * a [batch] tensor of per-sample times. The result is a new tensor; wrap calls in tf.tidy.
 */
export function dataPrediction(
  sde: Sde,
  x: tf.Tensor,
  t: number | tf.Tensor1D,
  s: tf.Tensor,
  at?: MarginalScale,
): tf.Tensor {
  checkFnOutput(s, x, 's', 'the score');
  if (typeof t === 'number') {
    const alpha = at?.alpha ?? sde.alpha(t);
    const std = at?.std ?? sde.std(t);
    // σ² is formed in float64 before the one cast to float32, as the samplers always did (bit-identical results).
    return tf.div(tf.add(x, tf.mul(s, std * std)), alpha);
  }
  return tf.tidy(() => {
    const std = broadcastBatch(sde.stdT(t), x);
    return tf.div(tf.add(x, tf.mul(s, tf.square(std))), broadcastBatch(sde.alphaT(t), x));
  });
}

/**
 * The denoiser of a score model under `sde`: (x, t) ↦ E[x₀ | x_t] = (x + σ(t)² s(x, t)) / α(t), one score call.
 * What few-step solvers, Tweedie endings, DPS (Chung et al. 2023) and the λ-projection step are written over.
 */
export function denoiser(sde: Sde, score: ScoreFn): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  return (x, t) => tf.tidy(() => dataPrediction(sde, x, t, score(x, t)));
}
