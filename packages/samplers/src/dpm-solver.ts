import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, describeValue } from '@sbm/core';
import type { Sde } from '@sbm/sde';
import { makeGrid, scheduleName } from './grid';
import { checkBoolean } from './loop';
import { DPM_KEYS } from './options';
import { runGrid, setupGridSampler, type GridSamplerOptions } from './solver';
import type { SampleResult } from './types';

export interface DpmSolverOptions extends GridSamplerOptions {
  /** Number of steps = NFE (default 20). */
  steps?: number;
  /**
   * 2 (DPM-Solver++(2M), default), 3 (DPM-Solver++(3M); the 'dpmpp-3m' sampler) or 1 (DPM-Solver++(1) = DDIM in
   * data prediction).
   */
  order?: 1 | 2 | 3;
  /**
   * @deprecated Use `schedule`: 'logSNR' is schedule 'logsnr-uniform' (the default), 'time' is 'time-uniform'.
   * Giving both is an error.
   */
  skipType?: 'logSNR' | 'time';
  /**
   * Lower orders on the last steps, as DPM-Solver's lower_order_final: step k of N (1-based) uses order
   * min(order, k, N + 1 − k), so 2M ends with one first-order step and 3M with a second- then a first-order one.
   * Lu et al. 2022b recommend it below 15 steps (default: steps < 15).
   */
  lowerOrderFinal?: boolean;
}

/** The DPM-Solver time grid t_0 = T > … > t_M = eps, uniform in λ or in t; ends exact. */
export function dpmSolverGrid(sde: Sde, eps: number, steps: number, skipType: 'logSNR' | 'time'): number[] {
  const ts = [sde.T];
  if (skipType === 'time') {
    for (let i = 1; i < steps; i++) ts.push(sde.T + ((eps - sde.T) * i) / steps);
  } else {
    const lT = sde.lambda(sde.T);
    const lE = sde.lambda(eps);
    for (let i = 1; i < steps; i++) ts.push(sde.tFromLambda(lT + ((lE - lT) * i) / steps));
  }
  ts.push(eps);
  return ts;
}

/**
 * φ-functions of the data-prediction exponential integrator at step h in λ (Lu et al. 2022b, eqs. 9–10; DPM-Solver's
 * multistep_dpm_solver_{second,third}_update with algorithm 'dpmsolver++'; k-diffusion's phi_2 / phi_3 of
 * sample_dpmpp_3m_sde):
 *   p1 = 1 − e^{−h},  p2 = 1 − (1 − e^{−h})/h,  p3 = p2/h − ½ = (e^{−h} − 1 + h)/h² − ½,
 * so that one multistep data-prediction step reads x_t = (σ_t/σ_s)·x_s + α_t (p1 D0 + p2 D1 − p3 D2).
 */
export function dataPhis(h: number): { p1: number; p2: number; p3: number } {
  const e = Math.expm1(-h);
  const p2 = e / h + 1;
  return { p1: -e, p2, p3: p2 / h - 0.5 };
}

/**
 * The weights (w0, w1, w2) of the model values m0 = x̂₀ at t_{i−1}, m1 at t_{i−2}, m2 at t_{i−3} in one multistep
 * data-prediction step of order 1–3, x_i = c·x_{i−1} + α_i (w0 m0 + w1 m1 + w2 m2), for the step h (the integrator's
 * h: h_i, or (1 + η) h_i for the SDE variants) and r0 = h_{i−1}/h_i, r1 = h_{i−2}/h_i (of the plain λ steps).
 * With D1_0 = (m0 − m1)/r0 and D1_1 = (m1 − m2)/r1 (Lu et al. 2022b, Algorithm 2 and its third-order extension in
 * dpm_solver_pytorch multistep_dpm_solver_third_update):
 *   order 1: p1 m0;
 *   order 2: p1 m0 + ½ p1 D1_0 ('midpoint', DPM-Solver's default) or p1 m0 + p2 D1_0 ('heun', DPM-Solver's 'taylor');
 *   order 3: p1 m0 + p2 D1 − p3 D2 with D1 = D1_0 + r0/(r0 + r1) (D1_0 − D1_1), D2 = 2 (D1_0 − D1_1)/(r0 + r1).
 * D1 ≈ h x̂₀′ and D2 ≈ h² x̂₀″ (derivatives in λ), which is what the exact weights of the Taylor terms ask for:
 * σ_t ∫ e^λ (λ − λ_s)²/2 dλ = α_t (h²/2 − h + 1 − e^{−h}) = −α_t h² p3. DPM-Solver's multistep third-order update
 * (and diffusers' and k-diffusion's 3M SDE after it) uses D2 = (D1_0 − D1_1)/(r0 + r1) ≈ h² x̂₀″/2, half of that
 * (its singlestep third-order update has the factor 2): on the exact Gaussian flow map that version converges with
 * order ≈ 2.1 (VP, 20 → 160 NFE), this one with order ≥ 3. The weights are formed in float64 so that the float32
 * tensors see one multiply-add per model value.
 */
export function dataMultistepWeights(
  h: number,
  order: 1 | 2 | 3,
  r0: number,
  r1: number,
  form: 'midpoint' | 'heun' = 'midpoint',
): [number, number, number] {
  const { p1, p2, p3 } = dataPhis(h);
  if (order === 1) return [p1, 0, 0];
  if (order === 2) {
    const b = form === 'midpoint' ? 0.5 * p1 : p2;
    return [p1 + b / r0, -b / r0, 0];
  }
  // On D1_0: p2 (1 + r0/(r0 + r1)) − 2 p3/(r0 + r1); on D1_1: −p2 r0/(r0 + r1) + 2 p3/(r0 + r1).
  const a = p2 * (1 + r0 / (r0 + r1)) - (2 * p3) / (r0 + r1);
  const b = -p2 * (r0 / (r0 + r1)) + (2 * p3) / (r0 + r1);
  return [p1 + a / r0, -a / r0 + b / r1, -b / r1];
}

