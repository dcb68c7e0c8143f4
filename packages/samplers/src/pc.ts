import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, checkOptions, describeValue, fillTime } from '@sbm/core';
import { linspace } from '@sbm/ode';
import { createSde, dataPrediction, type Sde } from '@sbm/sde';
import { checkBoolean, checkSdeOptions, initialState, Sampler } from './loop';
import { EM_KEYS, PC_KEYS } from './options';
import { getCorrector, getPredictor } from './registry';
import { eulerMaruyama } from './predictors/euler-maruyama';
import { noneCorrector, nonePredictor } from './predictors/none';
import type { SampleResult, SdeSamplerOptions } from './types';

/** Options of the Euler–Maruyama sampler ('em'): PC with the Euler–Maruyama predictor and no corrector. */
export interface EmSamplerOptions extends SdeSamplerOptions {
  /** Integrate the probability-flow ODE by Euler steps instead (deterministic; default false). */
  probabilityFlow?: boolean;
  /** Return x_mean of the last step (default true). */
  denoise?: boolean;
  /** Replace the last step by the data prediction E[x₀ | x_eps] (same NFE; default false). See PcSamplerOptions. */
  denoiseToZero?: boolean;
}

export interface PcSamplerOptions extends SdeSamplerOptions {
  /** Registered predictor name (default 'reverse-diffusion'): 'euler-maruyama', 'reverse-diffusion', 'ancestral', 'none'. */
  predictor?: string;
  /** Registered corrector name (default 'langevin'): 'langevin', 'ald', 'none'. */
  corrector?: string;
  /** Corrector signal-to-noise ratio r (default 0.16). */
  snr?: number;
  /** Corrector steps per time (default 1). */
  correctorSteps?: number;
  /** Predict with the probability-flow ODE (deterministic predictors; default false). */
  probabilityFlow?: boolean;
  /** Return x_mean of the last step, i.e. without its noise (default true, score_sde's noise_removal). */
  denoise?: boolean;
  /**
   * Replace the last predictor step (the one from eps towards 0) by the data prediction E[x₀ | x_eps] =
   * (x + std(eps)² s(x, eps)) / α(eps) (Tweedie's formula; same NFE; default false — beyond score_sde, like
   * k-diffusion's final step to σ = 0). With it one can end at an `eps` where the network is accurate, e.g. 0.03 for
   * the tutorial VE SDE (std ≈ 0.15): near t = 0 that SDE's g(t) = σ^t stays ≈ 1 while std(t)² ≈ t, so steps of
   * T/N ≫ std(t)² overshoot and leave speckle noise in the samples of a network trained briefly at small t.
   */
  denoiseToZero?: boolean;
  /**
   * Called inside tf.tidy after every corrector and predictor update with the new state; returns the state to go on
   * with (conditional sampling, e.g. inpainting replaces the known pixels of both x and xMean).
   */
  project?: (
    state: { x: tf.Tensor; xMean: tf.Tensor },
    t: number,
    kind: 'corrector' | 'predictor',
  ) => { x: tf.Tensor; xMean: tf.Tensor };
}

/**
 * The SDE with N equal to `steps`: reverse diffusion, ancestral sampling and the VP Langevin α_i are defined on the
 * N-step SMLD / DDPM grid, so score_sde ties the step count to N. Rebuilt through createSde from toConfig().
 */
export function sdeWithSteps(sde: Sde, steps: number): Sde {
  if (sde.N === steps) return sde;
  let out: Sde;
  try {
    out = createSde({ ...sde.toConfig(), N: steps });
  } catch (e) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `steps: the sampler needs the "${sde.name}" SDE with N = ${steps} (it has N = ${sde.N}) and could not rebuild it with createSde({ ...sde.toConfig(), N: ${steps} }): ${e instanceof Error ? e.message : String(e)}. Register the SDE or construct it with N = steps.`,
      { argument: 'steps', cause: e },
    );
  }
  if (out.N !== steps || out.name !== sde.name) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `steps: rebuilding the "${sde.name}" SDE with N = ${steps} gave "${out.name}" with N = ${out.N}`,
      {
        argument: 'steps',
      },
    );
  }
  return out;
}

/**
 * Predictor–corrector sampling (Song et al. 2021, Algorithm 1; score_sde get_pc_sampler): from x_T ~ prior, over the
 * grid t_i = linspace(T, eps, N), run the corrector and then the predictor at each t_i (corrector first, as the
 * reference); the predictor steps by Δt = −T/N. Returns x_mean of the last step (`denoise`). N = `steps`
 * (default sde.N); NFE = N · (predictor + corrector score calls).
 */
