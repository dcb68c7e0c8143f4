import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkNumber,
  checkTensor,
  describeValue,
  didYouMean,
  fillTime,
  withGradientCleanup,
} from '@sbm/core';
import { dataPrediction, type ScoreFn, type Sde } from '@sbm/sde';
import {
  Sampler,
  ancestral,
  eulerMaruyama,
  reverseDiffusion,
  sdeWithSteps,
  type PredictorFactory,
} from '@sbm/samplers';
import { checkBatchShape, type LinearOperator } from '../operator';
import type { ConditionalResult, ConditionalSampleOptions, MethodDefinition } from '../types';

/**
 * Options of 'dps' (Chung, Kim, Mccann, Klasky & Ye 2023, "Diffusion posterior sampling for general noisy inverse
 * problems"), beyond the common ones. `steps`, `eps` and `denoise` may also come in `samplerOptions`.
 */
export interface DpsOptions {
  /** ζ > 0 (default 1): the step on ∇_{x_t} ‖y − A(x̂₀(x_t))‖ (the authors' `scale`; 0.3–1 on FFHQ). */
  zeta?: number;
  /** Time steps (default 1000), on the grid linspace(T, eps, steps); one score call and one VJP per step. */
  steps?: number;
  /** Last grid time in (0, T) (default sde.samplingEps). */
  eps?: number;
  /**
   * End on the Tweedie estimate (default true): the last step returns x̂₀(x_eps) − ζ ∇‖y − A(x̂₀)‖ instead of a noisy
   * predictor step, as the authors' DDPM loop does (at t = 0 its posterior mean is exactly x̂₀ and no noise is added).
   */
  denoise?: boolean;
  /**
   * A differentiable forward map [b, ...operator.inShape] → [b, ...operator.outShape] used in the DPS term in place of
   * `operator.forward` — a nonlinear measurement (phase retrieval, non-uniform blur). `operator` is still required: it
   * gives the shapes, passes the dot-product test, and `result.residual` is measured with it, not with `forward`.
   */
  forward?: (x: tf.Tensor) => tf.Tensor;
  /** x_T to start from (default a draw from the prior; same shape as `shape`; not disposed). */
  init?: tf.Tensor;
}

export const DPS_KEYS = ['zeta', 'steps', 'eps', 'denoise', 'forward', 'init'] as const;

/**
 * The unconditional update each step takes from (x_t, s(x_t, t)) — the samplers' predictors, each of which reads the
 * score once at (x_t, t), so DPS reuses the score it differentiated through (one NFE per step).
 */
const PREDICTORS: Record<string, PredictorFactory> = {
  'reverse-diffusion': reverseDiffusion,
  ancestral,
  'euler-maruyama': eulerMaruyama,
};
/** Predictors defined on the SDE's N-step chain (SMLD / DDPM): they need N = steps, as in the PC sampler. */
const ON_GRID = new Set(['reverse-diffusion', 'ancestral']);
const SAMPLER_OPTION_KEYS = ['steps', 'eps', 'denoise'] as const;

/** Merges the DPS settings given at the top level and in samplerOptions (a key in both is refused). */
function settings(opts: ConditionalSampleOptions): Record<string, unknown> {
  const so = (opts.samplerOptions ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(so)) {
    if (!(SAMPLER_OPTION_KEYS as readonly string[]).includes(k)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `samplerOptions.${k}: method "dps" runs its own loop and takes only ${SAMPLER_OPTION_KEYS.join(', ')} there${didYouMean(k, [...SAMPLER_OPTION_KEYS])}`,
        { argument: 'samplerOptions' },
      );
    }
    if (opts[k] !== undefined) {
      throw new SbmError('INVALID_ARGUMENT', `samplerOptions.${k}: given twice (also as the option ${k})`, {
        argument: 'samplerOptions',
      });
    }
    out[k] = so[k];
  }
  for (const k of SAMPLER_OPTION_KEYS) if (opts[k] !== undefined) out[k] = opts[k];
  return out;
}

/** ‖r_b‖ per sample, with gradient 0 (not NaN, as √ would give) where the residual is exactly 0. */
function perSampleNorm(r: tf.Tensor): tf.Tensor1D {
  const ss = tf.sum(tf.square(tf.reshape(r, [r.shape[0], -1])), 1);
  // max(ss, 1e-30): the derivative of max is 0 on the clamped side, so an exact fit contributes no gradient; the
  // value moves by at most 1e-15 (what torch.linalg.norm's backward does at 0 is the same: zero).
  return tf.sqrt(tf.maximum(ss, 1e-30)) as tf.Tensor1D;
}

