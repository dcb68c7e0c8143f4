import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, seedStream } from '@sbm/core';
import { conditionalSample } from './conditional-sample';
import { measurementResidual } from './method-registry';
import type { ConditionalSampleOptions, ConditionalStats } from './types';

/** conditionalSample's options plus the number of posterior draws to average. */
export interface PosteriorMeanOptions extends ConditionalSampleOptions {
  /** Posterior samples per input, K ≥ 1 (each a full conditionalSample run). */
  draws: number;
  /** Called after each draw with its index (1-based) and K. */
  onDraw?: (draw: number, draws: number) => void;
}

export interface PosteriorMeanStats extends ConditionalStats {
  draws: number;
  /** The integer seed of each draw: conditionalSample({ ...opts, seed: seeds[k] }) reproduces draw k. */
  seeds: number[];
}

/** The caller owns `mean` and `std`. */
export interface PosteriorMeanResult {
  /** (1/K) Σₖ x⁽ᵏ⁾: the Monte-Carlo estimate of E[x | y], the minimum-mean-squared-error reconstruction. */
  mean: tf.Tensor;
  /** Per-coordinate sample standard deviation over the K draws (denominator K − 1; zeros for K = 1): the uncertainty map. */
  std: tf.Tensor;
  /** ‖A mean − y‖ per input (empty for 'guidance'). */
  residual: number[];
  /** Summed over the draws: nfe, vjp, milliseconds. */
  stats: PosteriorMeanStats;
}

/**
 * The posterior mean E[x | y] by Monte Carlo: K independent draws of conditionalSample (same options, seeds drawn
 * from `seed`), averaged, with their per-coordinate standard deviation (Welford's update, so no draw is kept).
 * A posterior sample scores below the MMSE estimate on squared-error metrics by construction — its expected squared
 * error is twice the posterior variance, the mean's is (1 + 1/K) times it — so PSNR / SSIM comparisons against
 * smooth classical baselines should use this (score_sde reports single samples; this is what DPS-style papers'
 * "mean of N samples" rows are).
 */
export async function posteriorMean(opts: PosteriorMeanOptions): Promise<PosteriorMeanResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `posteriorMean: options: expected an object, got ${describeValue(opts)}`);
  }
  const { draws, onDraw, ...rest } = opts;
  if (typeof draws !== 'number' || !Number.isInteger(draws) || draws < 1) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `posteriorMean: draws: expected an integer ≥ 1 (posterior samples to average), got ${describeValue(draws)}`,
      { argument: 'draws' },
    );
  }
  if (onDraw !== undefined && typeof onDraw !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `posteriorMean: onDraw: expected a function, got ${describeValue(onDraw)}`, {
      argument: 'onDraw',
    });
  }
  const root = seedStream(rest.seed);
  const seeds = Array.from({ length: draws }, () => root.next());
  let mean: tf.Tensor | undefined;
  let m2: tf.Tensor | undefined;
  let stats: ConditionalStats | undefined;
  let nfe = 0;
  let vjp = 0;
  let ms = 0;
  try {
    for (let k = 0; k < draws; k++) {
      const res = await conditionalSample({ ...rest, seed: seeds[k] });
      const x = res.samples;
      stats = res.stats;
      nfe += res.stats.nfe;
      vjp += res.stats.vjp ?? 0;
      ms += res.stats.ms;
      if (!mean) {
        mean = x;
        m2 = tf.zerosLike(x);
      } else {
        const [m, s] = tf.tidy(() => {
          const d = tf.sub(x, mean!);
          const next = tf.add(mean!, tf.div(d, k + 1));
          return [next, tf.add(m2!, tf.mul(d, tf.sub(x, next)))];
        });
        tf.dispose([x, mean, m2!]);
        mean = m;
        m2 = s;
      }
      onDraw?.(k + 1, draws);
    }
    const std = tf.tidy(() => (draws > 1 ? tf.sqrt(tf.relu(tf.div(m2!, draws - 1))) : tf.zerosLike(mean!)));
    let residual: number[] = [];
    if (rest.operator && rest.y) {
      try {
        residual = await measurementResidual(rest.operator, mean!, rest.y);
      } catch (e) {
        std.dispose();
        throw e;
      }
    }
    const out = mean!;
    mean = undefined;
    return { mean: out, std, residual, stats: { ...stats!, nfe, vjp, ms, draws, seeds } };
  } finally {
    tf.dispose([mean, m2].filter((t): t is tf.Tensor => t !== undefined));
  }
}
