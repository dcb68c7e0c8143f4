import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  broadcastBatch,
  checkFinite,
  checkOptions,
  checkTensor,
  describeValue,
  seedStream,
  type SeedStream,
} from '@sbm/core';
import { isVeSde, isVpSde, type VeSde, type VpSde } from '@sbm/sde';
import {
  type Reduction,
  callChecked,
  checkBatch,
  checkFn,
  checkReduction,
  checkSeedArg,
  reduceSample,
  syncChecksOn,
} from './internal';

/**
 * A noise-conditional score model on the SMLD grid: gets the perturbed batch, the noise level σ_i of each sample
 * and its index i on the VE grid (`VeSde.discreteSigma(i)`: ascending, i = 0 is σ_min — NCSN's own label order is
 * the reverse, so a model ported from there should use σ, or N − 1 − i). Returns the score, shaped like x.
 */
export type NoiseConditionalScoreModel = (x: tf.Tensor, sigma: tf.Tensor1D, index: tf.Tensor1D) => tf.Tensor;

/** A DDPM ε-prediction model: gets the noised batch and each sample's timestep label i ∈ {0, …, N − 1}. */
export type EpsilonModel = (x: tf.Tensor, timestep: tf.Tensor1D) => tf.Tensor;

export const DISCRETE_OPTION_KEYS = ['reduceMean', 'reduction', 'index'] as const;

export interface DiscreteLossOptions {
  /** score_sde's flag (SMLD default false = ½·sum over dimensions; DDPM default true = mean). */
  reduceMean?: boolean;
  reduction?: Reduction;
  /** Fixed level indices (one number or a [B] tensor of integers in [0, N)) instead of uniform random ones. */
  index?: number | tf.Tensor1D;
}

function levelIndices(
  batch: number,
  N: number,
  index: number | tf.Tensor1D | undefined,
  stream: SeedStream,
): tf.Tensor1D {
  if (index === undefined) {
    // i ~ U{0, …, N − 1} (score_sde: random.choice(N)); the min guards U·N rounding up to N in float32.
    const s = stream.next();
    return tf.tidy(() =>
      tf.minimum(tf.floor(tf.mul(tf.randomUniform([batch], 0, 1, 'float32', s), N)), N - 1),
    ) as tf.Tensor1D;
  }
  if (typeof index === 'number') {
    if (!Number.isInteger(index) || index < 0 || index >= N) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `index: expected an integer in [0, ${N - 1}], got ${describeValue(index)}`,
        {
          argument: 'index',
        },
      );
    }
    return tf.fill([batch], index, 'float32') as tf.Tensor1D;
  }
  checkTensor(index, 'index', [batch]);
  // Through the registry (no readbacks) a given index tensor is the caller's to keep inside [0, N).
  if (!syncChecksOn()) return tf.cast(index, 'float32') as tf.Tensor1D;
  checkFinite(index, 'index');
  const bad = tf.tidy(() => {
    const i = tf.cast(index, 'float32');
    return tf
      .any(tf.logicalOr(tf.logicalOr(tf.less(i, 0), tf.greater(i, N - 1)), tf.notEqual(tf.floor(i), i)))
      .dataSync()[0];
  });
  if (bad) {
    throw new SbmError('INVALID_ARGUMENT', `index: expected integers in [0, ${N - 1}], got values outside that set`, {
      argument: 'index',
    });
  }
  return tf.cast(index, 'float32') as tf.Tensor1D;
}

/**
 * Per-sample SMLD / NCSN loss (Song & Ermon 2019, eq. 2; score_sde losses.get_smld_loss_fn): a level i per sample,
 * x̃ = x + σ_i z, and σ_i²·‖s(x̃, σ_i, i) + z/σ_i‖² reduced over dimensions — the σ² weighting keeps every level's
 * term of order one. Computed as ‖σ_i s + z‖², which is the same number without dividing by σ_min.
 */