/** Resolves `schedule` and the deprecated `skipType` of DPM-Solver into one schedule (or undefined: the default). */
function resolveSchedule(opts: DpmSolverOptions): GridSamplerOptions['schedule'] {
  if (opts.skipType === undefined) return opts.schedule;
  if (opts.schedule !== undefined) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `skipType: deprecated synonym of schedule; give one of them, not both (got skipType ${describeValue(opts.skipType)} and schedule ${describeValue(opts.schedule)})`,
      { argument: 'skipType' },
    );
  }
  const skip = checkChoice(opts.skipType, 'skipType', ['logSNR', 'time'] as const);
  return skip === 'time' ? 'time-uniform' : 'logsnr-uniform';
}

/**
 * DPM-Solver++ multistep, orders 1–3 (Lu et al. 2022b, Algorithm 2 and DPM-Solver's third-order multistep update;
 * k-diffusion's dpmpp_2m, and dpmpp_3m_sde with η = 0), for any SDE with affine Gaussian marginals. With the data
 * prediction x̂₀(x, t) = (x + σ_t² s(x, t))/α_t and λ = ln(α/σ), h_i = λ_{t_i} − λ_{t_{i−1}}:
 *   order 1 (every first step):  x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) x̂₀_{i−1};
 *   order 2, r_i = h_{i−1}/h_i, D_i = (1 + 1/(2r_i)) x̂₀_{i−1} − 1/(2r_i) x̂₀_{i−2}:
 *        x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) D_i;
 *   order 3: x_i = (σ_i/σ_{i−1}) x_{i−1} + α_i (p1 D0 + p2 D1 − p3 D2) (see `dataMultistepWeights`).
 * One score call per step: NFE = steps (+1 with denoiseToZero). The grid is any `schedule` (default logsnr-uniform:
 * λ uniform, as Lu et al.); the default and the two `skipType` grids are DPM-Solver's own arithmetic
 * (`dpmSolverGrid`), so their results are unchanged from before schedules existed.
 */
export async function dpmSolverSampler(opts: DpmSolverOptions, name = 'dpm-solver'): Promise<SampleResult> {
  const schedule = resolveSchedule(opts);
  const s = setupGridSampler(name, { ...opts, schedule }, DPM_KEYS, { steps: 20, schedule: 'logsnr-uniform' });
  const order = opts.order ?? 2;
  if (order !== 1 && order !== 2 && order !== 3) {
    throw new SbmError('INVALID_ARGUMENT', `order: expected 1, 2 or 3, got ${describeValue(order)}`, {
      argument: 'order',
    });
  }
  const g = s.grid;
  // DPM-Solver's own grids (a named logsnr-uniform / time-uniform with the default ends): the same times as before
  // `schedule` existed, to the last bit (makeGrid's interpolation rounds differently in the last place).
  if (schedule === undefined || typeof schedule === 'string') {
    const kind = scheduleName(schedule ?? 'logsnr-uniform');
    if (kind === 'logsnr-uniform' || kind === 'time-uniform') {
      const eps = g.t[g.steps];
      const ts = dpmSolverGrid(s.sde, eps, g.steps, kind === 'time-uniform' ? 'time' : 'logSNR');
      Object.assign(g, makeGrid(s.sde, { times: ts }, undefined, eps), { schedule: kind });
    }
  }
  const N = g.steps;
  const lowerOrderFinal = checkBoolean(opts.lowerOrderFinal, 'lowerOrderFinal') ?? N < 15;
  const { alpha, sigma, lambda } = g;
  // History: x̂₀ at t_{i−1} (d1) and t_{i−2} (d2; order 3 only).
  return runGrid(
    s,
    opts.init,
    { d1: null as tf.Tensor | null, d2: null as tf.Tensor | null },
    (xPrev, k, hist) => {
      const i = k + 1;
      const stepOrder = Math.min(order, k + 1, lowerOrderFinal ? N - k : order);
      const h = lambda[i] - lambda[i - 1];
      const d0 = s.model.x0(xPrev, k);
      let xi: tf.Tensor;
      if (stepOrder === 3) {
        const r0 = (lambda[i - 1] - lambda[i - 2]) / h;
        const r1 = (lambda[i - 2] - lambda[i - 3]) / h;
        const [w0, w1, w2] = dataMultistepWeights(h, 3, r0, r1);
        const a = alpha[i];
        xi = tf.addN([
          tf.mul(xPrev, sigma[i] / sigma[i - 1]),
          tf.mul(d0, a * w0),
          tf.mul(hist.d1!, a * w1),
          tf.mul(hist.d2!, a * w2),
        ]);
      } else {
        // Orders 1 and 2 exactly as DPM-Solver++(2M) has always been computed here (bit-identical results).
        let D = d0;
        if (stepOrder === 2) {
          const r = (lambda[i - 1] - lambda[i - 2]) / h;
          D = tf.sub(tf.mul(d0, 1 + 1 / (2 * r)), tf.mul(hist.d1!, 1 / (2 * r)));
        }
        xi = tf.sub(tf.mul(xPrev, sigma[i] / sigma[i - 1]), tf.mul(D, alpha[i] * Math.expm1(-h)));
      }
      return { x: xi, d1: d0, d2: order === 3 ? hist.d1 : null };
    },
    { schedule: g.schedule },
  );
}
