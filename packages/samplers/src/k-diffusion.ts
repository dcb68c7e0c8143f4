import * as tf from '@tensorflow/tfjs';
import { checkNumber } from '@sbm/core';
import { GRID, GRID_KEYS, optionKeys } from './options';
import { runGrid, setupGridSampler, type GridModel, type GridSamplerOptions, type TimePoint } from './solver';
import type { SampleResult } from './types';

/*
 * The k-diffusion σ-space family (crowsonkb/k-diffusion, k_diffusion/sampling.py; Karras et al. 2022, "EDM").
 *
 * Every SDE here has p_0t(x_t | x_0) = N(α x_0, σ² I), so x̃ = x/α has p(x̃ | x_0) = N(x_0, σ̃² I) with σ̃ = σ/α: in x̃
 * each SDE is the VE process of EDM, whose probability-flow ODE is dx̃/dσ̃ = (x̃ − D(x̃; σ̃))/σ̃ (EDM eq. 3 with
 * s(t) = 1) with the denoiser D(x̃; σ̃) = E[x_0 | x = α x̃] = x̂₀ (the shared `dataPrediction`). The solvers below
 * step x̃ in σ̃ exactly as k-diffusion steps its x in σ, and convert to x at the grid points (x = α x̃), so the state,
 * the trajectory and the result are in the SDE's own variable and every SDE (VE, VP, sub-VP, tutorial VE, plugins)
 * works through α(t), σ(t), σ̃(t) and t(σ̃). Intermediate levels (σ̂ of the churn, σ_mid of DPM-2) are mapped to
 * times with `tFromEdmSigma`.
 *
 * k-diffusion's schedules end in σ = 0; ours end at t_N = eps (σ̃_min = σ̃(eps)), and `denoiseToZero` (or a trailing
 * 0 in an explicit `sigmas` list) adds the final step to σ = 0, which for all of these solvers is x̂₀(x_N, t_N).
 */

const SQRT2_M1 = Math.SQRT2 - 1;

/** EDM's stochastic churn (Karras et al. 2022, Algorithm 2, lines 4–6): S_churn, S_tmin, S_tmax, S_noise. */
export interface ChurnOptions {
  /** S_churn ≥ 0 (default 0: deterministic): γ_i = min(S_churn/N, √2 − 1) at levels S_tmin ≤ σ̃_i ≤ S_tmax. */
  sChurn?: number;
  /** Smallest level that is churned (default 0). */
  sTmin?: number;
  /** Largest level that is churned (default ∞). */
  sTmax?: number;
  /** S_noise, the scale of the added noise (default 1; EDM used 1.003–1.007). */
  sNoise?: number;
}

export interface Churn {
  /** True when some step may be churned (sChurn > 0). */
  active: boolean;
  /** The raised level σ̂_i = σ̃_i (1 + γ_i) of a step of level σ̃_i, capped at σ̃(T); σ̃_i itself when not churned. */
  level(sigmaEdm: number): number;
  sNoise: number;
}

/**
 * Validates the churn options. `steps` is the N of γ = S_churn/N: the number of σ intervals, counting a final step
 * to σ = 0 (k-diffusion's len(sigmas) − 1). σ̂ is capped at `sigmaTop` = σ̃(T): the SDE, its score and t(σ̃) end at
 * T, so a level above the first one cannot be evaluated (EDM's networks accept any σ; k-diffusion leaves it to them).
 */
export function checkChurn(opts: ChurnOptions, steps: number, sigmaTop: number): Churn {
  const sChurn = checkNumber(opts.sChurn ?? 0, 'sChurn', { min: 0 });
  const sTmin = checkNumber(opts.sTmin ?? 0, 'sTmin', { min: 0 });
  const sTmax =
    opts.sTmax === undefined || opts.sTmax === Infinity ? Infinity : checkNumber(opts.sTmax, 'sTmax', { min: sTmin });
  const sNoise = checkNumber(opts.sNoise ?? 1, 'sNoise', { min: 0 });
  const gamma = Math.min(sChurn / steps, SQRT2_M1);
  return {
    active: gamma > 0,
    sNoise,
    level: (s) => {
      if (!(gamma > 0 && s >= sTmin && s <= sTmax)) return s;
      const hat = Math.min(s * (1 + gamma), sigmaTop);
      // At the top level (σ̃_0 = σ̃(T) up to rounding) nothing is left to churn.
      return hat > s * (1 + 1e-9) ? hat : s;
    },
  };
}

