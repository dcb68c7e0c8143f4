import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, fillTime, randomNormal } from '@sbm/core';
import type { CorrectorFactory } from '../predictors/types';

/**
 * Annealed-Langevin-style corrector (score_sde AnnealedLangevinDynamics): the step follows the noise level instead of
 * the score norm, ε = 2 α_i (r σ(t))², x ← x + ε s + √(2ε) z.
 */
export const aldCorrector: CorrectorFactory = ({ sde, rsde, stream, snr, nSteps }) => ({
  update(x0, t) {
    const tv = fillTime(x0.shape[0], t);
    const step = broadcastBatch(tf.mul(tf.mul(tf.square(tf.mul(sde.stdT(tv), snr)), 2), sde.correctorAlphaT(tv)), x0);
    let x = x0;
    let xMean = x0;
    for (let k = 0; k < nSteps; k++) {
      const s = rsde.evalScore(x, tv);
      const z = randomNormal(x.shape, stream);
      xMean = tf.add(x, tf.mul(step, s));
      x = tf.add(xMean, tf.mul(tf.sqrt(tf.mul(step, 2)), z));
    }
    return { x, xMean };
  },
});