async function runDps(opts: ConditionalSampleOptions): Promise<Omit<ConditionalResult, 'residual'>> {
  const op = opts.operator as LinearOperator;
  const y = opts.y as tf.Tensor;
  const s = settings(opts);
  const zeta = checkNumber(opts.zeta ?? 1, 'zeta', { gt: 0 });
  const steps = checkNumber(s.steps ?? 1000, 'steps', { integer: true, min: 1 });
  const eps = checkNumber(s.eps ?? opts.sde.samplingEps, 'eps', { gt: 0, lt: opts.sde.T });
  if (s.denoise !== undefined && typeof s.denoise !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `denoise: expected a boolean, got ${describeValue(s.denoise)}`, {
      argument: 'denoise',
    });
  }
  const denoise = (s.denoise as boolean | undefined) ?? true;
  if (opts.forward !== undefined && typeof opts.forward !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `forward: expected a function x => A(x) ([b, ${op.inShape.join(', ')}] → [b, ${op.outShape.join(', ')}]), got ${describeValue(opts.forward)}`,
      { argument: 'forward' },
    );
  }
  const forward = (opts.forward as ((x: tf.Tensor) => tf.Tensor) | undefined) ?? ((x: tf.Tensor) => op.forward(x));
  const forwardName = opts.forward ? 'forward(x)' : 'operator.forward(x)';
  const predictorName = opts.sampler ?? 'reverse-diffusion';
  const factory = PREDICTORS[predictorName];
  if (factory === undefined) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sampler: method "dps" takes its unconditional update from ${Object.keys(PREDICTORS)
        .map((k) => `'${k}'`)
        .join(
          ', ',
        )}, got ${describeValue(opts.sampler)}${typeof opts.sampler === 'string' ? didYouMean(opts.sampler, Object.keys(PREDICTORS)) : ''}`,
      { argument: 'sampler' },
    );
  }
  const init = opts.init === undefined ? undefined : checkTensor(opts.init, 'init', opts.shape);
  const run = new Sampler('dps', { seed: opts.seed, signal: opts.signal, onProgress: opts.onProgress }, [
    'seed',
    'signal',
    'onProgress',
  ]);
  const sde: Sde = ON_GRID.has(predictorName) ? sdeWithSteps(opts.sde, steps) : opts.sde;
  const score = run.score(opts.score);
  // The predictor reads the score once at (x_t, t): it gets the one computed inside the gradient below.
  let current: tf.Tensor | null = null;
  const reuse: ScoreFn = () => {
    if (current === null) throw new SbmError('UNSUPPORTED', 'dps: the predictor read the score outside its step');
    return current;
  };
  const predictor = factory({ sde, rsde: sde.reverse(reuse), stream: run.stream, probabilityFlow: false });
  // score_sde's grid: t_i = linspace(T, eps, N) and Δt = −T/N (its PC sampler's discretisation).
  const grid = Array.from({ length: steps }, (_, i) =>
    steps === 1 ? sde.T : i === steps - 1 ? eps : sde.T + ((eps - sde.T) * i) / (steps - 1),
  );
  const dt = -sde.T / steps;
  const b = opts.shape[0];
  // The SMLD / DDPM chains refuse some step counts (VP: β_max/N < 1): let them say so before anything is allocated.
  if (ON_GRID.has(predictorName) && (denoise ? steps - 1 : steps) > 0) {
    try {
      tf.tidy(() => {
        sde.discretize(tf.zeros([1, ...opts.shape.slice(1)]), fillTime(1, grid[0]));
      });
    } catch (e) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `steps: sampler '${predictorName}' runs on the "${sde.name}" SDE's ${steps}-step chain, which refuses it (${e instanceof Error ? e.message : String(e)}); use more steps or sampler 'euler-maruyama'`,
        { argument: 'steps', cause: e },
      );
    }
  }
  const result = await run.run<{ x: tf.Tensor }>({
    steps,
    init,
    initial: () => ({ x: init ? tf.clone(init) : sde.priorSampling(opts.shape, run.stream) }),
    update: ({ x }, i) => {
      const t = grid[i];
      const tt = fillTime(b, t);
      let kept: tf.Tensor | null = null;
      let x0Kept: tf.Tensor | null = null;
      try {
        // g = ∇_{x_t} Σ_b ‖y_b − A(x̂₀(x_t)_b)‖: each sample's norm depends on its own x_t only, so the sum's gradient
        // is each sample's own (the authors take torch.linalg.norm over the whole batch tensor; with their batch of
        // 1 the two agree). The VJP runs through the score network, x̂₀ = (x + σ² s)/α (Tweedie).
        const g = withGradientCleanup(() =>
          tf.grad((xv: tf.Tensor) => {
            const sv = score(xv, tt);
            kept = tf.keep(sv);
            const x0 = dataPrediction(sde, xv, t, sv);
            if (denoise && i === steps - 1) x0Kept = tf.keep(x0);
            const ax = checkBatchShape(forward(x0), op.outShape, forwardName, 'A(x̂₀)');
            if (ax.shape[0] !== b) {
              throw new SbmError('INVALID_SHAPE', `${forwardName}: expected batch ${b}, got ${ax.shape[0]}`, {
                argument: opts.forward ? 'forward' : 'operator',
              });
            }
            return tf.sum(perSampleNorm(tf.sub(y, ax)));
          })(x),
        );
        let next: tf.Tensor;
        if (x0Kept !== null) {
          // The authors' last DDPM step (t = 0): its mean is x̂₀ and it adds no noise.
          next = x0Kept;
        } else {
          current = kept;
          next = predictor.update(x, t, dt).x;
          current = null;
        }
        // Chung et al. 2023, Algorithm 1, line 7 (with the norm, as their code): x_{i−1} ← x'_{i−1} − ζ ∇_{x_i} ‖y − A(x̂₀)‖.
        return { x: tf.sub(next, tf.mul(g, zeta)) };
      } finally {
        current = null;
        (kept as tf.Tensor | null)?.dispose();
        (x0Kept as tf.Tensor | null)?.dispose();
      }
    },
    point: (st, i) => ({ t: grid[i], x: st.x }),
    stats: { steps },
  });
  return {
    samples: result.samples,
    stats: { ...result.stats, sampler: predictorName, method: 'dps', vjp: steps, steps },
  };
}

/** Diffusion posterior sampling: the unconditional step plus −ζ ∇_{x_t} ‖y − A(x̂₀(x_t))‖ (one VJP per step). */
export const dpsMethod: MethodDefinition = {
  run: runDps,
  keys: DPS_KEYS,
  needsMeasurement: true,
  samplers: Object.keys(PREDICTORS),
  description:
    'diffusion posterior sampling (Chung et al. 2023): −ζ ∇‖y − A(x̂₀)‖ after each unconditional step; any differentiable forward, noisy y',
};