/**
 * k-diffusion get_ancestral_step: the ancestral step from level σ to σ' < σ goes down deterministically to σ_down and
 * adds fresh noise of std σ_up, σ_down² + σ_up² = σ'², with σ_up = min(σ', η √(σ'² (σ² − σ'²)/σ²)). η = 1 is the
 * DDPM posterior's noise (σ'² (σ² − σ'²)/σ² is the variance of p(x̃_{σ'} | x̃_σ, x_0) in the VE variable), η = 0 the
 * probability-flow ODE.
 */
export function ancestralStep(sigma: number, next: number, eta: number): { down: number; up: number } {
  if (eta === 0 || next === 0) return { down: next, up: 0 };
  const up = Math.min(next, eta * Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma)));
  return { down: Math.sqrt(Math.max(0, next * next - up * up)), up };
}

function checkAncestral(opts: { eta?: number; sNoise?: number }): { eta: number; sNoise: number } {
  return {
    eta: checkNumber(opts.eta ?? 1, 'eta', { min: 0 }),
    sNoise: checkNumber(opts.sNoise ?? 1, 'sNoise', { min: 0 }),
  };
}

/** D(x̃; σ̃) at a time point: x̂₀ at x = α x̃ (one score call). */
function denoise(model: GridModel, xt: tf.Tensor, p: TimePoint): tf.Tensor {
  return model.x0At(p.alpha === 1 ? xt : tf.mul(xt, p.alpha), p);
}

/** One Euler step of dx̃/dσ̃ = (x̃ − D)/σ̃ from level `from` to level `to` with D held: (to/from) x̃ + (1 − to/from) D. */
function eulerTilde(xt: tf.Tensor, d: tf.Tensor, from: number, to: number): tf.Tensor {
  const r = to / from;
  return tf.add(tf.mul(xt, r), tf.mul(d, 1 - r));
}

// ---- Euler -----------------------------------------------------------------------------------------------------------

/**
 * Euler on the probability-flow ODE in k-diffusion's variables (k-diffusion sample_euler; Karras et al. 2022,
 * Algorithm 2 without the Heun correction): x̃ = x/α, dx̃/dσ̃ = (x̃ − D(x̃; σ̃))/σ̃, D = x̂₀. Without churn, written in x:
 *   x_{i+1} = (σ_{i+1}/σ_i) x_i + α_{i+1} (1 − σ̃_{i+1}/σ̃_i) x̂₀(x_i, t_i),
 * which is also DDIM with η = 0 and DPM-Solver++(1). First order; NFE = steps (+1 with denoiseToZero). Default
 * schedule karras (ρ = 7).
 *
 * With `sChurn` > 0 each step of level S_tmin ≤ σ̃_i ≤ S_tmax first raises the level to σ̂ = σ̃_i (1 + γ),
 * γ = min(S_churn/N, √2 − 1), by adding noise √(σ̂² − σ̃_i²) S_noise z to x̃ (EDM Algorithm 2, lines 4–6), then steps
 * from σ̂ to σ̃_{i+1}; N counts the final step to 0 when there is one.
 */
export interface EulerOptions extends GridSamplerOptions, ChurnOptions {}
export const EULER_KEYS = optionKeys<EulerOptions>()([...GRID, 'sChurn', 'sTmin', 'sTmax', 'sNoise']);

