import type * as tf from '@tensorflow/tfjs';
import type { SeedStream } from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';

/**
 * A noise-conditional score s(x, σ) ≈ ∇ₓ log p_σ(x), p_σ = p_data ∗ N(0, σ² I) (NCSN, Song & Ermon 2019).
 * `sigma` has shape [batch].
 */
export type NoiseScoreFn = (x: tf.Tensor, sigma: tf.Tensor1D) => tf.Tensor;

/** Reported after each step of a sampler. */
export interface SampleProgress {
  sampler: string;
  /** Steps done (1-based). */
  step: number;
  /** Total steps. */
  steps: number;
  /** Time (SDE samplers) or noise level σ (Langevin samplers) just reached. */
  t: number;
  /** Score evaluations so far. */
  nfe: number;
  /** step / steps. */
  fraction: number;
}

/** One point of a trajectory. The tensors are borrowed: clone or read them to keep them. */
export interface TrajectoryPoint {
  step: number;
  t: number;
  x: tf.Tensor;
  /** The noise-free part of the last update, where the sampler has one (PC: x_mean). */
  xMean?: tf.Tensor;
}

/** Options every sampler takes. */
export interface LoopOptions {
  /** Fixes every random draw (prior sample and per-step noise): same seed + backend ⇒ same samples. */
  seed: number | SeedStream;
  /** Checked once per step; an aborted signal ends sampling with SbmError('ABORTED') and frees every tensor. */
  signal?: AbortSignal;
  onProgress?: (p: SampleProgress) => void;
  /** Trajectory streaming: called every `trajectoryEvery` steps (default 1) and after the last. */
  onTrajectory?: (p: TrajectoryPoint) => void | Promise<void>;
  trajectoryEvery?: number;
  /** Yield to the event loop every this many steps (default 1). */
  yieldEvery?: number;
  /**
   * Called inside tf.tidy after every step with the new state and the time it reached (PC: the step's grid time t_i, at which
   * score_sde's inpainter projects; the Langevin samplers: the σ level); returns the state to go on with. This is how conditional sampling (@sbm/inverse-problems: projection
   * onto measurements, data consistency) rides on any fixed-step sampler. `xMean` is the noise-free part of the step
   * where the sampler has one (PC); a multistep solver's history of model outputs is left as it is.
   */
  afterStep?: AfterStepFn;
}

/** See LoopOptions.afterStep. Return new tensors or the given ones; do not dispose the given ones. */
export type AfterStepFn = (
  state: { x: tf.Tensor; xMean?: tf.Tensor },
  t: number,
  step: number,
) => { x: tf.Tensor; xMean?: tf.Tensor };

/** Options of the samplers that integrate an SDE's reverse process from T to eps. */
export interface SdeSamplerOptions extends LoopOptions {
  sde: Sde;
  score: ScoreFn;
  /** [batch, ...dims] of the samples. */
  shape: number[];
  /** Number of steps (meaning per sampler; see each). */
  steps?: number;
  /** Last time of the grid, in (0, T) (default sde.samplingEps: 1e-5 VE, 1e-3 VP / sub-VP). */
  eps?: number;
  /** x_T to start from (default a draw from the prior). Not disposed; must have `shape`. */
  init?: tf.Tensor;
}

export interface SampleStats {
  sampler: string;
  /** Score evaluations. */
  nfe: number;
  /** Steps taken (accepted steps for adaptive solvers). */
  steps: number;
  /** Wall-clock milliseconds. */
  ms: number;
  /** Rejected step attempts (adaptive solvers only). */
  rejected?: number;
  /** The grid's schedule (fixed-grid solvers): a schedule name, 'sigmas' or 'times'. */
  schedule?: string;
}

/** The caller owns `samples`. */
export interface SampleResult {
  samples: tf.Tensor;
  stats: SampleStats;
}
