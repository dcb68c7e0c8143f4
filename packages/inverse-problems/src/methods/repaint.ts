import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, checkOptions, describeValue, fillTime, randomNormal } from '@sbm/core';
import { dataPrediction } from '@sbm/sde';
import { Sampler } from '@sbm/samplers';
import type { LinearOperator } from '../operator';
import type { ConditionalSampleOptions, ConditionalStats, MethodDefinition } from '../types';
import { streamsOf } from './shared-carrier';
import { mergeKnown, prepareDecoupled, replaceKnown } from './shared-decoupled';

/**
 * RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using denoising diffusion probabilistic models", Algorithm 1
 * and its jump schedule): ancestral steps down a fixed grid with the known T-coordinates replaced by the measurement
 * perturbed to the current time, and every `jumpLength` levels a jump back up by the forward kernel, so that the
 * unknown coordinates are resampled in harmony with the known ones.
 */
export interface RepaintOptions {
  /** Levels per jump back (RePaint's j, default 10). */
  jumpLength?: number;
  /**
   * How many times each block of `jumpLength` levels is traversed (RePaint's jump_n_sample r, default 10): r − 1 jumps
   * back per block. 1 is plain ancestral sampling with replacement (score_sde-style projection on the DDPM chain).
   */
  resamplings?: number;
}

export interface RepaintStats extends ConditionalStats {
  jumpLength: number;
  resamplings: number;
  /** Moves down the grid (one score call each). */
  down: number;
  /** Moves up by the forward kernel (no score call). */
  up: number;
}

const KEYS = ['jumpLength', 'resamplings'] as const;
/** What samplerOptions may hold for RePaint, which is its own sampler. */
const SAMPLER_KEYS = ['steps', 'eps', 'onTrajectory', 'trajectoryEvery', 'yieldEvery'] as const;

/**
 * RePaint's schedule (get_schedule_jump, also diffusers' RePaintScheduler): the sequence of levels visited, from
 * steps − 1 down to −1, with `resamplings − 1` jumps of `jumpLength` levels up after reaching each level j in
 * {0, jumpLength, 2·jumpLength, …} below steps − jumpLength. Level ℓ is at time t = eps + (ℓ + 1)(T − eps)/steps.
 */
export function repaintSchedule(steps: number, jumpLength: number, resamplings: number): number[] {
  const jumps = new Map<number, number>();
  for (let j = 0; j < steps - jumpLength; j += jumpLength) jumps.set(j, resamplings - 1);
  const levels: number[] = [steps - 1];
  let l = steps - 1;
  while (l >= 0) {
    l--;
    levels.push(l);
    const left = jumps.get(l) ?? 0;
    if (left > 0) {
      jumps.set(l, left - 1);
      for (let k = 0; k < jumpLength; k++) levels.push(++l);
    }
  }
  return levels;
}

