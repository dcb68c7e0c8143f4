import * as tf from '@tensorflow/tfjs';
import { GRID, GRID_KEYS, optionKeys } from './options';
import { runGrid, setupGridSampler, type GridSamplerOptions } from './solver';
import type { SampleResult } from './types';

/**
 * Euler on the probability-flow ODE in k-diffusion's variables (k-diffusion sample_euler without churn; Karras et
 * al. 2022, Algorithm 1 without the Heun correction): x̃ = x/α, dx̃/dσ̃ = (x̃ − D(x̃; σ̃))/σ̃, D = x̂₀. Written in x:
 *   x_{i+1} = (σ_{i+1}/σ_i) x_i + α_{i+1} (1 − σ̃_{i+1}/σ̃_i) x̂₀(x_i, t_i),
 * which is also DDIM with η = 0 and DPM-Solver++(1). First order; NFE = steps. Default schedule karras (ρ = 7).
 */
export interface EulerOptions extends GridSamplerOptions {
  /** EDM stochastic churn S_churn (default 0: deterministic). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}
export const EULER_KEYS = optionKeys<EulerOptions>()([...GRID, 'sChurn', 'sTmin', 'sTmax', 'sNoise']);

export async function eulerSampler(opts: EulerOptions, name = 'euler'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, EULER_KEYS, { steps: 20, schedule: 'karras' });
  const g = s.grid;
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const d = s.model.x0(x, i);
      const r = g.sigmaEdm[i + 1] / g.sigmaEdm[i];
      return { x: tf.add(tf.mul(x, g.sigma[i + 1] / g.sigma[i]), tf.mul(d, g.alpha[i + 1] * (1 - r))) };
    },
    { schedule: g.schedule },
  );
}

// ---- pending (issue 13 helpers): each replaces its placeholder body -------------------------------------------------

export interface EulerAncestralOptions extends GridSamplerOptions {
  /** Ancestral noise scale η (default 1). */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
}
export const EULER_ANCESTRAL_KEYS = optionKeys<EulerAncestralOptions>()([...GRID, 'eta', 'sNoise']);
export async function eulerAncestralSampler(
  opts: EulerAncestralOptions,
  name = 'euler-ancestral',
): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export type Dpm2Options = GridSamplerOptions;
export const DPM2_KEYS = GRID_KEYS;
export async function dpm2Sampler(opts: Dpm2Options, name = 'dpm2'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface Dpm2AncestralOptions extends GridSamplerOptions {
  eta?: number;
  sNoise?: number;
}
export const DPM2_ANCESTRAL_KEYS = optionKeys<Dpm2AncestralOptions>()([...GRID, 'eta', 'sNoise']);
export async function dpm2AncestralSampler(opts: Dpm2AncestralOptions, name = 'dpm2-ancestral'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface LmsOptions extends GridSamplerOptions {
  /** Linear multistep order (default 4). */
  order?: number;
}
export const LMS_KEYS = optionKeys<LmsOptions>()([...GRID, 'order']);
export async function lmsSampler(opts: LmsOptions, name = 'lms'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}
