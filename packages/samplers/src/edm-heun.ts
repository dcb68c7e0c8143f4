import * as tf from '@tensorflow/tfjs';
import { checkNumber, fillTime } from '@sbm/core';
import { checkSamples, checkSdeOptions, countedScore, disposeOnError, initialState, StepLoop } from './loop';
import type { SampleResult, SdeSamplerOptions } from './types';

export interface EdmHeunOptions extends SdeSamplerOptions {
  /** Number of noise levels N (default 18 → 35 NFE). */
  steps?: number;
  /** Schedule exponent ρ (default 7). */
  rho?: number;
  /** Smallest / largest EDM noise level (defaults σ_EDM(eps) and σ_EDM(T)). */
  sigmaMin?: number;
  sigmaMax?: number;
}

/** Karras et al. 2022, eq. 5: σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i < N, and σ_N = 0. */
export function edmSigmas(sigmaMin: number, sigmaMax: number, steps: number, rho = 7): number[] {
  const a = Math.pow(sigmaMax, 1 / rho);
  const b = Math.pow(sigmaMin, 1 / rho);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(steps === 1 ? sigmaMax : Math.pow(a + (i / (steps - 1)) * (b - a), rho));
  out.push(0);
  return out;
}

/**
 * EDM's deterministic Heun sampler (Karras et al. 2022, Algorithm 1) for any SDE with affine Gaussian marginals.
 * It works in the VE variable x̃ = x/α, whose noise level is σ_EDM(t) = σ(t)/α(t); the denoiser at level σ is
 * D(x̃; σ) = x̃ + α σ² s(α x̃, t(σ)) (the data prediction of the original SDE). Each step is an Euler step of
 * dx̃/dσ = (x̃ − D)/σ plus Heun's correction except on the last one (to σ = 0): NFE = 2N − 1.
 */
export async function edmHeunSampler(opts: EdmHeunOptions, name = 'heun'): Promise<SampleResult> {
  const { stream, eps, steps } = checkSdeOptions(name, opts, 18);
  const { sde } = opts;
  const rho = checkNumber(opts.rho ?? 7, 'rho', { gt: 0 });
  const sMin = checkNumber(opts.sigmaMin ?? sde.edmSigma(eps), 'sigmaMin', { gt: 0 });
  const sMax = checkNumber(opts.sigmaMax ?? sde.edmSigma(sde.T), 'sigmaMax', { gt: sMin });
  const sigmas = edmSigmas(sMin, sMax, steps, rho);
  const times = sigmas.map((s) => (s === 0 ? 0 : sde.tFromEdmSigma(s)));
  const alphas = times.map((t) => sde.alpha(t));
  const score = countedScore(opts.score);
  const B = opts.shape[0];
  const denoise = (xt: tf.Tensor, i: number) =>
    tf.add(xt, tf.mul(score.call(tf.mul(xt, alphas[i]), fillTime(B, times[i])), alphas[i] * sigmas[i] * sigmas[i]));
  const slope = (xt: tf.Tensor, i: number) => tf.div(tf.sub(xt, denoise(xt, i)), sigmas[i]);
  const loop = new StepLoop(name, steps, opts, score.nfe);
  const xT = initialState(sde, opts, stream);
  // x_T is drawn in the original variable; x̃ = x/α(T) starts the σ-ODE (≈ N(0, σ_max² I) for every SDE here).
  let x: tf.Tensor = tf.tidy(() => tf.div(xT, sde.alpha(sde.T)));
  xT.dispose();
  try {
    for (let i = 0; i < steps; i++) {
      loop.checkAbort();
      const prev = x;
      x = tf.tidy(() => {
        const d = slope(prev, i);
        const dSigma = sigmas[i + 1] - sigmas[i];
        const euler = tf.add(prev, tf.mul(d, dSigma));
        if (sigmas[i + 1] === 0) return euler;
        const d2 = slope(euler, i + 1);
        return tf.add(prev, tf.mul(tf.add(d, d2), dSigma / 2));
      });
      prev.dispose();
      await loop.report(i + 1, times[i + 1], x);
    }
  } catch (e) {
    disposeOnError([x]);
    throw e;
  }
  // σ_N = 0 is t = 0, where α = 1 for every SDE here, so x̃ is x.
  const out = Math.abs(sde.alpha(0) - 1) < 1e-12 ? x : tf.tidy(() => tf.mul(x, sde.alpha(0)));
  if (out !== x) x.dispose();
  checkSamples(out, name);
  return { samples: out, stats: { sampler: name, nfe: score.nfe(), steps, ms: loop.ms() } };
}
