import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue, type SeedStream } from '@sbm/core';
import type { Sde } from '@sbm/sde';
import type { AfterStepFn } from '@sbm/samplers';
import type { LinearOperator } from '../operator';
import type { ConditionalSampleOptions, ConditionalStats, MethodDefinition } from '../types';
import { resolveCarrier, runCarrier, streamsOf, type ProjectFn } from './shared-carrier';
import { mergeKnown, prepareDecoupled, replaceKnown, type PreparedDecoupled } from './shared-decoupled';

/**
 * score_sde's projection sampler for inpainting and colorization (Song et al. 2021, App. I.2;
 * controllable_generation.py get_pc_inpainter / get_pc_colorizer), for any operator with a decoupled form A = M·T.
 */
export interface ProjectionOptions {
  /**
   * 'corrected' (default): start from a plain prior draw and project x_mean itself, x_mean ← x_mean ⊙ (1 − m) +
   * mean ⊙ m, so that the denoised output has the noise-free update in the unknown coordinates.
   * 'reference': score_sde_pytorch exactly — start from T⁻¹(yT ⊙ m + T(prior) ⊙ (1 − m)) (clean known values next to
   * prior noise) and rebuild x_mean ← x ⊙ (1 − m) + mean ⊙ m from the already projected x, which puts the last
   * step's noise into the unknown coordinates of the "denoised" output (score_sde_pytorch issue #39).
   */
  semantics?: 'reference' | 'corrected';
}

export interface ProjectionStats extends ConditionalStats {
  semantics: 'reference' | 'corrected';
  /** Data-consistency replacements made (after each corrector and predictor update, or after each step). */
  projections: number;
}

const KEYS = ['semantics'] as const;

/**
 * One projection of the carrier's state at time t (the hook's body, inside its tf.tidy): x's known T-coordinates ←
 * mean + std·z with (mean, std) = marginal_prob(yT, t); x_mean per `semantics` (see ProjectionOptions). Exported for
 * the tests, which read one step of it against the reference's formulas.
 */
export function projectState(
  d: PreparedDecoupled,
  sde: Sde,
  state: { x: tf.Tensor; xMean?: tf.Tensor },
  t: number,
  stream: SeedStream,
  semantics: 'reference' | 'corrected',
): { x: tf.Tensor; xMean?: tf.Tensor } {
  const { x, mean } = replaceKnown(d, sde, state.x, t, stream);
  if (state.xMean === undefined) return { x };
  // 'reference' reads the projected x (score_sde_pytorch: x_mean = x * (1 - mask) + masked_data_mean * mask after x
  // was overwritten); 'corrected' the update's own noise-free x_mean.
  const xMean = mergeKnown(d, semantics === 'reference' ? x : state.xMean, mean);
  return { x, xMean };
}

async function run(opts: ConditionalSampleOptions) {
  const semantics = opts.semantics ?? 'corrected';
  if (semantics !== 'reference' && semantics !== 'corrected') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `semantics: expected 'reference' or 'corrected', got ${describeValue(opts.semantics)}`,
      { argument: 'semantics' },
    );
  }
  const op = opts.operator as LinearOperator;
  const y = opts.y as tf.Tensor;
  const carrier = resolveCarrier(opts, 'projection');
  const streams = streamsOf(opts.seed);
  const d = await prepareDecoupled(op, y, 'projection');
  const { sde } = opts;
  let count = 0;
  let init: tf.Tensor | undefined;
  try {
    if (semantics === 'reference') {
      // x_T = T⁻¹(yT ⊙ m + T(prior) ⊙ (1 − m)): the clean known T-coordinates next to prior noise (get_pc_inpainter:
      // data * mask + prior * (1 - mask); get_pc_colorizer does the same in the decoupled space).
      init = tf.tidy(() => mergeKnown(d, sde.priorSampling(opts.shape, streams.carrier), d.yT));
    }
    const step = (state: { x: tf.Tensor; xMean?: tf.Tensor }, t: number) => {
      count++;
      return projectState(d, sde, state, t, streams.method, semantics);
    };
    // score_sde projects at the grid time t_i after both the corrector and the predictor (the predictor's output
    // is nominally at t_i − T/N; the reference uses t_i, and so does this).
    const project: ProjectFn = (state, t) => step(state, t) as { x: tf.Tensor; xMean: tf.Tensor };
    // A grid solver's state has no x_mean, so its output would keep the last replacement's noise σ(t_N)·z in the
    // known coordinates: they get that replacement's noise-free mean α(t_N)·yT instead, what PC's denoised x_mean
    // holds there (beyond the reference, which has only PC).
    let lastT: number | undefined;
    const afterStep: AfterStepFn = (state, t) => {
      lastT = state.xMean === undefined ? t : undefined;
      return step(state, t);
    };
    const res = await runCarrier(opts, carrier, { project, afterStep, init }, streams.carrier);
    let samples = res.samples;
    if (lastT !== undefined) {
      const a = sde.alpha(lastT);
      const x = samples;
      samples = tf.tidy(() => mergeKnown(d, x, tf.mul(d.yT, a)));
      x.dispose();
    }
    const stats: ProjectionStats = { ...res.stats, method: 'projection', semantics, projections: count };
    return { samples, stats };
  } finally {
    init?.dispose();
    d.dispose();
  }
}

export const projectionMethod: MethodDefinition = {
  run,
  keys: KEYS,
  needsMeasurement: true,
  samplers: 'fixed-step',
  description:
    "score_sde's projection (inpainting, colorization): after each update, replace the known T-coordinates by the measurement perturbed to the current time; needs operator.decoupled",
};