async function run(opts: ConditionalSampleOptions) {
  const jumpLength = checkNumber(opts.jumpLength ?? 10, 'jumpLength', { integer: true, min: 1 });
  const resamplings = checkNumber(opts.resamplings ?? 10, 'resamplings', { integer: true, min: 1 });
  if (opts.sampler !== undefined && opts.sampler !== 'repaint') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sampler: method "repaint" is its own sampler (ancestral steps with jumps); expected undefined or 'repaint', got ${describeValue(opts.sampler)}`,
      { argument: 'sampler' },
    );
  }
  const so = (opts.samplerOptions ?? {}) as Record<string, unknown>;
  checkOptions(so, SAMPLER_KEYS, 'repaint: samplerOptions');
  const { sde } = opts;
  const steps = checkNumber(so.steps ?? 250, 'samplerOptions.steps', { integer: true, min: 1 });
  const eps = checkNumber(so.eps ?? sde.samplingEps, 'samplerOptions.eps', { gt: 0, lt: sde.T });
  if (jumpLength >= steps && resamplings > 1) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `jumpLength: expected fewer levels than samplerOptions.steps (${steps}) for a jump back, got ${jumpLength}`,
      { argument: 'jumpLength' },
    );
  }
  const op = opts.operator as LinearOperator;
  const y = opts.y as tf.Tensor;
  const stream = streamsOf(opts.seed).carrier;
  const runner = new Sampler(
    'repaint',
    { seed: stream, signal: opts.signal, onProgress: opts.onProgress, ...so } as never,
    ['seed', 'signal', 'onProgress', ...SAMPLER_KEYS],
  );
  const levels = repaintSchedule(steps, jumpLength, resamplings);
  const moves = levels.length - 1;
  const timeOf = (l: number): number => eps + ((l + 1) * (sde.T - eps)) / steps;
  const score = runner.score(opts.score);
  const b = opts.shape[0];
  const d = await prepareDecoupled(op, y, 'repaint');
  let down = 0;
  try {
    const res = await runner.run<{ x: tf.Tensor }>({
      steps: moves,
      initial: () => ({ x: sde.priorSampling(opts.shape, stream) }),
      update: ({ x }, i) => {
        const from = levels[i];
        const to = levels[i + 1];
        const t = timeOf(from);
        const s = timeOf(to);
        const at = sde.alpha(t);
        const st = sde.std(t);
        const as = sde.alpha(s);
        const ss = sde.std(s);
        if (to > from) {
          // Jump back: the forward kernel p(x_s | x_t) = N((α_s/α_t) x_t, (σ_s² − (α_s/α_t)² σ_t²) I), s > t.
          const r = as / at;
          const up = tf.add(
            tf.mul(x, r),
            tf.mul(randomNormal(x.shape, stream), Math.sqrt(Math.max(0, ss * ss - r * r * st * st))),
          );
          return { x: replaceKnown(d, sde, up, s, stream).x };
        }
        down++;
        // Ancestral step: the posterior q(x_s | x_t, x̂₀) of the forward process (Ho et al. 2020, eq. 7, for any
        // affine SDE), with x̂₀ = E[x₀ | x_t] by Tweedie. With k = α_t/α_s and v = σ_t² − k² σ_s² (the variance of
        // x_t | x_s): mean = (k σ_s²/σ_t²) x_t + (α_s v/σ_t²) x̂₀, variance v σ_s²/σ_t². VE: score_sde's ancestral
        // predictor; VP: DDPM's ancestral step.
        const x0 = dataPrediction(sde, x, t, score(x, fillTime(b, t)), { alpha: at, std: st });
        const k = at / as;
        const v = Math.max(0, st * st - k * k * ss * ss);
        const mean = tf.add(tf.mul(x, (k * ss * ss) / (st * st)), tf.mul(x0, (as * v) / (st * st)));
        if (to === -1) {
          // The last step adds no noise (DDPM's final step, score_sde's denoise); the known T-coordinates are the
          // measurement itself, as the output estimates x₀.
          return { x: mergeKnown(d, mean, d.yT) };
        }
        const next = tf.add(mean, tf.mul(randomNormal(x.shape, stream), Math.sqrt((v * ss * ss) / (st * st))));
        return { x: replaceKnown(d, sde, next, s, stream).x };
      },
      point: (state, i) => ({ t: timeOf(levels[i + 1]), x: state.x }),
    });
    const stats: RepaintStats = {
      ...res.stats,
      method: 'repaint',
      jumpLength,
      resamplings,
      down,
      up: moves - down,
    };
    return { samples: res.samples, stats };
  } finally {
    d.dispose();
  }
}

export const repaintMethod: MethodDefinition = {
  run,
  keys: KEYS,
  needsMeasurement: true,
  samplers: ['repaint'],
  description:
    'RePaint (Lugmayr et al. 2022): ancestral steps with known-coordinate replacement and jumps back by the forward kernel; needs operator.decoupled',
};
