import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, fillTime, randomNormal } from '@sbm/core';
import type { PredictorFactory } from './types';

/**
 * Reverse diffusion (Song et al. 2021, eq. 46): run the SDE's own discretization x_{i+1} = x_i + f_i + G_i z
 * backwards, x ← x − f + G² s + G z — the SMLD chain for VE and the DDPM chain for VP.
 */
export const reverseDiffusion: PredictorFactory = ({ rsde, stream }) => ({
  update(x, t) {
    const { f, G } = rsde.discretize(x, fillTime(x.shape[0], t));
    const xMean = tf.sub(x, f);
    if (rsde.probabilityFlow) return { x: xMean, xMean };
    const z = randomNormal(x.shape, stream);
    return { x: tf.add(xMean, tf.mul(broadcastBatch(G, x), z)), xMean };
  },
});
