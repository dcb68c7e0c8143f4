import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, fillTime } from '@sbm/core';
import { dataPrediction, type Sde } from '@sbm/sde';
import { checkBoolean, checkSdeOptions, initialState, Sampler } from './loop';
import { DPM_KEYS } from './options';
import type { SampleResult, SdeSamplerOptions } from './types';

export interface DpmSolverOptions extends SdeSamplerOptions {
  /** Number of steps = NFE (default 20). */
  steps?: number;
  /** 2 (DPM-Solver++(2M), default) or 1 (DPM-Solver++(1) = DDIM in data prediction). */
  order?: 1 | 2 | 3;
  /** Time grid: uniform in λ = ln(α/σ) ('logSNR', default, as Lu et al.) or in t ('time'). */
  skipType?: 'logSNR' | 'time';
  /** First-order last step (Lu et al. 2022b recommend it below 15 steps; default: steps < 15). */
  lowerOrderFinal?: boolean;
  /** After reaching eps, return the data prediction x̂₀(x_eps, eps) instead of x_eps (+1 NFE; default false). */
  denoiseToZero?: boolean;
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
 * DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2) for any SDE with affine Gaussian marginals (k-diffusion's
 * dpmpp_2m). With the data prediction x̂₀(x, t) = (x + σ_t² s(x, t))/α_t and λ = ln(α/σ), h_i = λ_{t_i} − λ_{t_{i−1}}:
 *   first step (and every step with order 1):  x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) x̂₀_{i−1};
 *   then, with r_i = h_{i−1}/h_i and D_i = (1 + 1/(2r_i)) x̂₀_{i−1} − 1/(2r_i) x̂₀_{i−2}:
 *        x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) D_i.
 * One score call per step: NFE = steps (+1 with denoiseToZero).
 */
export async function dpmSolverSampler(opts: DpmSolverOptions, name = 'dpm-solver'): Promise<SampleResult> {
  const run = new Sampler(name, opts, DPM_KEYS);
  const { sde, eps, steps } = checkSdeOptions(opts, 20);
  const order = opts.order ?? 2;
  if (order !== 1 && order !== 2) {
    throw new SbmError('INVALID_ARGUMENT', `order: expected 1 or 2, got ${String(order)}`, { argument: 'order' });
  }
  const skipType = checkChoice(opts.skipType ?? 'logSNR', 'skipType', ['logSNR', 'time'] as const);
  const lowerOrderFinal = checkBoolean(opts.lowerOrderFinal, 'lowerOrderFinal') ?? steps < 15;
  const toZero = checkBoolean(opts.denoiseToZero, 'denoiseToZero') ?? false;
  const ts = dpmSolverGrid(sde, eps, steps, skipType);
  const alpha = ts.map((t) => sde.alpha(t));
  const sigma = ts.map((t) => sde.std(t));
  const lambda = ts.map((_, i) => Math.log(alpha[i]) - Math.log(sigma[i]));
  const score = run.score(opts.score);
  const B = opts.shape[0];
  const dataPred = (x: tf.Tensor, i: number) =>
    dataPrediction(sde, x, ts[i], score(x, fillTime(B, ts[i])), { alpha: alpha[i], std: sigma[i] });
  // State: x_i and x̂₀ at t_{i−1} (the multistep history; null before the first step).
  return run.run<{ x: tf.Tensor; d: tf.Tensor | null }>({
    steps,
    init: opts.init,
    initial: () => ({ x: initialState(sde, opts, run.stream), d: null }),
    update: ({ x: xPrev, d: older }, k) => {
      const i = k + 1;
      const h = lambda[i] - lambda[i - 1];
      const useSecond = order === 2 && older !== null && !(lowerOrderFinal && i === steps);
      const d0 = dataPred(xPrev, i - 1);
      let D = d0;
      if (useSecond) {
        const r = (lambda[i - 1] - lambda[i - 2]) / h;
        D = tf.sub(tf.mul(d0, 1 + 1 / (2 * r)), tf.mul(older!, 1 / (2 * r)));
      }
      const xi = tf.sub(tf.mul(xPrev, sigma[i] / sigma[i - 1]), tf.mul(D, alpha[i] * Math.expm1(-h)));
      return { x: xi, d: d0 };
    },
    point: (s, k) => ({ t: ts[k + 1], x: s.x }),
    finish: (s) => (toZero ? dataPred(s.x, steps) : s.x),
  });
}
