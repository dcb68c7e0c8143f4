import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { linspace } from '@sbm/ode';
import { createSde, type Sde } from '@sbm/sde';
import { checkSamples, checkSdeOptions, countingScoreFn, disposeOnError, initialState, StepLoop } from './loop';
import { getCorrector, getPredictor } from './registry';
import { eulerMaruyama } from './predictors/euler-maruyama';
import { noneCorrector, nonePredictor } from './predictors/none';
import type { SampleResult, SdeSamplerOptions } from './types';

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
export async function pcSampler(opts: PcSamplerOptions, name = 'pc'): Promise<SampleResult> {
  const { stream, eps, steps } = checkSdeOptions(name, opts, opts?.sde?.N ?? 1000);
  const snr = checkNumber(opts.snr ?? 0.16, 'snr', { gt: 0 });
  const nSteps = checkNumber(opts.correctorSteps ?? 1, 'correctorSteps', { integer: true, min: 0 });
  const toZero = opts.denoiseToZero ?? false;
  if (typeof toZero !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `denoiseToZero: expected a boolean, got ${describeValue(toZero)}`, {
      argument: 'denoiseToZero',
    });
  }
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
  const sde = gridFree ? opts.sde : sdeWithSteps(opts.sde, steps);
  const counted = countingScoreFn(opts.score);
  const probabilityFlow = opts.probabilityFlow ?? false;
  const predictor = predictorFactory({
    sde,
    rsde: sde.reverse(counted.fn, { probabilityFlow }),
    stream,
    probabilityFlow,
  });
  const corrector = correctorFactory({ sde, rsde: sde.reverse(counted.fn), stream, snr, nSteps });
  const grid = steps === 1 ? [sde.T] : linspace(sde.T, eps, steps - 1);
  const dt = -sde.T / steps;
  const loop = new StepLoop(name, steps, opts, counted.nfe);
  let x: tf.Tensor = initialState(sde, opts, stream);
  let xMean: tf.Tensor = x;
  try {
    for (let i = 0; i < steps; i++) {
      loop.checkAbort();
      const t = grid[i];
      const prev = x;
      const next = tf.tidy(() => {
        let st = corrector.update(prev, t);
        if (opts.project) st = opts.project(st, t, 'corrector');
        if (toZero && i === steps - 1) {
          // Tweedie: x̂₀ = (x + std² s(x, t)) / α at the last grid time, in place of the predictor's step.
          const sd = sde.std(t);
          const s = counted.fn(st.x, tf.fill([st.x.shape[0]], t, 'float32') as tf.Tensor1D);
          const x0 = tf.div(tf.add(st.x, tf.mul(s, sd * sd)), sde.alpha(t));
          st = { x: x0, xMean: x0 };
        } else {
          st = predictor.update(st.x, t, dt);
        }
        if (opts.project) st = opts.project(st, t, 'predictor');
        // An identity update (predictor and corrector 'none') hands back the kept input: copy it so the swap below
        // can free the old state.
        const nx = st.x === prev ? tf.clone(st.x) : st.x;
        return { x: nx, xMean: st.xMean === st.x || st.xMean === prev ? nx : st.xMean };
      });
      if (xMean !== x) xMean.dispose();
      x.dispose();
      x = next.x;
      xMean = next.xMean;
      await loop.report(i + 1, t, x, xMean);
    }
  } catch (e) {
    disposeOnError([x, xMean]);
    throw e;
  }
  const denoise = opts.denoise ?? true;
  const samples = denoise ? xMean : x;
  if (xMean !== x) (denoise ? x : xMean).dispose();
  checkSamples(samples, name);
  return { samples, stats: { sampler: name, nfe: counted.nfe(), steps, ms: loop.ms() } };
}

/** Euler–Maruyama sampling: PC with the Euler–Maruyama predictor and no corrector. */
export function emSampler(
  opts: SdeSamplerOptions & { denoise?: boolean; denoiseToZero?: boolean; probabilityFlow?: boolean },
): Promise<SampleResult> {
  return pcSampler({ ...opts, predictor: 'euler-maruyama', corrector: 'none' }, 'em');
}
