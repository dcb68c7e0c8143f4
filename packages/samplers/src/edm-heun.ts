import * as tf from '@tensorflow/tfjs';
import { checkNumber, fillTime } from '@sbm/core';
import { dataPrediction } from '@sbm/sde';
import { checkSdeOptions, initialState, Sampler } from './loop';
import { HEUN_KEYS } from './options';
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
 * It works in the VE variable x̃ = x/α, whose noise level is σ_EDM(t) = σ(t)/α(t); the denoiser at level σ is the
 * data prediction of the original SDE at x = α x̃, D(x̃; σ) = E[x₀ | x] = (α x̃ + (α σ)² s(α x̃, t(σ)))/α. Each step is
 * an Euler step of dx̃/dσ = (x̃ − D)/σ plus Heun's correction except on the last one (to σ = 0): NFE = 2N − 1.
 */
export async function edmHeunSampler(opts: EdmHeunOptions, name = 'heun'): Promise<SampleResult> {
  const run = new Sampler(name, opts, HEUN_KEYS);
  const { sde, eps, steps } = checkSdeOptions(opts, 18);
  const rho = checkNumber(opts.rho ?? 7, 'rho', { gt: 0 });
  const sMin = checkNumber(opts.sigmaMin ?? sde.edmSigma(eps), 'sigmaMin', { gt: 0 });
  const sMax = checkNumber(opts.sigmaMax ?? sde.edmSigma(sde.T), 'sigmaMax', { gt: sMin });
  const sigmas = edmSigmas(sMin, sMax, steps, rho);
  const times = sigmas.map((s) => (s === 0 ? 0 : sde.tFromEdmSigma(s)));
  const alphas = times.map((t) => sde.alpha(t));
  const score = run.score(opts.score);
  const B = opts.shape[0];
  const denoise = (xt: tf.Tensor, i: number) => {
    const x = tf.mul(xt, alphas[i]);
    const at = { alpha: alphas[i], std: alphas[i] * sigmas[i] };
    return dataPrediction(sde, x, times[i], score(x, fillTime(B, times[i])), at);
  };
  const slope = (xt: tf.Tensor, i: number) => tf.div(tf.sub(xt, denoise(xt, i)), sigmas[i]);
  const alpha0 = sde.alpha(0);
  return run.run<{ x: tf.Tensor }>({
    steps,
    init: opts.init,
    // x_T is drawn in the original variable; x̃ = x/α(T) starts the σ-ODE (≈ N(0, σ_max² I) for every SDE here).
    initial: () => ({ x: tf.div(initialState(sde, opts, run.stream), sde.alpha(sde.T)) }),
    update: ({ x: prev }, i) => {
      const d = slope(prev, i);
      const dSigma = sigmas[i + 1] - sigmas[i];
      const euler = tf.add(prev, tf.mul(d, dSigma));
      if (sigmas[i + 1] === 0) return { x: euler };
      const d2 = slope(euler, i + 1);
      return { x: tf.add(prev, tf.mul(tf.add(d, d2), dSigma / 2)) };
    },
    point: (s, i) => ({ t: times[i + 1], x: s.x }),
    // σ_N = 0 is t = 0, where α = 1 for every SDE here, so x̃ is x.
    finish: (s) => (Math.abs(alpha0 - 1) < 1e-12 ? s.x : tf.mul(s.x, alpha0)),
  });
}
