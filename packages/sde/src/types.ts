import type * as tf from '@tensorflow/tfjs';

/**
 * A score function s(x, t) ≈ ∇ₓ log p_t(x). `t` has shape [batch]. The returned tensor has the shape of `x`.
 * Samplers and the likelihood call it inside tf.tidy, so it may allocate freely.
 */
export type ScoreFn = (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor;

/** Plain-JSON SDE configuration: `{ "name": "vp", "betaMin": 0.1, "betaMax": 20 }`. */
export interface SdeConfig {
  name: string;
  [key: string]: unknown;
}

/** Drift f(x, t) and diffusion g(t) of dx = f dt + g dw. `diffusion` has shape [batch]. */
export interface SdeCoefficients {
  drift: tf.Tensor;
  diffusion: tf.Tensor1D;
}

/** One discretized step's coefficients: x_{i+1} = x_i + f + G z. `G` has shape [batch]. */
export interface DiscreteCoefficients {
  f: tf.Tensor;
  G: tf.Tensor1D;
}

/** Mean and std of the perturbation kernel p_0t(x_t | x_0) = N(mean, std² I). `std` has shape [batch]. */
export interface MarginalProb {
  mean: tf.Tensor;
  std: tf.Tensor1D;
}
