import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, fillTime, randomNormal } from '@sbm/core';
import { dataPrediction } from '@sbm/sde';
import { makeGrid, scheduleName, type Schedule, type ScheduleSpec } from './grid';
import { checkChurn, type ChurnOptions } from './k-diffusion';
import { checkSdeOptions, initialState, Sampler } from './loop';
import { HEUN_KEYS } from './options';
import type { SampleResult, SdeSamplerOptions } from './types';

export interface EdmHeunOptions extends SdeSamplerOptions, ChurnOptions {
  /** Number of noise levels N (default 18 → 35 NFE): N − 1 Heun steps, then one Euler step to σ = 0. */
  steps?: number;
  /** Schedule exponent ρ (default 7). */
  rho?: number;
  /** Smallest / largest EDM noise level (defaults σ_EDM(eps) and σ_EDM(T)). */
  sigmaMin?: number;
  sigmaMax?: number;
  /**
   * The N levels (see `makeGrid`; default karras with `rho`, `sigmaMin`, `sigmaMax`), followed by σ = 0. A named
   * schedule takes `rho` / `sigmaMin` / `sigmaMax` from here or from its own spec. An explicit `{ sigmas }` or
   * `{ times }` list is used as given: it ends at σ = 0 only if the sigmas end in 0.
   */
  schedule?: Schedule;
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

/** The levels a Heun run visits: EDM σ̃_i, their times and α's; the last level may be 0 (t = 0). */
interface Levels {
  sigmas: number[];
  times: number[];
  alphas: number[];
  /** The prior draw (or `init`) is x at t_0 = T; otherwise the start is σ̃_0 z in x̃. */
  fromPrior: boolean;
  schedule: string;
}

const SCHEDULE_KNOBS = ['rho', 'sigmaMin', 'sigmaMax'] as const;

function heunLevels(opts: EdmHeunOptions, sde: EdmHeunOptions['sde'], eps: number): Levels {
  const explicit = opts.schedule !== null && typeof opts.schedule === 'object' && !('type' in opts.schedule);
  if (opts.schedule === undefined) {
    // Today's grid, value for value (bit-identical results at the defaults).
    const rho = checkNumber(opts.rho ?? 7, 'rho', { gt: 0 });
    const sMin = checkNumber(opts.sigmaMin ?? sde.edmSigma(eps), 'sigmaMin', { gt: 0 });
    const sMax = checkNumber(opts.sigmaMax ?? sde.edmSigma(sde.T), 'sigmaMax', { gt: sMin });
    const steps = checkNumber(opts.steps ?? 18, 'steps', { integer: true, min: 1 });
    const sigmas = edmSigmas(sMin, sMax, steps, rho);
    const times = sigmas.map((s) => (s === 0 ? 0 : sde.tFromEdmSigma(s)));
    return {
      sigmas,
      times,
      alphas: times.map((t) => sde.alpha(t)),
      fromPrior: opts.init !== undefined || opts.sigmaMax === undefined,
      schedule: 'karras',
    };
  }
  if (explicit) {
    for (const k of SCHEDULE_KNOBS) {
      if (opts[k] !== undefined) {
        throw new SbmError('INVALID_ARGUMENT', `${k}: not used with an explicit schedule list; leave it out`, {
          argument: k,
        });
      }
    }
    const g = makeGrid(sde, opts.schedule, undefined, eps, 'karras');
    const steps = g.steps + (g.denoiseToZero ? 1 : 0);
    if (opts.steps !== undefined && opts.steps !== steps) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `steps: ${String(opts.steps)} disagrees with the schedule list (${steps} steps); leave steps out with an explicit schedule`,
        { argument: 'steps' },
      );
    }
    const z = g.denoiseToZero;
    return {
      sigmas: z ? [...g.sigmaEdm, 0] : g.sigmaEdm,
      times: z ? [...g.t, 0] : g.t,
      alphas: z ? [...g.alpha, sde.alpha(0)] : g.alpha,
      fromPrior: opts.init !== undefined || g.t[0] === sde.T,
      schedule: g.schedule,
    };
  }
  // A named schedule: N levels from σ̃_max to σ̃_min (N − 1 intervals), then 0, as EDM's grid.
  const spec: ScheduleSpec =
    typeof opts.schedule === 'object' ? { ...(opts.schedule as ScheduleSpec) } : { type: scheduleName(opts.schedule) };
  for (const k of SCHEDULE_KNOBS) {
    if (opts[k] === undefined) continue;
    if ((spec as unknown as Record<string, unknown>)[k] !== undefined) {
      throw new SbmError('INVALID_ARGUMENT', `${k}: given both at the top level and in schedule; give it once`, {
        argument: k,
      });
    }
    (spec as unknown as Record<string, unknown>)[k] = opts[k];
  }
  const steps = checkNumber(opts.steps ?? 18, 'steps', { integer: true, min: 1 });
  const g = makeGrid(sde, spec, Math.max(1, steps - 1), eps, 'karras');
  const n = steps === 1 ? 1 : g.t.length;
  return {
    sigmas: [...g.sigmaEdm.slice(0, n), 0],
    times: [...g.t.slice(0, n), 0],
    alphas: [...g.alpha.slice(0, n), sde.alpha(0)],
    fromPrior: opts.init !== undefined || g.t[0] === sde.T,
    schedule: g.schedule,
  };
}