export async function eulerSampler(opts: EulerOptions, name = 'euler'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, EULER_KEYS, { steps: 20, schedule: 'karras' });
  const g = s.grid;
  const churn = checkChurn(opts, g.steps + (s.toZero ? 1 : 0), s.sde.edmSigma(s.sde.T));
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const level = churn.level(g.sigmaEdm[i]);
      if (level === g.sigmaEdm[i]) {
        const d = s.model.x0(x, i);
        const r = g.sigmaEdm[i + 1] / g.sigmaEdm[i];
        return { x: tf.add(tf.mul(x, g.sigma[i + 1] / g.sigma[i]), tf.mul(d, g.alpha[i + 1] * (1 - r))) };
      }
      const p = s.model.atSigmaEdm(level);
      const xt = tf.add(
        tf.div(x, g.alpha[i]),
        tf.mul(s.model.noise(x), Math.sqrt(p.sigmaEdm ** 2 - g.sigmaEdm[i] ** 2) * churn.sNoise),
      );
      const d = denoise(s.model, xt, p);
      return { x: tf.mul(eulerTilde(xt, d, p.sigmaEdm, g.sigmaEdm[i + 1]), g.alpha[i + 1]) };
    },
    { schedule: g.schedule },
  );
}

// ---- Euler ancestral -------------------------------------------------------------------------------------------------

/**
 * Ancestral sampling with Euler steps (k-diffusion sample_euler_ancestral): from level σ̃_i an Euler step of the
 * probability-flow ODE down to σ_down, then fresh noise of std σ_up (`ancestralStep`), reaching σ̃_{i+1}:
 *   x̃_{i+1} = (σ_down/σ̃_i) x̃_i + (1 − σ_down/σ̃_i) D(x̃_i; σ̃_i) + S_noise σ_up z.
 * η = 1 (default) is DDPM-like ancestral sampling, η = 0 the deterministic Euler sampler. NFE = steps (+1 with
 * denoiseToZero). Default schedule karras (ρ = 7).
 */
export interface EulerAncestralOptions extends GridSamplerOptions {
  /** Ancestral noise scale η ≥ 0 (default 1). */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
}
export const EULER_ANCESTRAL_KEYS = optionKeys<EulerAncestralOptions>()([...GRID, 'eta', 'sNoise']);

export async function eulerAncestralSampler(
  opts: EulerAncestralOptions,
  name = 'euler-ancestral',
): Promise<SampleResult> {
  return ancestralSampler(name, opts, EULER_ANCESTRAL_KEYS, 20, (_m, xt, d, from, down) =>
    eulerTilde(xt, d, from, down),
  );
}

/**
 * The shared loop of the ancestral samplers (default schedule karras): per step, with (σ_down, σ_up) =
 * ancestralStep(σ̃_i, σ̃_{i+1}, η) and D = x̂₀(x_i, t_i), x̃ = toDown(x_i/α_i, D, σ̃_i, σ_down) plus S_noise σ_up z,
 * mapped back by x_{i+1} = α_{i+1} x̃.
 */
function ancestralSampler(
  name: string,
  opts: GridSamplerOptions & { eta?: number; sNoise?: number },
  keys: readonly string[],
  steps: number,
  toDown: (model: GridModel, xt: tf.Tensor, d: tf.Tensor, from: number, down: number) => tf.Tensor,
): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, keys, { steps, schedule: 'karras' });
  const g = s.grid;
  const { eta, sNoise } = checkAncestral(opts);
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const { down, up } = ancestralStep(g.sigmaEdm[i], g.sigmaEdm[i + 1], eta);
      const d = s.model.x0(x, i);
      let xt = toDown(s.model, tf.div(x, g.alpha[i]), d, g.sigmaEdm[i], down);
      if (up > 0 && sNoise > 0) xt = tf.add(xt, tf.mul(s.model.noise(x), up * sNoise));
      return { x: tf.mul(xt, g.alpha[i + 1]) };
    },
    { schedule: g.schedule },
  );
}

// ---- DPM-2 -----------------------------------------------------------------------------------------------------------

