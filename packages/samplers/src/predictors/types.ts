import type * as tf from '@tensorflow/tfjs';
import type { SeedStream } from '@sbm/core';
import type { ReverseSde, Sde } from '@sbm/sde';

/** What a predictor or corrector is built from. */
export interface UpdateContext {
  /**
   * The SDE, rebuilt with N equal to the sampler's step count (the SMLD / DDPM grids are indexed by it) unless the
   * predictor is 'euler-maruyama' or 'none' and the corrector 'none' (then the caller's SDE as given).
   */
  sde: Sde;
  /** Its reverse process under the (counted) score; `rsde.evalScore(x, t)` calls the score. */
  rsde: ReverseSde;
  /** Noise source: each update draws from it in a fixed order. */
  stream: SeedStream;
}

/** One update of the state. `x` goes on; `xMean` is the same update without the fresh noise. */
export interface UpdateResult {
  x: tf.Tensor;
  xMean: tf.Tensor;
}

/**
 * A predictor: one step of a reverse-time SDE solver from t to t + dt (dt < 0). Runs inside tf.tidy. `t` is one time
 * for the whole batch; build per-sample tensors with fillTime.
 */
export interface Predictor {
  update(x: tf.Tensor, t: number, dt: number): UpdateResult;
}

export interface PredictorOptions extends UpdateContext {
  /** Use the probability-flow ODE instead of the reverse SDE (deterministic predictors). */
  probabilityFlow: boolean;
}

export type PredictorFactory = (opts: PredictorOptions) => Predictor;

/** A corrector: score-based MCMC at a fixed time t (inside tf.tidy). */
export interface Corrector {
  update(x: tf.Tensor, t: number): UpdateResult;
}

export interface CorrectorOptions extends UpdateContext {
  /** Target signal-to-noise ratio r (Song et al. 2021, Algorithms 4–5). */
  snr: number;
  /** MCMC steps per time. */
  nSteps: number;
}

export type CorrectorFactory = (opts: CorrectorOptions) => Corrector;
