import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  broadcastBatch,
  checkChoice,
  checkNumber,
  checkOptions,
  checkTensor,
  seedStream,
  withGradientCleanup,
  type SeedStream,
} from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';
import { batchTimes, callChecked, checkBatch, checkEps, checkFn, checkSde, checkSeedArg } from './internal';

/** Distribution of the sliced-score-matching projections v. All three are scaled so that E[v vᵀ] = I. */
export type Projection = 'rademacher' | 'gaussian' | 'sphere';

const PROJECTIONS: readonly Projection[] = ['rademacher', 'gaussian', 'sphere'];
const SM_KEYS = ['sde', 'eps', 't', 'weighting'] as const;
export const SSM_OPTION_KEYS = [...SM_KEYS, 'projection', 'varianceReduction', 'nProjections', 'projections'] as const;
export const ISM_OPTION_KEYS = [...SM_KEYS, 'maxDim'] as const;

/** λ(t) when the objective is applied to SDE-perturbed data; 'none' means λ = 1. */
export type ScoreMatchingWeighting = 'default' | 'likelihood' | 'none' | ((t: tf.Tensor1D) => tf.Tensor1D);

export interface ScoreMatchingOptions {
  /**
   * Without an SDE the objective is taken on `x` itself and the score is called with t = `t` (default 0).
   * With one, x_t = α x + σ z at t ~ U(eps, T) (or the given `t`) and the objective of p_t is weighted by λ(t)
   * (as the annealed SSM of NCSN, which multiplies by σ²).
   */
  sde?: Sde;
  /** Smallest time with an SDE (default 1e-5). */
  eps?: number;
  /** Fixed time(s): a number or a [B] tensor. */
  t?: number | tf.Tensor1D;
  /** λ(t) with an SDE: 'default' σ², 'likelihood' g², 'none', or a function. Ignored without an SDE. */
  weighting?: ScoreMatchingWeighting;
}

export interface SlicedScoreMatchingOptions extends ScoreMatchingOptions {
  /** Distribution of v (default 'gaussian'). 'sphere' vectors are scaled to norm √D so that E[v vᵀ] = I. */
  projection?: Projection;
  /**
   * Replace ½(vᵀs)² by its expectation over v, ½‖s‖² (SSM-VR, Song et al. 2019, eq. 8). Default: true for Gaussian
   * projections (the paper's recommended estimator), false otherwise.
   */
  varianceReduction?: boolean;
  /** Projections per sample, averaged (default 1). */
  nProjections?: number;
  /** Explicit projections, shape [nProjections, ...x.shape] (overrides `projection`, `nProjections` and the seed). */
  projections?: tf.Tensor;
}

export interface ImplicitScoreMatchingOptions extends ScoreMatchingOptions {
  /** Refuse inputs with more than this many dimensions per sample (default 256): the trace costs D backward passes. */
  maxDim?: number;
}

interface Prepared {
  xt: tf.Tensor;
  t: tf.Tensor1D;
  /** [B] weight, or null for λ = 1. */
  weight: tf.Tensor1D | null;
}

/** Perturbs x with the SDE when one is given, and computes λ(t); the caller disposes (inside its tidy). */
function prepare(x: tf.Tensor, stream: SeedStream, opts: ScoreMatchingOptions): Prepared {
  const B = x.shape[0];
  if (opts.sde === undefined) {
    let t: tf.Tensor1D;
    if (opts.t === undefined || typeof opts.t === 'number') {
      t = tf.fill([B], checkNumber(opts.t ?? 0, 't'), 'float32') as tf.Tensor1D;
    } else {
      t = checkTensor(opts.t, 't', [B]) as tf.Tensor1D;
    }
    return { xt: x, t, weight: null };
  }
  const sde = checkSde(opts.sde);
  const eps = checkEps(opts.eps ?? 1e-5, sde);
  const w = opts.weighting ?? 'default';
  if (typeof w !== 'function') checkChoice(w, 'weighting', ['default', 'likelihood', 'none'] as const);
  const t = batchTimes(B, sde, eps, opts.t, stream);
  const { xt, std } = sde.perturb(x, t, stream);
  let weight: tf.Tensor1D | null = null;
  if (w === 'default') weight = tf.square(std) as tf.Tensor1D;
  else if (w === 'likelihood') weight = tf.square(sde.diffusionT(t)) as tf.Tensor1D;
  else if (typeof w === 'function') {
    const out = w(t);
    if (!(out instanceof tf.Tensor) || out.rank !== 1 || out.shape[0] !== B) {
      throw new SbmError('INVALID_SHAPE', `weighting: expected the weighting function to return a [${B}] tensor`, {
        argument: 'weighting',
      });
    }
    weight = out as tf.Tensor1D;
  }
  return { xt, t, weight };
}

