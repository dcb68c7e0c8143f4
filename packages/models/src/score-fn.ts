import * as tf from '@tensorflow/tfjs';
import { SbmError, broadcastBatch, checkChoice, checkNumber, seedStream, type SeedStream } from '@sbm/core';
import { isVeType, type ScoreFn, type Sde } from '@sbm/sde';
import { stdSde } from './conditioning';
import type { ScoreModel } from './model';

/**
 * How the network output becomes a score (score_sde models/utils.get_score_fn, continuous case):
 * - `'noise-time'` (VP, sub-VP): s(x, t) = −model(x, timeScale·t) / std(t) — the network predicts the noise z of
 *   x_t = α x_0 + std·z, labelled by 999·t as in score_sde.
 * - `'score-sigma'` (VE): s(x, t) = model(x, σ(t)) with σ(t) = std(t); an NCSN++ with `scaleBySigma` divides by σ
 *   itself (and embeds log σ).
 * - `'score-time'` (the tutorial ScoreNet, or any model that returns the score): s(x, t) = model(x, t).
 */
export type Parameterization = 'noise-time' | 'score-sigma' | 'score-time';

export interface ScoreFnOptions {
  /**
   * Default `'auto'`: `'score-time'` for a model that divides by its own marginal std (ScoreNet, MLP with
   * `marginalProbStd`), else `'score-sigma'` for VE-type SDEs (α ≡ 1: `ve`, `tutorial-ve`), else `'noise-time'`.
   */
  parameterization?: Parameterization | 'auto';
  /** Time label scale for `'noise-time'` (score_sde: 999 = N − 1 of the DDPM grid). */
  timeScale?: number;
  /** Run the model in training mode (dropout on); needs `seed`. */
  training?: boolean;
  /** Dropout seed: each call of the returned function draws fresh masks from this stream. */
  seed?: number | SeedStream;
}

/** The parameterization `createScoreFn` would pick for this model and SDE. */
export function defaultParameterization(model: ScoreModel, sde: Sde): Parameterization {
  if (model.toConfig().marginalProbStd !== undefined) return 'score-time';
  return isVeType(sde) ? 'score-sigma' : 'noise-time';
}

/** Whether two SDEs have the same marginal std (what the model divides by); N and other options may differ. */
function sameStd(a: Sde, b: Sde): boolean {
  if (a.T !== b.T) return false;
  return [0.01, 0.1, 0.5, 0.9, 1].every((f) => {
    const [sa, sb] = [a.std(f * a.T), b.std(f * b.T)];
    return Math.abs(sa - sb) <= 1e-6 * Math.max(Math.abs(sa), Math.abs(sb));
  });
}

/**
 * Wraps a score network as the `ScoreFn` (x, t) ↦ ∇ₓ log p_t(x) that samplers, losses and the likelihood take.
 * The returned function allocates only its result (safe in tf.tidy / tf.variableGrads).
 */
export function createScoreFn(model: ScoreModel, sde: Sde, opts: ScoreFnOptions = {}): ScoreFn {
  const requested = checkChoice(opts.parameterization ?? 'auto', 'parameterization', [
    'auto',
    'noise-time',
    'score-sigma',
    'score-time',
  ] as const);
  const param = requested === 'auto' ? defaultParameterization(model, sde) : requested;
  const timeScale = checkNumber(opts.timeScale ?? 999, 'timeScale', { gt: 0 });
  const own = model.toConfig().marginalProbStd as Record<string, unknown> | undefined;
  if (own !== undefined) {
    // The model divides by its own std(t): it must be the std of the SDE it is sampled / trained with.
    if (param !== 'score-time') {
      throw new SbmError(
        'CONFIG_MISMATCH',
        `parameterization: a ${model.name} with marginalProbStd returns the score of t; expected "score-time", got "${param}"`,
        { argument: 'parameterization' },
      );
    }
    if (!sameStd(stdSde(own, 'model.marginalProbStd').sde, sde)) {
      throw new SbmError(
        'CONFIG_MISMATCH',
        `sde: the model divides by the std of ${JSON.stringify(own)}, but the SDE is ${JSON.stringify(sde.toConfig())}`,
        { argument: 'sde', expected: own, received: sde.toConfig() },
      );
    }
  }
  if (opts.training && model.dropoutRate > 0 && opts.seed === undefined) {
    throw new SbmError('INVALID_ARGUMENT', 'seed: expected a dropout seed with training: true, got undefined', {
      argument: 'seed',
    });
  }
  const stream = opts.seed === undefined ? undefined : seedStream(opts.seed);
  const applyOpts = () => ({ training: opts.training === true, seed: stream?.next() });

  switch (param) {
    case 'score-time':
      return (x, t) => model.apply(x, t, applyOpts());
    case 'score-sigma':
      return (x, t) => tf.tidy(() => model.apply(x, sde.stdT(t), applyOpts()));
    case 'noise-time':
      return (x, t) =>
        tf.tidy(() => {
          const out = model.apply(x, tf.mul(t, timeScale) as tf.Tensor1D, applyOpts());
          return tf.div(tf.neg(out), broadcastBatch(sde.stdT(t), out));
        });
  }
}
