import * as tf from '@tensorflow/tfjs';
import { checkNumber } from '@sbm/core';
import { GRID, optionKeys } from './options';
import { runGrid, setupGridSampler, type GridSamplerOptions } from './solver';
import type { SampleResult } from './types';

export interface DdimOptions extends GridSamplerOptions {
  /**
   * η of Song, Meng & Ermon 2021 (0: deterministic DDIM, default; 1: the DDPM posterior's noise). Values above 1 are
   * allowed; the added noise is then capped at σ_s (k-diffusion's get_ancestral_step caps σ_up the same way).
   */
  eta?: number;
}
export const DDIM_KEYS = optionKeys<DdimOptions>()([...GRID, 'eta']);

/**
 * DDIM (Song, Meng & Ermon 2021, eq. 12) in continuous time for any SDE with affine Gaussian marginals
 * p_0t(x_t | x_0) = N(α_t x_0, σ_t² I): from t to s < t, with x̂₀ = x̂₀(x_t, t) and ε̂ = (x_t − α_t x̂₀)/σ_t,
 *   x_s = α_s x̂₀ + √(σ_s² − c²) ε̂ + c z,   c = η σ_s √(1 − e^{−2h}),   h = λ_s − λ_t,  z ~ N(0, I).
 * c² with η = 1 is the variance of the forward posterior q(x_s | x_t, x₀) = N(·, σ_s²(1 − (α_t σ_s/(α_s σ_t))²) I)
 * (for the VP SDE this is DDIM's σ_t(η)² = η² (1 − ᾱ_{t−1})/(1 − ᾱ_t) (1 − ᾱ_t/ᾱ_{t−1}), eq. 16). With κ = √(1 − c²/σ_s²)
 * the step reads x_s = κ (σ_s/σ_t) x_t + α_s (1 − κ e^{−h}) x̂₀ + c z, evaluated with expm1 / log1p. η = 0 is
 * deterministic and equals Euler in σ̃ and DPM-Solver++(1). One model call per step: NFE = steps (+1 with
 * denoiseToZero). Default schedule time-uniform (DDIM's uniform timesteps), default 50 steps (as diffusers' pipelines).
 */
export async function ddimSampler(opts: DdimOptions, name = 'ddim'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, DDIM_KEYS, { steps: 50, schedule: 'time-uniform' });
  const eta = checkNumber(opts.eta ?? 0, 'eta', { min: 0 });
  const g = s.grid;
  // Per step: the coefficients of x_t, x̂₀ and z (float64).
  const coef = g.t.slice(1).map((_, i) => {
    const h = g.lambda[i + 1] - g.lambda[i];
    const q = Math.min(1, eta * eta * -Math.expm1(-2 * h)); // c²/σ_s²
    const logKappa = 0.5 * Math.log1p(-q);
    return {
      x: Math.exp(logKappa) * (g.sigma[i + 1] / g.sigma[i]),
      d: -g.alpha[i + 1] * Math.expm1(logKappa - h),
      z: g.sigma[i + 1] * Math.sqrt(q),
    };
  });
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const c = coef[i];
      const mean = tf.add(tf.mul(x, c.x), tf.mul(s.model.x0(x, i), c.d));
      return { x: c.z > 0 ? tf.add(mean, tf.mul(s.model.noise(x), c.z)) : mean };
    },
    { schedule: g.schedule, eta },
  );
}