/**
 * DPM-Solver-2 in σ̃ (k-diffusion sample_dpm_2; the midpoint rule of Lu et al. 2022 applied to Karras' ODE): from
 * σ̃_i a half step to the geometric midpoint σ_mid = √(σ̃_i σ̃_{i+1}) (the midpoint in log σ̃), then the full step with
 * the slope there:
 *   x̃_mid = x̃_i + (σ_mid − σ̃_i) d_i,  x̃_{i+1} = x̃_i + (σ̃_{i+1} − σ̃_i) (x̃_mid − D(x̃_mid; σ_mid))/σ_mid.
 * Second order. Our grids end at σ̃(eps) > 0, so every step, the last included, is a midpoint step: NFE = 2·steps
 * (+1 with denoiseToZero or a trailing 0 in explicit sigmas, where k-diffusion's last step to σ = 0 is the Euler step
 * x̃ = D, i.e. our final x̂₀). Default schedule karras (ρ = 7).
 */
export type Dpm2Options = GridSamplerOptions;
export const DPM2_KEYS = GRID_KEYS;

export async function dpm2Sampler(opts: Dpm2Options, name = 'dpm2'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, DPM2_KEYS, { steps: 10, schedule: 'karras' });
  const g = s.grid;
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const xt = dpm2Tilde(s.model, tf.div(x, g.alpha[i]), s.model.x0(x, i), g.sigmaEdm[i], g.sigmaEdm[i + 1]);
      return { x: tf.mul(xt, g.alpha[i + 1]) };
    },
    { schedule: g.schedule },
  );
}

/** The DPM-2 step of x̃ from level `from` (with D = `d` there) to level `to` > 0 (one more score call). */
function dpm2Tilde(model: GridModel, xt: tf.Tensor, d: tf.Tensor, from: number, to: number): tf.Tensor {
  const mid = model.atSigmaEdm(Math.sqrt(from * to));
  const xMid = eulerTilde(xt, d, from, mid.sigmaEdm);
  const dMid = denoise(model, xMid, mid);
  return tf.add(xt, tf.mul(tf.sub(xMid, dMid), (to - from) / mid.sigmaEdm));
}

// ---- DPM-2 ancestral -------------------------------------------------------------------------------------------------

/**
 * Ancestral sampling with DPM-2 steps (k-diffusion sample_dpm_2_ancestral): the DPM-2 step from σ̃_i down to σ_down
 * (midpoint √(σ̃_i σ_down)), then fresh noise of std S_noise σ_up (`ancestralStep`), reaching σ̃_{i+1}. When σ_down
 * = 0 (η large enough that σ_up = σ̃_{i+1}) the step is Euler's, x̃ = D, one score call; noise is added whenever
 * σ_up > 0 (k-diffusion omits it in that case, landing at level 0 instead of σ̃_{i+1}). NFE = 2·steps (+1 with
 * denoiseToZero); η = 0 is `dpm2`. Default schedule karras (ρ = 7).
 */
export interface Dpm2AncestralOptions extends GridSamplerOptions {
  /** Ancestral noise scale η ≥ 0 (default 1). */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
}
export const DPM2_ANCESTRAL_KEYS = optionKeys<Dpm2AncestralOptions>()([...GRID, 'eta', 'sNoise']);

export async function dpm2AncestralSampler(opts: Dpm2AncestralOptions, name = 'dpm2-ancestral'): Promise<SampleResult> {
  return ancestralSampler(name, opts, DPM2_ANCESTRAL_KEYS, 10, (m, xt, d, from, down) =>
    down === 0 ? d : dpm2Tilde(m, xt, d, from, down),
  );
}

// ---- LMS -------------------------------------------------------------------------------------------------------------

/** The largest LMS order (the Gauss–Legendre rule in `lmsCoefficients` is exact for it; higher is unstable anyway). */
export const LMS_MAX_ORDER = 4;

