import type * as tf from '@tensorflow/tfjs';
import type { SeedStream } from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';
import type { SampleProgress, SampleStats } from '@sbm/samplers';
import type { LinearOperator } from './operator';

/** A noise-conditional classifier: logits [b, classes] of p_t(c | x_t) at times t [b] (score_sde's is conditioned on σ_t). */
export type TimeClassifierFn = (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor;

/** What every conditional sampler takes. Method-specific options are listed with each method. */
export interface ConditionalSampleOptions {
  /** Registered method: 'projection', 'lambda-projection', 'dps', 'repaint', 'guidance' (see listMethods()). */
  method: string;
  sde: Sde;
  /** The unconditional score s(x, t) ≈ ∇ₓ log p_t(x). */
  score: ScoreFn;
  /** [batch, ...operator.inShape]. */
  shape: number[];
  seed: number | SeedStream;
  /** The measurement operator A (all methods but 'guidance'). */
  operator?: LinearOperator;
  /** The measurements y: [batch, ...operator.outShape] (all methods but 'guidance'). Not disposed. */
  y?: tf.Tensor;
  /** Measurement noise σ_y ≥ 0 (default 0): y = A x₀ + σ_y n. */
  noiseStd?: number;
  /** The sampler that carries the method (default per method, 'pc' for the score_sde ones); any registered name the method supports. */
  sampler?: string;
  /** Options passed to that sampler (steps, snr, eps, schedule, ...). */
  samplerOptions?: Record<string, unknown>;
  signal?: AbortSignal;
  onProgress?: (p: SampleProgress) => void;
  /** Method settings (λ, ζ, semantics, jump length, classifier, ...): see each method's options type. */
  [setting: string]: unknown;
}

export interface ConditionalStats extends SampleStats {
  method: string;
  /** Vector–Jacobian products through the score (DPS, guidance). */
  vjp?: number;
}

/** The caller owns `samples`. */
export interface ConditionalResult {
  samples: tf.Tensor;
  /** ‖A x − y‖ per sample (Euclidean, over the measurement); empty for 'guidance'. */
  residual: number[];
  stats: ConditionalStats;
}

/** A conditional sampling method, as registerMethod stores it. */
export interface MethodDefinition {
  /** Runs the method on already-checked common options (operator checked, y shaped and finite, noiseStd ≥ 0). */
  run(opts: ConditionalSampleOptions): Promise<Omit<ConditionalResult, 'residual'>>;
  /** Its own option keys, beyond the common ones (strict check with a did-you-mean). */
  keys: readonly string[];
  /** Whether it needs operator and y (all but 'guidance'). */
  needsMeasurement: boolean;
  /** Samplers it can ride on ('any fixed-step' for the afterStep ones, or a list), for messages and the CLI. */
  samplers: readonly string[] | 'fixed-step' | 'any';
  description?: string;
}
