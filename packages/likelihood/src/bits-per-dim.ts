import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkFinite,
  checkNumber,
  checkDataRange,
  checkTensor,
  describeValue,
  randomUniform,
  type DataRange,
  type SeedStream,
} from '@sbm/core';

// DataRange and its check live in @sbm/core (the data sets and configs use the same).
export { checkDataRange, type DataRange };

/**
 * The bits/dim offset for 8-bit data shown to the model in `dataRange`: log₂(256 / (hi − lo)).
 *
 * Why: dequantized pixels y = (k + u)/256 ∈ [0, 1)^D put each of the 256 levels in a bin of width 1/256. A density
 * p_y on [0, 1]^D assigns the discrete image k the probability P(k) = ∫_bin p_y ≥ 256^{−D} exp E_u[log p_y(y)]
 * (Jensen), so −log₂ P(k)/D ≤ −E log₂ p_y / D + log₂ 256: the offset is 8 bits for data in [0, 1]. A model on
 * x = lo + (hi − lo)·y sees the density p_x = p_y / (hi − lo)^D, which moves the offset to log₂(256/(hi − lo)):
 * 7 for [−1, 1]. score_sde writes the same as `7 − inverse_scaler(−1)` (inverse_scaler(−1) is 0 for centered data
 * and −1 for [0, 1] data).
 */
export function bpdOffset(dataRange: DataRange): number {
  const [lo, hi] = checkDataRange(dataRange);
  return Math.log2(256 / (hi - lo));
}

/** bits/dim = nll / (D ln 2) + offset, for a negative log-likelihood in nats of a D-dimensional sample. */
export function bitsPerDim(nll: number, D: number, offset = 0): number {
  checkNumber(D, 'D', { integer: true, min: 1 });
  checkNumber(offset, 'offset');
  if (typeof nll !== 'number' || Number.isNaN(nll)) {
    throw new SbmError('INVALID_ARGUMENT', `nll: expected a number, got ${describeValue(nll)}`, { argument: 'nll' });
  }
  return nll / (D * Math.LN2) + offset;
}

/**
 * Uniform dequantization (score_sde run_lib / Theis et al. 2016): data with 256 levels in `dataRange` (for [0, 1]:
 * img = k/255) becomes y = (img·255 + u)/256 with u ~ U(0, 1) drawn from `seed`, mapped back to `dataRange`.
 * Every level k lands uniformly in its own bin [k/256, (k + 1)/256) of the unit interval.
 */
export function dequantize(x: tf.Tensor, seed: number | SeedStream, dataRange: DataRange = [0, 1]): tf.Tensor {
  checkTensor(x, 'x', undefined, { minRank: 1 });
  checkFinite(x, 'x');
  return dequantizeUnchecked(x, seed, dataRange);
}

/** dequantize without the synchronous finiteness read (logLikelihood checks x asynchronously first). */
export function dequantizeUnchecked(x: tf.Tensor, seed: number | SeedStream, dataRange: DataRange = [0, 1]): tf.Tensor {
  const [lo, hi] = checkDataRange(dataRange);
  return tf.tidy(() => {
    const unit = tf.div(tf.sub(x, lo), hi - lo);
    const y = tf.div(tf.add(tf.mul(unit, 255), randomUniform(x.shape, seed)), 256);
    return tf.add(tf.mul(y, hi - lo), lo);
  });
}
