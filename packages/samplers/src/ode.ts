import * as tf from '@tensorflow/tfjs';
import { checkChoice, checkNumber, fillTime } from '@sbm/core';
import { integrate, linspace, ODE_METHODS, type OdeMethod } from '@sbm/ode';
import { checkBoolean, checkSdeOptions, initialState, Sampler } from './loop';
import { ODE_KEYS } from './options';
import type { SampleResult, SdeSamplerOptions } from './types';

export interface OdeSamplerOptions extends SdeSamplerOptions {
  /** 'dopri5' (adaptive RK45, default) or a fixed-step 'euler' | 'heun' | 'rk4' over linspace(T, eps, steps + 1). */
  method?: OdeMethod;
  /** dopri5 tolerances (default 1e-5 each, as score_sde). */
  rtol?: number;
  atol?: number;
  /** Fixed-step methods: number of steps (default 100). Ignored by dopri5. */
  steps?: number;
  /** One reverse-diffusion mean step at eps after the solve (default true: score_sde's noise_removal); +1 NFE. */
  denoise?: boolean;
}

/**
 * Probability-flow ODE sampling (Song et al. 2021, eq. 13; score_sde get_ode_sampler): solve
 * dx/dt = f(x, t) − ½ g(t)² s(x, t) from x_T ~ prior at T down to eps, by default with RK45 at rtol = atol = 1e-5,
 * then optionally denoise with one reverse-diffusion mean step at eps. NFE as the solver counts it (+1 for denoise).
 * The step loop is @sbm/ode's; the driver adds options, counting, the NaN check and the stats.
 */
export async function odeSampler(opts: OdeSamplerOptions, name = 'ode'): Promise<SampleResult> {
  const run = new Sampler(name, opts, ODE_KEYS);
  run.refuseAfterStep();
  const method = checkChoice(opts.method ?? 'dopri5', 'method', ODE_METHODS);
  const { sde, eps, steps } = checkSdeOptions(opts, 100);
  const rtol = checkNumber(opts.rtol ?? 1e-5, 'rtol', { gt: 0 });
  const atol = checkNumber(opts.atol ?? 1e-5, 'atol', { min: 0 });
  const denoise = checkBoolean(opts.denoise, 'denoise') ?? true;
  // ReverseSde.evalScore checks the score's output shape: count only.
  const counted = run.countOnly(opts.score);
  const flow = sde.reverse(counted, { probabilityFlow: true });
  const B = opts.shape[0];
  const reportSteps = method === 'dopri5' ? 0 : steps;
  const x0 = initialState(sde, opts, run.stream);
  let solved: tf.Tensor;
  let solverSteps: number;
  let rejected = 0;
  try {
    if (opts.init !== undefined) await run.checkInit(opts.init);
    const every = opts.trajectoryEvery ?? 1;
    let k = 0;
    const r = await integrate((t, y) => flow.sde(y, fillTime(B, t)).drift, x0, sde.T, eps, {
      method,
      rtol,
      atol,
      ts: method === 'dopri5' ? undefined : linspace(sde.T, eps, steps),
      signal: opts.signal,
      yieldEvery: opts.yieldEvery,
      onStep: opts.onTrajectory
        ? (t: number, y: tf.Tensor) =>
            ++k % every === 0 || t === eps ? opts.onTrajectory!({ step: k, t, x: y }) : undefined
        : undefined,
      onProgress: opts.onProgress
        ? (p) =>
            opts.onProgress!({
              sampler: name,
              step: p.step,
              steps: reportSteps,
              t: p.t,
              nfe: run.nfe,
              fraction: p.fraction,
            })
        : undefined,
    });
    solved = r.y;
    solverSteps = r.steps;
    rejected = r.rejected;
  } catch (e) {
    run.dispose();
    throw e;
  } finally {
    x0.dispose();
  }
  let samples = solved;
  if (denoise) {
    // score_sde's denoise_update_fn: the reverse-diffusion predictor's mean at t = eps (no noise).
    const rev = sde.reverse(counted);
    try {
      samples = tf.tidy(() => tf.sub(solved, rev.discretize(solved, fillTime(B, eps)).f));
    } finally {
      solved.dispose();
    }
  }
  return run.result(samples, { steps: solverSteps, rejected });
}