/**
 * EDM's Heun sampler (Karras et al. 2022, Algorithms 1 and 2) for any SDE with affine Gaussian marginals. It works
 * in the VE variable x̃ = x/α, whose noise level is σ_EDM(t) = σ(t)/α(t); the denoiser at level σ is the data
 * prediction of the original SDE at x = α x̃, D(x̃; σ) = E[x₀ | x] = (α x̃ + (α σ)² s(α x̃, t(σ)))/α. Each step is an
 * Euler step of dx̃/dσ = (x̃ − D)/σ plus Heun's correction except on the last one to σ = 0: NFE = 2N − 1.
 *
 * Stochastic churn (Algorithm 2, `sChurn` > 0): at a level S_tmin ≤ σ_i ≤ S_tmax, γ_i = min(S_churn/N, √2 − 1)
 * (N = the number of steps), σ̂_i = σ_i (1 + γ_i) (capped at σ_EDM(T), where the SDE ends) and x̂ = x̃_i +
 * √(σ̂_i² − σ_i²) S_noise z; the Heun step then runs from (x̂, σ̂_i) to σ_{i+1}. S_churn = 0 (default) is
 * Algorithm 1 and draws nothing.
 */
export async function edmHeunSampler(opts: EdmHeunOptions, name = 'heun'): Promise<SampleResult> {
  const run = new Sampler(name, opts, HEUN_KEYS);
  const { sde, eps } = checkSdeOptions({ ...opts, steps: opts.schedule === undefined ? opts.steps : undefined }, 18);
  const { sigmas, times, alphas, fromPrior, schedule } = heunLevels(opts, sde, eps);
  const steps = sigmas.length - 1;
  const churn = checkChurn(opts, steps, sde.edmSigma(sde.T));
  const score = run.score(opts.score);
  const B = opts.shape[0];
  const denoise = (xt: tf.Tensor, t: number, alpha: number, sigma: number) => {
    const x = tf.mul(xt, alpha);
    return dataPrediction(sde, x, t, score(x, fillTime(B, t)), { alpha, std: alpha * sigma });
  };
  const slope = (xt: tf.Tensor, i: number) =>
    tf.div(tf.sub(xt, denoise(xt, times[i], alphas[i], sigmas[i])), sigmas[i]);
  const alpha0 = sde.alpha(0);
  const alphaT = opts.schedule === undefined ? sde.alpha(sde.T) : alphas[0];
  const last = sigmas[steps];
  return run.run<{ x: tf.Tensor }>({
    steps,
    init: opts.init,
    // x_T is drawn in the original variable; x̃ = x/α(T) starts the σ-ODE (≈ N(0, σ_max² I) for every SDE here).
    // A grid that starts below σ_EDM(T) starts, as k-diffusion's, from σ_0 z.
    initial: () => ({
      x: fromPrior
        ? tf.div(initialState(sde, opts, run.stream), alphaT)
        : tf.mul(randomNormal(opts.shape, run.stream), sigmas[0]),
    }),
    update: ({ x: prev }, i) => {
      const hat = churn.level(sigmas[i]);
      let d: tf.Tensor;
      let from = sigmas[i];
      let start = prev;
      if (hat === sigmas[i]) {
        d = slope(prev, i);
      } else {
        const t = sde.tFromEdmSigma(hat);
        const alpha = sde.alpha(t);
        from = sde.std(t) / alpha;
        start = tf.add(
          prev,
          tf.mul(randomNormal(opts.shape, run.stream), Math.sqrt(from ** 2 - sigmas[i] ** 2) * churn.sNoise),
        );
        d = tf.div(tf.sub(start, denoise(start, t, alpha, from)), from);
      }
      const dSigma = sigmas[i + 1] - from;
      const euler = tf.add(start, tf.mul(d, dSigma));
      if (sigmas[i + 1] === 0) return { x: euler };
      const d2 = slope(euler, i + 1);
      return { x: tf.add(start, tf.mul(tf.add(d, d2), dSigma / 2)) };
    },
    point: (s, i) => ({ t: times[i + 1], x: s.x }),
    // σ_N = 0 is t = 0, where α = 1 for every SDE here, so x̃ is x; an explicit list may end above 0.
    finish: (s) => {
      const a = last === 0 ? alpha0 : alphas[steps];
      return Math.abs(a - 1) < 1e-12 ? s.x : tf.mul(s.x, a);
    },
    stats: { schedule },
  });
}