export async function pcSampler(
  opts: PcSamplerOptions,
  name = 'pc',
  keys: readonly string[] = PC_KEYS,
): Promise<SampleResult> {
  const run = new Sampler(name, opts, keys);
  const checked = checkSdeOptions(opts, opts.sde?.N ?? 1000);
  const { eps, steps } = checked;
  const snr = checkNumber(opts.snr ?? 0.16, 'snr', { gt: 0 });
  const nSteps = checkNumber(opts.correctorSteps ?? 1, 'correctorSteps', { integer: true, min: 0 });
  const toZero = checkBoolean(opts.denoiseToZero, 'denoiseToZero') ?? false;
  const denoise = checkBoolean(opts.denoise, 'denoise') ?? true;
  const probabilityFlow = checkBoolean(opts.probabilityFlow, 'probabilityFlow') ?? false;
  if (opts.project !== undefined && typeof opts.project !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `project: expected a function, got ${describeValue(opts.project)}`, {
      argument: 'project',
    });
  }
  const predictorFactory = getPredictor(opts.predictor ?? 'reverse-diffusion');
  const correctorFactory = getCorrector(opts.corrector ?? 'langevin');
  // Only reverse diffusion, ancestral sampling and the correctors (α_i, and the VP Langevin step through
  // correctorAlphaT) read the N-step grid; Euler–Maruyama (Song et al. 2021, eq. 6) and 'none' are continuous-time, so
  // EM keeps the caller's SDE: it then works at any step count (the VP DDPM grid needs N > β_max) and with SDEs that
  // createSde cannot rebuild. Registered plugins are assumed to need the grid.
  const gridFree =
    (predictorFactory === eulerMaruyama || predictorFactory === nonePredictor) && correctorFactory === noneCorrector;
  const sde = gridFree ? checked.sde : sdeWithSteps(checked.sde, steps);
  // ReverseSde.evalScore checks the score's output shape, so the predictor's and corrector's calls are only counted;
  // the Tweedie step below calls the score directly and checks it.
  const counted = run.countOnly(opts.score);
  const checkedScore = run.score(opts.score);
  const predictor = predictorFactory({
    sde,
    rsde: sde.reverse(counted, { probabilityFlow }),
    stream: run.stream,
    probabilityFlow,
  });
  const corrector = correctorFactory({ sde, rsde: sde.reverse(counted), stream: run.stream, snr, nSteps });
  const grid = steps === 1 ? [sde.T] : linspace(sde.T, eps, steps - 1);
  const dt = -sde.T / steps;
  const { project } = opts;
  return run.run<{ x: tf.Tensor; xMean: tf.Tensor }>({
    steps,
    init: opts.init,
    initial: () => {
      const x = initialState(sde, opts, run.stream);
      return { x, xMean: x };
    },
    update: ({ x: prev }, i) => {
      const t = grid[i];
      let st = corrector.update(prev, t);
      if (project) st = project(st, t, 'corrector');
      if (toZero && i === steps - 1) {
        // Tweedie: x̂₀ = E[x₀ | x_t] at the last grid time, in place of the predictor's step.
        const x0 = dataPrediction(sde, st.x, t, checkedScore(st.x, fillTime(st.x.shape[0], t)));
        st = { x: x0, xMean: x0 };
      } else {
        st = predictor.update(st.x, t, dt);
      }
      if (project) st = project(st, t, 'predictor');
      // An update whose x_mean is its x or the kept input (predictor 'none', a plugin's identity) has no separate
      // noise-free part: x_mean is the new x.
      return { x: st.x, xMean: st.xMean === st.x || st.xMean === prev ? st.x : st.xMean };
    },
    point: (s, i) => ({ t: grid[i], x: s.x, xMean: s.xMean }),
    finish: (s) => (denoise ? s.xMean : s.x),
  });
}

/** Euler–Maruyama sampling: PC with the Euler–Maruyama predictor and no corrector. */
export function emSampler(opts: EmSamplerOptions, name = 'em'): Promise<SampleResult> {
  checkOptions(opts, EM_KEYS, name);
  return pcSampler({ ...opts, predictor: 'euler-maruyama', corrector: 'none' }, name, PC_KEYS);
}
