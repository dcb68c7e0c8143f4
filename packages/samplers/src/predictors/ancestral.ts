import * as tf from '@tensorflow/tfjs';
import { SbmError, fillTime, randomNormal } from '@sbm/core';
import { isVeSde, isVpSde, type VeSde, type VpSde } from '@sbm/sde';
import type { PredictorFactory } from './types';

/**
 * Ancestral sampling of the discrete chains (Song et al. 2021, Appendix F). With i = ⌊t (N − 1)/T⌋:
 * VE (SMLD): x_mean = x + (σ_i² − σ_{i−1}²) s, noise std √(σ_{i−1}² (σ_i² − σ_{i−1}²)/σ_i²), σ_{−1} = 0;
 * VP (DDPM): x_mean = (x + β_i s)/√(1 − β_i), noise std √β_i.
 * Only these two chains have an ancestral form; other SDEs get UNSUPPORTED.
 */
export const ancestral: PredictorFactory = ({ sde, rsde, stream, probabilityFlow }) => {
  if (probabilityFlow) {
    throw new SbmError(
      'UNSUPPORTED',
      'predictor "ancestral": has no probability-flow form; use "euler-maruyama" or "reverse-diffusion"',
    );
  }
  // Brand checks, not instanceof: an SDE built by another copy of @sbm/sde (ESM vs CJS) is still recognised.
  const isVe = isVeSde(sde);
  const isVp = isVpSde(sde);
  if (!isVe && !isVp) {
    throw new SbmError(
      'UNSUPPORTED',
      `predictor "ancestral": defined for the VE (SMLD) and VP (DDPM) chains only, got the "${sde.name}" SDE; use "reverse-diffusion" or "euler-maruyama"`,
      { argument: 'predictor', sde: sde.name },
    );
  }
  // β_i = β/N must stay below 1 or √(1 − β_i) is NaN (the same rule as VpSde.discretize states).
  if (isVp && (sde as VpSde).betaMax / sde.N >= 1) {
    const vp = sde as VpSde;
    throw new SbmError(
      'INVALID_ARGUMENT',
      `steps: ancestral sampling on the DDPM grid needs betaMax / N < 1, got betaMax ${vp.betaMax} and N ${vp.N} (use more than ${Math.floor(vp.betaMax)} steps or predictor "euler-maruyama")`,
      { argument: 'steps', received: vp.N },
    );
  }
  return {
    update(x, t) {
      const i = Math.floor((t * (sde.N - 1)) / sde.T);
      const s = rsde.evalScore(x, fillTime(x.shape[0], t));
      const z = randomNormal(x.shape, stream);
      if (isVe) {
        const ve = sde as VeSde;
        const sig2 = ve.discreteSigma(i) ** 2;
        const prev2 = i === 0 ? 0 : ve.discreteSigma(i - 1) ** 2;
        const xMean = tf.add(x, tf.mul(s, sig2 - prev2));
        return { x: tf.add(xMean, tf.mul(z, Math.sqrt((prev2 * (sig2 - prev2)) / sig2))), xMean };
      }
      const beta = (sde as VpSde).discreteBeta(i);
      const xMean = tf.div(tf.add(x, tf.mul(s, beta)), Math.sqrt(1 - beta));
      return { x: tf.add(xMean, tf.mul(z, Math.sqrt(beta))), xMean };
    },
  };
};