// 3-point Gauss–Legendre on [−1, 1]: exact for polynomials of degree ≤ 5 (Abramowitz & Stegun 25.4.29).
const GL_NODES = [-Math.sqrt(3 / 5), 0, Math.sqrt(3 / 5)];
const GL_WEIGHTS = [5 / 9, 8 / 9, 5 / 9];

/**
 * The linear multistep coefficients of k-diffusion's linear_multistep_coeff, in float64: at step i with order
 * k = min(i + 1, order), c_ij = ∫_{σ_i}^{σ_{i+1}} ℓ_j(τ) dτ, where ℓ_j is the Lagrange basis polynomial of the nodes
 * σ_i, σ_{i−1}, …, σ_{i−k+1} that is 1 at σ_{i−j} (Adams–Bashforth on a non-uniform grid). ℓ_j has degree k − 1 ≤ 3,
 * so the 3-point Gauss–Legendre rule gives the integral exactly (k-diffusion calls scipy's quad with epsrel 1e-4).
 * Returns one row per step.
 */
export function lmsCoefficients(sigmas: readonly number[], order: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i + 1 < sigmas.length; i++) {
    const k = Math.min(i + 1, order);
    const a = sigmas[i];
    const h = sigmas[i + 1] - a;
    const row: number[] = [];
    for (let j = 0; j < k; j++) {
      let c = 0;
      for (let q = 0; q < GL_NODES.length; q++) {
        const tau = a + (h * (1 + GL_NODES[q])) / 2;
        let l = 1;
        for (let m = 0; m < k; m++) {
          if (m !== j) l *= (tau - sigmas[i - m]) / (sigmas[i - j] - sigmas[i - m]);
        }
        c += GL_WEIGHTS[q] * l;
      }
      row.push((c * h) / 2);
    }
    out.push(row);
  }
  return out;
}

/**
 * Linear multistep in σ̃ (k-diffusion sample_lms): the slopes d_j = (x̃_j − D(x̃_j; σ̃_j))/σ̃_j of the last `order`
 * grid points are interpolated by a polynomial in σ̃ and integrated over [σ̃_i, σ̃_{i+1}]:
 *   x̃_{i+1} = x̃_i + Σ_j c_ij d_{i−j}  (c_ij from `lmsCoefficients`, computed once per grid in float64).
 * The first steps use the orders 1, 2, … that their history allows. Order 4 by default (1–4); NFE = steps (+1 with
 * denoiseToZero). Default schedule karras (ρ = 7).
 */
export interface LmsOptions extends GridSamplerOptions {
  /** Linear multistep order, an integer in [1, 4] (default 4). */
  order?: number;
}
export const LMS_KEYS = optionKeys<LmsOptions>()([...GRID, 'order']);

export async function lmsSampler(opts: LmsOptions, name = 'lms'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, LMS_KEYS, { steps: 20, schedule: 'karras' });
  const g = s.grid;
  const order = checkNumber(opts.order ?? 4, 'order', { integer: true, min: 1, max: LMS_MAX_ORDER });
  const coeffs = lmsCoefficients(g.sigmaEdm, order);
  type History = { d1: tf.Tensor | null; d2: tf.Tensor | null; d3: tf.Tensor | null };
  return runGrid<History>(
    s,
    opts.init,
    { d1: null, d2: null, d3: null },
    (x, i, h) => {
      const xt = tf.div(x, g.alpha[i]);
      const d = tf.div(tf.sub(xt, s.model.x0(x, i)), g.sigmaEdm[i]);
      const ds = [d, h.d1, h.d2, h.d3];
      let next = xt;
      coeffs[i].forEach((c, j) => {
        next = tf.add(next, tf.mul(ds[j] as tf.Tensor, c));
      });
      // Keep the order − 1 most recent slopes (order 1 keeps none).
      return {
        x: tf.mul(next, g.alpha[i + 1]),
        d1: order > 1 ? d : null,
        d2: order > 2 ? h.d1 : null,
        d3: order > 3 ? h.d2 : null,
      };
    },
    { schedule: g.schedule },
  );
}
