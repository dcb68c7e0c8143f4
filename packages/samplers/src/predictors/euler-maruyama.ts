import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, fillTime, randomNormal } from '@sbm/core';
import type { PredictorFactory } from './types';

/**
 * Euler–Maruyama on the reverse SDE (Song et al. 2021, eq. 6): x ← x + [f − g² s] Δt + g √|Δt| z with Δt < 0.
 * With probabilityFlow the reverse drift is f − ½ g² s and there is no noise (plain Euler on eq. 13).
 */
export const eulerMaruyama: PredictorFactory = ({ rsde, stream }) => ({
  update(x, t, dt) {
    const { drift, diffusion } = rsde.sde(x, fillTime(x.shape[0], t));
    const xMean = tf.add(x, tf.mul(drift, dt));
    if (rsde.probabilityFlow) return { x: xMean, xMean };
    const z = randomNormal(x.shape, stream);
    return { x: tf.add(xMean, tf.mul(broadcastBatch(tf.mul(diffusion, Math.sqrt(-dt)), x), z)), xMean };
  },
});
