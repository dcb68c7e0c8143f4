import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, fillTime, perSampleNorm, randomNormal } from '@sbm/core';
import type { CorrectorFactory } from '../predictors/types';

/**
 * Langevin corrector (Song et al. 2021, Algorithm 4): ε = 2 α_i (r ‖z‖/‖s‖)², x ← x + ε s + √(2ε) z, with α_i from
 * sde.correctorAlphaT (1 − β_i for VP-type SDEs, 1 otherwise). As in score_sde the norms are averaged over the batch
 * first, so the step size is one scalar per batch (times the per-sample α_i).
 */
export const langevinCorrector: CorrectorFactory = ({ sde, rsde, stream, snr, nSteps }) => ({
  update(x0, t) {
    const tv = fillTime(x0.shape[0], t);
    const alpha = sde.correctorAlphaT(tv);
    let x = x0;
    let xMean = x0;
    for (let k = 0; k < nSteps; k++) {
      const s = rsde.evalScore(x, tv);
      const z = randomNormal(x.shape, stream);
      const ratio = tf.div(tf.mul(tf.mean(perSampleNorm(z)), snr), tf.mean(perSampleNorm(s)));
      const step = broadcastBatch(tf.mul(tf.mul(tf.square(ratio), 2), alpha), x);
      xMean = tf.add(x, tf.mul(step, s));
      x = tf.add(xMean, tf.mul(tf.sqrt(tf.mul(step, 2)), z));
    }
    return { x, xMean };
  },
});
