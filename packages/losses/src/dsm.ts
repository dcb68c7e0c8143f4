import * as tf from '@tensorflow/tfjs';
import { SbmError, broadcastBatch, checkChoice, checkOptions, seedStream, type SeedStream } from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';
import {
  type Reduction,
  batchTimes,
  callChecked,
  checkBatch,
  checkEps,
  checkFn,
  checkReduction,
  checkSde,
  checkSeedArg,
  reduceSample,
} from './internal';

/**
 * λ(t) of the weighted DSM objective λ(t)·‖s(x_t, t) − ∇log p_0t(x_t | x_0)‖² (Song et al. 2021, eq. 7):
 * - 'default': λ = σ(t)², the score_sde default; the loss is ‖σ s + z‖², bounded as σ → 0;
 * - 'likelihood': λ = g(t)², which makes the objective an upper bound on the negative log-likelihood
 *   (Song, Durkan, Murray & Ermon 2021, "Maximum likelihood training of score-based diffusion models", Thm. 1);
 * - a function t ↦ λ(t) ([B] → [B]) for any other weighting.
 */
export type DsmWeighting = 'default' | 'likelihood' | ((t: tf.Tensor1D) => tf.Tensor1D);

export interface DsmOptions {
  /** Smallest time: t ~ U(eps, T) (default 1e-5, score_sde's continuous losses). */
  eps?: number;
  /** λ(t); default 'default' (λ = σ²). */
  weighting?: DsmWeighting;
  /**
   * score_sde's flag: false (default) reduces each sample by ½·sum over its dimensions, true by the mean.
   * Ignored when `reduction` is given.
   */
  reduceMean?: boolean;
  /** Per-sample reduction over dimensions: 'half-sum' (= reduceMean false), 'mean', or 'sum' (tutorial form). */
  reduction?: Reduction;
  /** Evaluate at fixed times instead of t ~ U(eps, T): one number for the batch or a [B] tensor. */
  t?: number | tf.Tensor1D;
}

const WEIGHTINGS = ['default', 'likelihood'] as const;
export const DSM_OPTION_KEYS = ['eps', 'weighting', 'reduceMean', 'reduction', 't'] as const;

function checkWeighting(w: unknown): DsmWeighting {
  if (typeof w === 'function') return w as DsmWeighting;
  return checkChoice(w, 'weighting', WEIGHTINGS);
}

/**
 * Per-sample continuous denoising score matching loss ([B]): x_t = α(t) x_0 + σ(t) z with z ~ N(0, I), and
 * λ(t)·‖s(x_t, t) + z/σ(t)‖² reduced over dimensions (score_sde losses.get_sde_loss_fn). The conditional score
 * ∇log p_0t(x_t | x_0) is −z/σ, so the true marginal score minimises the expectation (Vincent 2011).
 * Noise and times are drawn from `seed`; the result is differentiable with respect to any variable `score` uses.
 */
export function dsmLossPerSample(
  score: ScoreFn,
  x0: tf.Tensor,
  sde: Sde,
  seed: number | SeedStream,
  opts: DsmOptions = {},
): tf.Tensor1D {
  checkFn(score, 'score', '(x, t) => tensor');
  checkBatch(x0, 'x0');
  checkSde(sde);
  checkOptions(opts, DSM_OPTION_KEYS, 'dsmLoss', {});
  const stream = seedStream(checkSeedArg(seed));
  const eps = checkEps(opts.eps ?? 1e-5, sde);
  const weighting = checkWeighting(opts.weighting ?? 'default');
  const reduction = checkReduction(opts, 'half-sum');
  const B = x0.shape[0];
  return tf.tidy(() => {
    const t = batchTimes(B, sde, eps, opts.t, stream);
    const { xt, z, std } = sde.perturb(x0, t, stream);
    const s = callChecked('score', score(xt, t), xt);
    // ‖σ s + z‖² = σ²‖s + z/σ‖²: computing the σ-scaled residual avoids dividing by σ(eps) ≈ 0.
    const residual = tf.add(tf.mul(s, broadcastBatch(std, xt)), z);
    const base = reduceSample(tf.square(residual), reduction);
    if (weighting === 'default') return base;
    const lambda = weighting === 'likelihood' ? tf.square(sde.diffusionT(t)) : callWeighting(weighting, t);
    return tf.mul(base, tf.div(lambda, tf.square(std)));
  }) as tf.Tensor1D;
}

function callWeighting(fn: (t: tf.Tensor1D) => tf.Tensor1D, t: tf.Tensor1D): tf.Tensor {
  const out = fn(t);
  if (!(out instanceof tf.Tensor) || out.rank !== 1 || out.shape[0] !== t.shape[0]) {
    throw new SbmError(
      'INVALID_SHAPE',
      `weighting: expected the weighting function to return a [${t.shape[0]}] tensor, got ${
        out instanceof tf.Tensor ? `[${out.shape.join(', ')}]` : typeof out
      }`,
      { argument: 'weighting' },
    );
  }
  return out;
}

/** Continuous DSM loss: the batch mean of {@link dsmLossPerSample} (a scalar for tf.variableGrads / optimizers). */
export function dsmLoss(
  score: ScoreFn,
  x0: tf.Tensor,
  sde: Sde,
  seed: number | SeedStream,
  opts: DsmOptions = {},
): tf.Scalar {
  return tf.tidy(() => tf.mean(dsmLossPerSample(score, x0, sde, seed, opts))) as tf.Scalar;
}

/**
 * The loss of Song's MNIST tutorial: mean over the batch of the sum over dimensions of (s·σ + z)², t ~ U(eps, 1).
 * Equal to `dsmLoss(..., { reduction: 'sum' })`, i.e. twice score_sde's default.
 */
export function tutorialDsmLoss(
  score: ScoreFn,
  x0: tf.Tensor,
  sde: Sde,
  seed: number | SeedStream,
  opts: Pick<DsmOptions, 'eps' | 't'> = {},
): tf.Scalar {
  checkOptions(opts, ['eps', 't'], 'tutorialDsmLoss', {});
  return dsmLoss(score, x0, sde, seed, { eps: opts.eps, t: opts.t, reduction: 'sum' });
}