function tileBatch(x: tf.Tensor, m: number): tf.Tensor {
  return m === 1 ? x : tf.tile(x, [m, ...new Array(x.rank - 1).fill(1)]);
}

/**
 * For a batch xs [M·B, ...] (M stacked copies) and probes v of the same shape, returns the score s(xs, ts) and
 * vᵀ ∇ₓ(vᵀ s) per row, with one forward and one backward pass. The backward pass runs through tf.grad, and when
 * a gradient tape is already recording (tf.variableGrads around the loss) its operations are recorded too, so the
 * Jacobian term stays differentiable with respect to the model's variables.
 *
 * Rows are treated as independent: ∇ₓ of the summed vᵀs gives each row's own vector-Jacobian product only when the
 * score function does not mix samples (no batch statistics).
 */
function scoreAndProbe(
  score: ScoreFn,
  xs: tf.Tensor,
  ts: tf.Tensor1D,
  v: tf.Tensor,
): { s: tf.Tensor; vjv: tf.Tensor1D } {
  let s: tf.Tensor | undefined;
  let vjp: tf.Tensor;
  try {
    vjp = withGradientCleanup(() =>
      tf.grad((xx: tf.Tensor) => {
        const out = callChecked('score', score(xx, ts), xx);
        // Kept past tf.grad's internal tidy so the first term reuses this forward pass; disposed by the caller.
        s = tf.keep(out);
        return tf.sum(tf.mul(out, v));
      })(xs),
    );
  } catch (e) {
    // Kept, so no tidy frees it on the way out.
    if (s && !s.isDisposed) s.dispose();
    throw noGradientPath(e) ?? e;
  }
  const vjv = tf.sum(tf.reshape(tf.mul(vjp, v), [xs.shape[0], -1]), 1) as tf.Tensor1D;
  return { s: s!, vjv };
}

/**
 * tfjs's "Cannot compute gradient" (tf.grad found no operation from x to the score) as an error naming the score:
 * the ∇ₓ s term needs a score built from x with tf ops.
 */
function noGradientPath(e: unknown): SbmError | undefined {
  if (!(e instanceof Error) || e instanceof SbmError || !/Cannot compute gradient/.test(e.message)) return undefined;
  return new SbmError(
    'INVALID_ARGUMENT',
    "score: the score function's output does not depend on x (no tf operation leads from x to it), so its divergence " +
      'cannot be computed; build the score from x with tf ops (no dataSync / arraySync / tf.stopGradient on the way)',
    { argument: 'score' },
    { cause: e },
  );
}

function drawProjections(shape: number[], projection: Projection, stream: SeedStream): tf.Tensor {
  const seed = stream.next();
  return tf.tidy(() => {
    if (projection === 'rademacher') {
      return tf.sub(tf.mul(tf.cast(tf.less(tf.randomUniform(shape, 0, 1, 'float32', seed), 0.5), 'float32'), 2), 1);
    }
    const g = tf.randomNormal(shape, 0, 1, 'float32', seed);
    if (projection === 'gaussian') return g;
    // Uniform on the sphere of radius √D: E[v vᵀ] = (D/D)·I, so every projection type has the same expectation.
    const D = shape.slice(1).reduce((a, b) => a * b, 1);
    const norm = tf.sqrt(tf.sum(tf.reshape(tf.square(g), [shape[0], -1]), 1));
    return tf.mul(g, broadcastBatch(tf.div(Math.sqrt(D), norm), g));
  });
}

/**
 * Per-sample sliced score matching loss ([B]), Song, Garg, Shi & Ermon 2019, eq. 7:
 * ½(vᵀs)² + vᵀ ∇ₓ(vᵀs), averaged over the projections v; with variance reduction (eq. 8) the first term is ½‖s‖².
 * Its expectation over v equals the implicit score matching objective ½‖s‖² + tr ∇ₓs (Hyvärinen 2005), whose
 * expectation over the data is E‖s − ∇log p‖²/2 up to a constant independent of s.
 */
