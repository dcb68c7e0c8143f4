import * as tf from '@tensorflow/tfjs';
import { fillTime, randomNormal } from '@sbm/core';
import { dataPrediction, type ScoreFn, type Sde } from '@sbm/sde';
import { makeGrid, type Grid, type Schedule, type ScheduleName } from './grid';
import { checkBoolean, checkSdeOptions, initialState, Sampler } from './loop';
import type { SampleResult, SdeSamplerOptions } from './types';

/** Options of every fixed-grid solver (the k-diffusion, DPM-Solver, UniPC and DDIM families). */
export interface GridSamplerOptions extends SdeSamplerOptions {
  /** Number of grid intervals N (NFE per step: see each solver). Ignored with an explicit `schedule` list. */
  steps?: number;
  /** Where the N + 1 grid times lie (see `makeGrid`); each solver has its own default. */
  schedule?: Schedule;
  /** After reaching t_N, return x̂₀(x_{t_N}, t_N) instead of x_{t_N} (+1 NFE; default false). */
  denoiseToZero?: boolean;
}

/** α, σ, λ, σ̃ at one time, float64. */
export interface TimePoint {
  t: number;
  alpha: number;
  sigma: number;
  lambda: number;
  sigmaEdm: number;
}

/**
 * The network as the solvers see it, at the grid points and at any intermediate time: data prediction x̂₀ (Tweedie,
 * the shared `dataPrediction` of @sbm/sde), noise prediction ε̂ = (x − α x̂₀)/σ = −σ s, counted score calls (through the
 * driver's `score`, shape-checked). Everything is in the SDE's own variable x; the k-diffusion solvers that work in
 * x̃ = x/α convert at the grid points.
 */
export class GridModel {
  private readonly score: (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor;
  constructor(
    readonly run: Sampler,
    readonly sde: Sde,
    score: ScoreFn,
    readonly batch: number,
    readonly grid: Grid,
  ) {
    this.score = run.score(score);
  }

  /** α, σ, λ, σ̃ at an arbitrary time. */
  at(t: number): TimePoint {
    const alpha = this.sde.alpha(t);
    const sigma = this.sde.std(t);
    return { t, alpha, sigma, lambda: Math.log(alpha) - Math.log(sigma), sigmaEdm: sigma / alpha };
  }
  /** Grid point i as a TimePoint. */
  point(i: number): TimePoint {
    const g = this.grid;
    return { t: g.t[i], alpha: g.alpha[i], sigma: g.sigma[i], lambda: g.lambda[i], sigmaEdm: g.sigmaEdm[i] };
  }

  /** x̂₀(x, t) at a TimePoint (one score call). */
  x0At(x: tf.Tensor, p: TimePoint): tf.Tensor {
    return dataPrediction(this.sde, x, p.t, this.score(x, fillTime(this.batch, p.t)), {
      alpha: p.alpha,
      std: p.sigma,
    });
  }
  /** ε̂(x, t) = −σ s(x, t) at a TimePoint (one score call). */
  epsAt(x: tf.Tensor, p: TimePoint): tf.Tensor {
    return tf.mul(this.score(x, fillTime(this.batch, p.t)), -p.sigma);
  }
  /** x̂₀ at grid point i. */
  x0(x: tf.Tensor, i: number): tf.Tensor {
    return this.x0At(x, this.point(i));
  }
  /** ε̂ at grid point i. */
  eps(x: tf.Tensor, i: number): tf.Tensor {
    return this.epsAt(x, this.point(i));
  }
  /** The time of λ (inverse of λ(t)). */
  atLambda(lambda: number): TimePoint {
    return this.at(this.sde.tFromLambda(lambda));
  }
  /** The time of EDM level σ̃. */
  atSigmaEdm(sigmaEdm: number): TimePoint {
    return this.at(this.sde.tFromEdmSigma(sigmaEdm));
  }
  /** A standard normal draw of the sample shape from the run's seed stream. */
  noise(like: tf.Tensor): tf.Tensor {
    return randomNormal(like.shape, this.run.stream);
  }
}

/**
 * The shared set-up of a grid solver: checks the SDE options (strict keys through `Sampler`), builds the grid and
 * the model. `initial()` is x at t_0: the caller's `init`, the SDE's prior draw when t_0 = T, otherwise σ(t_0) z (as
 * k-diffusion starts from σ_max z). `finish(x)` applies the final denoising step when asked.
 */
export function setupGridSampler(
  name: string,
  opts: GridSamplerOptions,
  keys: readonly string[],
  defaults: { steps: number; schedule: ScheduleName },
): {
  run: Sampler;
  sde: Sde;
  grid: Grid;
  model: GridModel;
  initial: () => tf.Tensor;
  finish: (x: tf.Tensor) => tf.Tensor;
  toZero: boolean;
} {
  const run = new Sampler(name, opts, keys);
  const explicit = opts.schedule !== null && typeof opts.schedule === 'object' && !('type' in opts.schedule);
  const { sde, eps } = checkSdeOptions({ ...opts, steps: opts.steps ?? defaults.steps }, defaults.steps);
  const grid = makeGrid(
    sde,
    opts.schedule,
    explicit ? opts.steps : (opts.steps ?? defaults.steps),
    eps,
    defaults.schedule,
  );
  const model = new GridModel(run, sde, opts.score, opts.shape[0], grid);
  const toZero = (checkBoolean(opts.denoiseToZero, 'denoiseToZero') ?? false) || grid.denoiseToZero;
  const initial = () =>
    opts.init !== undefined || grid.t[0] === sde.T
      ? initialState(sde, opts, run.stream)
      : tf.mul(randomNormal(opts.shape, run.stream), grid.sigma[0]);
  const finish = (x: tf.Tensor) => (toZero ? model.x0(x, grid.steps) : x);
  return { run, sde, grid, model, initial, finish, toZero };
}

/**
 * Runs a one-state grid solver: `step(x, i, state)` maps x at t_i to x at t_{i+1} (i = 0 … N − 1), keeping whatever
 * multistep history it needs in `history` (tensors it returns there are kept and freed by the driver).
 */
export function runGrid<H extends Record<string, tf.Tensor | null>>(
  s: ReturnType<typeof setupGridSampler>,
  init: tf.Tensor | undefined,
  history: H,
  step: (x: tf.Tensor, i: number, h: H) => { x: tf.Tensor } & Partial<H>,
  stats?: Record<string, unknown>,
): Promise<SampleResult> {
  const { run, grid } = s;
  return run.run<{ x: tf.Tensor } & H>({
    steps: grid.steps,
    init,
    initial: () => ({ ...history, x: s.initial() }) as { x: tf.Tensor } & H,
    update: (state, i) => {
      const { x, ...h } = state;
      const out = step(x, i, h as unknown as H);
      return { ...(h as unknown as H), ...out } as { x: tf.Tensor } & H;
    },
    point: (state, i) => ({ t: grid.t[i + 1], x: state.x }),
    finish: (state) => s.finish(state.x),
    stats: { ...(stats ?? {}) } as never,
  });
}
