import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFnOutput, checkNumber, describeValue, fillTime, randomNormal } from '@sbm/core';
import { dataPrediction, type Sde } from '@sbm/sde';
import type { AfterStepFn } from '@sbm/samplers';
import type { LinearOperator } from '../operator';
import type { ConditionalSampleOptions, ConditionalStats, MethodDefinition } from '../types';
import { carrierGrid, resolveCarrier, runCarrier, streamsOf, type ProjectFn } from './shared-carrier';

/**
 * Song, Shen, Xing & Ermon 2022 ("Solving inverse problems in medical imaging with score-based generative models";
 * yang-song/score_inverse_problems cs.py): before each corrector and predictor update, move x towards the
 * measurement perturbed to the current time, x ← x + λ·A⁺(ŷ_t − A x), ŷ_t = α(t)·y + σ(t)·A z.
 */
export interface LambdaProjectionOptions {
  /**
   * λ ∈ [0, 1] (default 1): how far each step moves x onto {A x = ŷ_t}; 1 is the hard replacement. cs.py's sparse-view
   * CT setting is λ = 0.841 with samplerOptions { snr: 0.246 }.
   */
  lambda?: number;
  /**
   * Finish with one Tweedie step x̂₀ = (x + σ(eps)² s(x, eps))/α(eps) (+1 NFE) and a hard λ = 1 merge
   * x ← x + A⁺(y − A x), as cs.py (default true). Without it the carrier's output is returned as it is.
   */
  finalDenoise?: boolean;
}

export interface LambdaProjectionStats extends ConditionalStats {
  lambda: number;
  finalDenoise: boolean;
  /** Data-consistency steps made (initial state included). */
  projections: number;
}

const KEYS = ['lambda', 'finalDenoise'] as const;

/**
 * x + λ·A⁺(ŷ_t − A x) with ŷ_t = α(t)·y + σ(t)·A z: the measurement perturbed to time t (y depends on x_t only
 * through x₀, so A x_t = α A x₀ + σ A z has that law when y = A x₀). For A = M·T with T orthonormal,
 * A⁺ = Tᵀ Mᵀ and this is exactly cs.py's merge in T-space, x̃ ← λ·m·ŷ_t + (1 − λ·m)·x̃ with ŷ_t = α·known +
 * σ·T(z). `z` is x-shaped (drawn by the caller). Call inside tf.tidy.
 */
export function lambdaStep(
  op: LinearOperator,
  sde: Sde,
  x: tf.Tensor,
  y: tf.Tensor,
  t: number,
  lambda: number,
  z: tf.Tensor,
): tf.Tensor {
  const pinv = op.pinv as (v: tf.Tensor) => tf.Tensor;
  const yt = tf.add(tf.mul(y, sde.alpha(t)), tf.mul(op.forward(z), sde.std(t)));
  return tf.add(x, tf.mul(pinv(tf.sub(yt, op.forward(x))), lambda));
}

async function run(opts: ConditionalSampleOptions) {
  const lambda = checkNumber(opts.lambda ?? 1, 'lambda', { min: 0, max: 1 });
  const finalDenoise = opts.finalDenoise ?? true;
  if (typeof finalDenoise !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `finalDenoise: expected a boolean, got ${describeValue(finalDenoise)}`, {
      argument: 'finalDenoise',
    });
  }
  const op = opts.operator as LinearOperator;
  if (typeof op.pinv !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: method "lambda-projection" needs the pseudo-inverse operator.pinv (A⁺), got "${op.name}" without one (wrap a dense operator with withPinv, or use 'dps')`,
      { argument: 'operator' },
    );
  }
  const y = opts.y as tf.Tensor;
  const { sde } = opts;
  const carrier = resolveCarrier(opts, 'lambda-projection');
  const streams = streamsOf(opts.seed);
  const { steps, eps } = carrierGrid(opts, carrier);
  let count = 0;
  const step = (x: tf.Tensor, t: number): tf.Tensor => {
    count++;
    return lambdaStep(op, sde, x, y, t, lambda, randomNormal(x.shape, streams.method));
  };
  // PC's grid, t_i = linspace(T, eps, N) (pc.ts). cs.py merges *before* each update at t_i: before the corrector at
  // t_i is after the predictor of t_{i−1} here, so the predictor hook merges at the next grid time t_{i+1}, and
  // not at all after the last predictor (the final Tweedie step and hard merge follow).
  const gridT = (i: number): number => (i >= steps - 1 ? eps : sde.T + ((eps - sde.T) * i) / (steps - 1));
  let predictors = 0;
  const project: ProjectFn = (state, t, kind) => {
    if (kind === 'corrector') {
      const x = step(state.x, t);
      return { x, xMean: x };
    }
    predictors++;
    if (predictors >= steps) return state;
    const x = step(state.x, gridT(predictors));
    return { x, xMean: x };
  };
  // Other fixed-step samplers: after each step at the time it reached (cs.py's merge before the next update).
  const afterStep: AfterStepFn = (state, t) => {
    const x = step(state.x, t);
    return state.xMean === undefined ? { x } : { x, xMean: x };
  };
  // cs.py merges before the first corrector update, i.e. on x_T itself.
  const init = tf.tidy(() => step(sde.priorSampling(opts.shape, streams.carrier), sde.T));
  let res;
  try {
    // cs.py's denoise reads the last x (its updates return x, not x_mean): the carrier returns x when it would
    // otherwise denoise, unless the caller says otherwise.
    const overrides = finalDenoise && carrier.hook === 'project' ? { denoise: false } : {};
    res = await runCarrier(opts, carrier, { project, afterStep, init, overrides }, streams.carrier);
  } finally {
    init.dispose();
  }
  let samples = res.samples;
  let nfe = res.stats.nfe;
  if (finalDenoise) {
    const x = samples;
    try {
      samples = tf.tidy(() => {
        const s = checkFnOutput(opts.score(x, fillTime(x.shape[0], eps)), x, 'score');
        const x0 = dataPrediction(sde, x, eps, s);
        return tf.add(x0, (op.pinv as (v: tf.Tensor) => tf.Tensor)(tf.sub(y, op.forward(x0))));
      });
    } finally {
      x.dispose();
    }
    nfe += 1;
  }
  const stats: LambdaProjectionStats = {
    ...res.stats,
    nfe,
    method: 'lambda-projection',
    lambda,
    finalDenoise,
    projections: count,
  };
  return { samples, stats };
}

export const lambdaProjectionMethod: MethodDefinition = {
  run,
  keys: KEYS,
  needsMeasurement: true,
  samplers: 'fixed-step',
  description:
    'λ-projection (Song, Shen, Xing & Ermon 2022): before each update x ← x + λ A⁺(ŷ_t − A x) with the measurement perturbed to time t; needs operator.pinv',
};
