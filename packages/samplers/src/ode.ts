import * as tf from '@tensorflow/tfjs';
import { checkChoice, checkNumber, fillTime } from '@sbm/core';
import { integrate, linspace, ODE_METHODS, type OdeMethod } from '@sbm/ode';
import { checkSamples, checkSdeOptions, countingScoreFn, initialState, StepLoop } from './loop';
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
 */
export async function odeSampler(opts: OdeSamplerOptions, name = 'ode'): Promise<SampleResult> {
  const method = checkChoice(opts?.method ?? 'dopri5', 'method', ODE_METHODS);
  const { stream, eps, steps } = checkSdeOptions(name, opts, 100);
  const rtol = checkNumber(opts.rtol ?? 1e-5, 'rtol', { gt: 0 });
  const atol = checkNumber(opts.atol ?? 1e-5, 'atol', { min: 0 });
  const { sde } = opts;
  const counted = countingScoreFn(opts.score);
  const flow = sde.reverse(counted.fn, { probabilityFlow: true });
  const B = opts.shape[0];
  const loop = new StepLoop(name, method === 'dopri5' ? 0 : steps, opts, counted.nfe);
  const x0 = initialState(sde, opts, stream);
  let solved: tf.Tensor;
  let solverSteps: number;
  let rejected = 0;
  try {
    const r = await integrate((t, y) => flow.sde(y, fillTime(B, t)).drift, x0, sde.T, eps, {
      method,
      rtol,
      atol,
      ts: method === 'dopri5' ? undefined : linspace(sde.T, eps, steps),
      signal: opts.signal,
      yieldEvery: opts.yieldEvery,
      onStep: opts.onTrajectory
        ? (() => {
            let k = 0;
            const every = opts.trajectoryEvery ?? 1;
            return (t: number, y: tf.Tensor) =>
              ++k % every === 0 || t === eps ? opts.onTrajectory!({ step: k, t, x: y }) : undefined;
          })()
        : undefined,
      onProgress: opts.onProgress
        ? (p) =>
            opts.onProgress!({
              sampler: name,
              step: p.step,
              steps: method === 'dopri5' ? 0 : steps,
              t: p.t,
              nfe: counted.nfe(),
              fraction: p.fraction,
            })
        : undefined,
    });
    solved = r.y;
    solverSteps = r.steps;
    rejected = r.rejected;
  } finally {
    x0.dispose();
  }
  let samples = solved;
  if (opts.denoise ?? true) {
    // score_sde's denoise_update_fn: the reverse-diffusion predictor's mean at t = eps (no noise).
    const rev = sde.reverse(counted.fn);
    samples = tf.tidy(() => tf.sub(solved, rev.discretize(solved, fillTime(B, eps)).f));
    solved.dispose();
  }
  checkSamples(samples, name);
  return { samples, stats: { sampler: name, nfe: counted.nfe(), steps: solverSteps, ms: loop.ms(), rejected } };
}