export function slicedScoreMatchingLossPerSample(
  score: ScoreFn,
  x: tf.Tensor,
  seed: number | SeedStream,
  opts: SlicedScoreMatchingOptions = {},
): tf.Tensor1D {
  checkFn(score, 'score', '(x, t) => tensor');
  checkBatch(x, 'x');
  checkOptions(opts, SSM_OPTION_KEYS, 'slicedScoreMatchingLoss', {});
  const stream = seedStream(checkSeedArg(seed));
  const projection = checkChoice(opts.projection ?? 'gaussian', 'projection', PROJECTIONS);
  const vr = opts.varianceReduction ?? projection === 'gaussian';
  if (typeof vr !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `varianceReduction: expected a boolean, got ${typeof vr}`, {
      argument: 'varianceReduction',
    });
  }
  const B = x.shape[0];
  let M: number;
  if (opts.projections !== undefined) {
    checkTensor(opts.projections, 'projections', [null, ...x.shape]);
    M = opts.projections.shape[0];
    if (M < 1)
      throw new SbmError('INVALID_SHAPE', 'projections: expected at least one projection', { argument: 'projections' });
  } else {
    M = checkNumber(opts.nProjections ?? 1, 'nProjections', { integer: true, min: 1 });
  }
  return tf.tidy(() => {
    const { xt, t, weight } = prepare(x, stream, opts);
    const v =
      opts.projections !== undefined
        ? tf.reshape(opts.projections, [M * B, ...x.shape.slice(1)])
        : drawProjections([M * B, ...x.shape.slice(1)], projection, stream);
    const xs = tileBatch(xt, M);
    const ts = tileBatch(t, M) as tf.Tensor1D;
    const { s, vjv } = scoreAndProbe(score, xs, ts, v);
    try {
      const flatS = tf.reshape(s, [M * B, -1]);
      const first = vr
        ? tf.mul(tf.sum(tf.square(flatS), 1), 0.5)
        : tf.mul(tf.square(tf.sum(tf.mul(flatS, tf.reshape(v, [M * B, -1])), 1)), 0.5);
      // Rows are ordered projection-major (tile repeats the whole batch), so [M, B] → mean over M.
      const perSample = tf.mean(tf.reshape(tf.add(first, vjv), [M, B]), 0);
      return weight ? tf.mul(perSample, weight) : perSample;
    } finally {
      s.dispose();
    }
  }) as tf.Tensor1D;
}

/** Sliced score matching loss: batch mean of {@link slicedScoreMatchingLossPerSample}. */
export function slicedScoreMatchingLoss(
  score: ScoreFn,
  x: tf.Tensor,
  seed: number | SeedStream,
  opts: SlicedScoreMatchingOptions = {},
): tf.Scalar {
  return tf.tidy(() => tf.mean(slicedScoreMatchingLossPerSample(score, x, seed, opts))) as tf.Scalar;
}

/**
 * Per-sample exact implicit score matching loss ([B]), Hyvärinen 2005, eq. 4: ½‖s‖² + tr ∇ₓs, the trace computed
 * exactly as Σ_d e_dᵀ ∇ₓ(e_dᵀ s) — D vector-Jacobian products, batched as one backward pass over D stacked copies
 * of the batch. Meant for low-dimensional data (D ≤ `maxDim`). The seed is used only with an SDE (for t and z).
 */
export function implicitScoreMatchingLossPerSample(
  score: ScoreFn,
  x: tf.Tensor,
  seed: number | SeedStream,
  opts: ImplicitScoreMatchingOptions = {},
): tf.Tensor1D {
  checkFn(score, 'score', '(x, t) => tensor');
  checkBatch(x, 'x');
  checkOptions(opts, ISM_OPTION_KEYS, 'implicitScoreMatchingLoss', {});
  const stream = seedStream(checkSeedArg(seed));
  const maxDim = checkNumber(opts.maxDim ?? 256, 'maxDim', { integer: true, min: 1 });
  const B = x.shape[0];
  const D = x.shape.slice(1).reduce((a, b) => a * b, 1);
  if (D > maxDim) {
    throw new SbmError(
      'INVALID_SHAPE',
      `x: exact implicit score matching needs D backward passes; expected at most maxDim = ${maxDim} dimensions per sample, got ${D} (use slicedScoreMatchingLoss)`,
      { argument: 'x', expected: maxDim, received: D },
    );
  }
  return tf.tidy(() => {
    const { xt, t, weight } = prepare(x, stream, opts);
    // Probe d (rows d·B … d·B + B − 1) is the basis vector e_d for every sample.
    const basis = tf.reshape(tf.tile(tf.reshape(tf.eye(D), [D, 1, D]), [1, B, 1]), [D * B, ...x.shape.slice(1)]);
    const { s, vjv } = scoreAndProbe(score, tileBatch(xt, D), tileBatch(t, D) as tf.Tensor1D, basis);
    try {
      const sFirst = tf.slice(tf.reshape(s, [D * B, -1]), [0, 0], [B, D]);
      const half = tf.mul(tf.sum(tf.square(sFirst), 1), 0.5);
      const trace = tf.sum(tf.reshape(vjv, [D, B]), 0);
      const perSample = tf.add(half, trace);
      return weight ? tf.mul(perSample, weight) : perSample;
    } finally {
      s.dispose();
    }
  }) as tf.Tensor1D;
}

/** Exact implicit score matching loss: batch mean of {@link implicitScoreMatchingLossPerSample}. */
export function implicitScoreMatchingLoss(
  score: ScoreFn,
  x: tf.Tensor,
  seed: number | SeedStream,
  opts: ImplicitScoreMatchingOptions = {},
): tf.Scalar {
  return tf.tidy(() => tf.mean(implicitScoreMatchingLossPerSample(score, x, seed, opts))) as tf.Scalar;
}