export function smldLossPerSample(
  model: NoiseConditionalScoreModel,
  x0: tf.Tensor,
  sde: VeSde,
  seed: number | SeedStream,
  opts: DiscreteLossOptions = {},
): tf.Tensor1D {
  checkFn(model, 'model', '(x, sigma, index) => tensor');
  checkBatch(x0, 'x0');
  if (!isVeSde(sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected a VeSde (the SMLD grid), got ${describeValue((sde as { name?: unknown })?.name ?? sde)}`,
      {
        argument: 'sde',
      },
    );
  }
  checkOptions(opts, DISCRETE_OPTION_KEYS, 'smldLoss', {});
  const stream = seedStream(checkSeedArg(seed));
  const reduction = checkReduction(opts, 'half-sum');
  const B = x0.shape[0];
  return tf.tidy(() => {
    const index = levelIndices(B, sde.N, opts.index, stream);
    const sigma = sde.discreteSigmaT(index);
    const z = tf.randomNormal(x0.shape, 0, 1, 'float32', stream.next());
    const sb = broadcastBatch(sigma, x0);
    const xt = tf.add(x0, tf.mul(sb, z));
    const s = callChecked('model', model(xt, sigma, index), xt);
    return reduceSample(tf.square(tf.add(tf.mul(s, sb), z)), reduction);
  }) as tf.Tensor1D;
}

/** SMLD loss: batch mean of {@link smldLossPerSample}. */
export function smldLoss(
  model: NoiseConditionalScoreModel,
  x0: tf.Tensor,
  sde: VeSde,
  seed: number | SeedStream,
  opts: DiscreteLossOptions = {},
): tf.Scalar {
  return tf.tidy(() => tf.mean(smldLossPerSample(model, x0, sde, seed, opts))) as tf.Scalar;
}

const cumprodCache = new WeakMap<VpSde, { sqrtAbar: Float32Array; sqrt1mAbar: Float32Array }>();

/** √ᾱ_i and √(1 − ᾱ_i), ᾱ_i = Π_{j ≤ i} (1 − β_j) on the DDPM grid, accumulated in float64 once per SDE. */
function ddpmTables(sde: VpSde): { sqrtAbar: Float32Array; sqrt1mAbar: Float32Array } {
  let tables = cumprodCache.get(sde);
  if (!tables) {
    const sqrtAbar = new Float32Array(sde.N);
    const sqrt1mAbar = new Float32Array(sde.N);
    let logAbar = 0;
    for (let i = 0; i < sde.N; i++) {
      logAbar += Math.log1p(-sde.discreteBeta(i));
      sqrtAbar[i] = Math.exp(0.5 * logAbar);
      sqrt1mAbar[i] = Math.sqrt(-Math.expm1(logAbar));
    }
    tables = { sqrtAbar, sqrt1mAbar };
    cumprodCache.set(sde, tables);
  }
  return tables;
}

/**
 * Per-sample DDPM loss (Ho et al. 2020, eq. 14 "L_simple"; score_sde losses.get_ddpm_loss_fn): a timestep i per
 * sample, x_i = √ᾱ_i x_0 + √(1 − ᾱ_i) ε, and ‖ε̂(x_i, i) − ε‖² reduced over dimensions (default: mean).
 */
export function ddpmLossPerSample(
  model: EpsilonModel,
  x0: tf.Tensor,
  sde: VpSde,
  seed: number | SeedStream,
  opts: DiscreteLossOptions = {},
): tf.Tensor1D {
  checkFn(model, 'model', '(x, timestep) => tensor');
  checkBatch(x0, 'x0');
  if (!isVpSde(sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected a VpSde (the DDPM grid), got ${describeValue((sde as { name?: unknown })?.name ?? sde)}`,
      {
        argument: 'sde',
      },
    );
  }
  checkOptions(opts, DISCRETE_OPTION_KEYS, 'ddpmLoss', {});
  const stream = seedStream(checkSeedArg(seed));
  const reduction = checkReduction(opts, 'mean');
  const { sqrtAbar, sqrt1mAbar } = ddpmTables(sde);
  const B = x0.shape[0];
  return tf.tidy(() => {
    const index = levelIndices(B, sde.N, opts.index, stream);
    const idx = tf.cast(index, 'int32');
    const a = broadcastBatch(tf.gather(tf.tensor1d(sqrtAbar), idx), x0);
    const b = broadcastBatch(tf.gather(tf.tensor1d(sqrt1mAbar), idx), x0);
    const noise = tf.randomNormal(x0.shape, 0, 1, 'float32', stream.next());
    const xt = tf.add(tf.mul(a, x0), tf.mul(b, noise));
    const eps = callChecked('model', model(xt, index), xt);
    return reduceSample(tf.square(tf.sub(eps, noise)), reduction);
  }) as tf.Tensor1D;
}

/** DDPM loss: batch mean of {@link ddpmLossPerSample}. */
export function ddpmLoss(
  model: EpsilonModel,
  x0: tf.Tensor,
  sde: VpSde,
  seed: number | SeedStream,
  opts: DiscreteLossOptions = {},
): tf.Scalar {
  return tf.tidy(() => tf.mean(ddpmLossPerSample(model, x0, sde, seed, opts))) as tf.Scalar;
}

/** √ᾱ_i and √(1 − ᾱ_i) of the DDPM grid (for models and tests that need the same numbers as the loss). */
export function ddpmAlphasCumprod(sde: VpSde): {
  sqrtAlphasCumprod: Float32Array;
  sqrtOneMinusAlphasCumprod: Float32Array;
} {
  const { sqrtAbar, sqrt1mAbar } = ddpmTables(sde);
  return { sqrtAlphasCumprod: sqrtAbar.slice(), sqrtOneMinusAlphasCumprod: sqrt1mAbar.slice() };
}
