import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  broadcastBatch,
  checkChoice,
  checkFnOutput,
  checkNumber,
  checkOptions,
  describeValue,
  sampleSize,
} from '@sbm/core';
import { isSde, type ScoreFn, type Sde } from '@sbm/sde';

// Model-output adapters, classifier-free guidance and x̂₀ thresholding, all as ScoreFn wrappers.
//
// Every SDE of sbm has the affine Gaussian kernel x_t = α(t) x₀ + σ(t) ε, ε ~ N(0, I) (REFERENCE.md, "SDEs"). For
// such a kernel the exact score and the three usual regression targets are tied by Tweedie's formula
// (Efron 2011; Song et al. 2021, App. B; Kingma et al. 2021, App. B):
//   x̂₀ = E[x₀ | x_t] = (x + σ² s)/α,   ε̂ = E[ε | x_t] = −σ s,   v̂ = α ε̂ − σ x̂₀,
// so a network trained for any of them gives the score exactly, and the conversions below are exact identities (no
// approximation beyond float32 rounding). Everything is written with the SDE's tensor forms sde.alphaT / sde.stdT at
// the per-sample times t ([B]): no readback, GPU-safe.

/** A network's raw forward pass: its input x (or x/α for a denoiser) and its noise-level input c (see TimeInput). */
export type NetworkFn = (x: tf.Tensor, c: tf.Tensor1D) => tf.Tensor;

/**
 * What a network takes as its noise-level input c, given the SDE time t ([B]):
 * - `'t'`: t itself (sbm's own models, Song's tutorial ScoreNet);
 * - `'sigma'`: the marginal std σ(t) (score_sde's continuous VE models get σ(t); equal to σ̃ under VE);
 * - `'edm-sigma'`: Karras et al.'s σ̃ = σ(t)/α(t) (EDM denoisers, k-diffusion models);
 * - `'discrete'`: DDPM's timestep label t·(N − 1), unrounded (score_sde's get_score_fn feeds VP / sub-VP models
 *   t·999 when continuous and t·(N − 1) when not; diffusers' DDPM-family UNets take the integer timestep k ↔
 *   t = k/(N − 1) on the VP SDE with β ∈ [0.1, 20], N = 1000). score_sde's discrete VE (SMLD) index round((T − t)(N − 1))
 *   counts from σ_max down and is not this: pass a function for it;
 * - a function t ↦ c ([B] → [B]) for anything else (it must use tensor ops only to stay GPU-safe).
 */
export type TimeInput = 't' | 'sigma' | 'edm-sigma' | 'discrete' | ((t: tf.Tensor1D) => tf.Tensor1D);

export const TIME_INPUTS = ['t', 'sigma', 'edm-sigma', 'discrete'] as const;

export interface AdapterOptions {
  /** The network's noise-level input (default `'t'`; `'edm-sigma'` for fromDenoiser). */
  timeInput?: TimeInput;
  /** N of `timeInput: 'discrete'` (labels t·(N − 1)); default sde.N (1000 for the built-in SDEs). */
  N?: number;
}

const ADAPTER_KEYS = ['timeInput', 'N'];

function invalid(argument: string, message: string, received?: unknown): SbmError {
  return new SbmError('INVALID_ARGUMENT', `${argument}: ${message}`, { argument, received });
}

function checkSde(sde: unknown, where: string): Sde {
  if (!isSde(sde)) {
    throw invalid('sde', `${where}: expected an Sde (VeSde, VpSde, createSde(...)), got ${describeValue(sde)}`);
  }
  return sde;
}

function checkFn<F>(fn: unknown, name: string, where: string, what: string): F {
  if (typeof fn !== 'function') {
    throw invalid(name, `${where}: expected ${what} (a function), got ${describeValue(fn)}`);
  }
  return fn as F;
}

/** x must be a live tensor of rank ≥ 2 and t a [B] tensor: checked per call (shape only, no values read). */
function checkXt(x: tf.Tensor, t: tf.Tensor1D, where: string): void {
  if (!(x instanceof tf.Tensor) || x.isDisposed || x.rank < 1) {
    throw invalid('x', `${where}: expected a live tensor [batch, ...], got ${describeValue(x)}`);
  }
  if (!(t instanceof tf.Tensor) || t.isDisposed || t.rank !== 1 || t.shape[0] !== x.shape[0]) {
    throw new SbmError(
      'INVALID_SHAPE',
      `t: ${where}: expected a [${x.shape[0]}] tensor of times (one per sample), got ${describeValue(t)}`,
      { argument: 't', expected: [x.shape[0]], received: t instanceof tf.Tensor ? t.shape : typeof t },
    );
  }
}

type LabelFn = (t: tf.Tensor1D) => tf.Tensor1D;

function labelFn(sde: Sde, opts: AdapterOptions, fallback: TimeInput, where: string): LabelFn {
  const spec = opts.timeInput ?? fallback;
  if (opts.N !== undefined && spec !== 'discrete') {
    throw invalid(
      'N',
      `${where}: N applies to timeInput 'discrete' only (timeInput is ${describeValue(spec)})`,
      opts.N,
    );
  }
  if (typeof spec === 'function') {
    return (t) => {
      const c = spec(t);
      if (!(c instanceof tf.Tensor) || c.isDisposed || c.rank !== 1 || c.shape[0] !== t.shape[0]) {
        throw new SbmError(
          'INVALID_SHAPE',
          `timeInput: ${where}: expected the timeInput function to return a [${t.shape[0]}] tensor, got ${describeValue(c)}`,
          { argument: 'timeInput', expected: [t.shape[0]] },
        );
      }
      return c as tf.Tensor1D;
    };
  }
  switch (checkChoice(spec, 'timeInput', TIME_INPUTS)) {
    case 't':
      return (t) => t;
    case 'sigma':
      return (t) => sde.stdT(t);
    case 'edm-sigma':
      return (t) => tf.div(sde.stdT(t), sde.alphaT(t));
    case 'discrete': {
      const N = checkNumber(opts.N ?? sde.N, 'N', { integer: true, min: 2 });
      return (t) => tf.mul(t, N - 1);
    }
  }
}

interface Coefs {
  /** α(t), σ(t) broadcast against x: [B, 1, …]. */
  a: tf.Tensor;
  s: tf.Tensor;
}

/**
 * The shared body of the from* adapters: per call, α and σ at t, the network on (input(x), label(t)) with its output
 * checked to have x's shape, then `toScore`. One tf.tidy: nothing but the score survives, also when the network throws.
 */
function adapter(
  where: string,
  sdeArg: unknown,
  net: unknown,
  netName: string,
  what: string,
  options: AdapterOptions | undefined,
  fallback: TimeInput,
  toScore: (x: tf.Tensor, out: tf.Tensor, c: Coefs) => tf.Tensor,
  input?: (x: tf.Tensor, c: Coefs) => tf.Tensor,
): ScoreFn {
  const sde = checkSde(sdeArg, where);
  const fn = checkFn<NetworkFn>(net, netName, where, what);
  const opts = options ?? {};
  checkOptions(opts, ADAPTER_KEYS, where);
  const label = labelFn(sde, opts, fallback, where);
  return (x, t) =>
    tf.tidy(() => {
      checkXt(x, t, where);
      const c: Coefs = { a: broadcastBatch(sde.alphaT(t), x), s: broadcastBatch(sde.stdT(t), x) };
      const out = checkFnOutput(fn(input ? input(x, c) : x, label(t)), x, netName, what);
      return toScore(x, out, c);
    });
}

/**
 * Score of an ε-prediction network (DDPM, Ho et al. 2020; score_sde's VP models): s = −ε̂/σ(t).
 * `timeInput: 'discrete'` gives it DDPM's labels t·(N − 1) (score_sde's `t * 999` for N = 1000).
 */
export function fromEpsilon(sde: Sde, epsFn: NetworkFn, options?: AdapterOptions): ScoreFn {
  return adapter('fromEpsilon', sde, epsFn, 'epsFn', 'the ε network', options, 't', (_x, e, c) =>
    tf.neg(tf.div(e, c.s)),
  );
}

/** Score of an x₀-prediction network (diffusers' prediction_type 'sample'): s = (α x̂₀ − x)/σ², Tweedie inverted. */
export function fromX0(sde: Sde, x0Fn: NetworkFn, options?: AdapterOptions): ScoreFn {
  return adapter('fromX0', sde, x0Fn, 'x0Fn', 'the x̂₀ network', options, 't', (x, d, c) =>
    tf.div(tf.sub(tf.mul(c.a, d), x), tf.square(c.s)),
  );
}

/**
 * Score of a v-prediction network, v = α ε − σ x₀ in the SDE's own α(t), σ(t) (Salimans & Ho 2022, §4 and App. D,
 * where α² + σ² = 1 on VP; the same target with diffusers' prediction_type 'v_prediction' on a VP schedule).
 *
 * For a general affine kernel (sub-VP, VE, plugins: α² + σ² ≠ 1) the pair x = α x₀ + σ ε, v = α ε − σ x₀ is a
 * linear system with determinant α² + σ², so exactly
 *   x̂₀ = (α x − σ v)/(α² + σ²),   ε̂ = (σ x + α v)/(α² + σ²),   s = −ε̂/σ = −(σ x + α v)/(σ (α² + σ²)).
 * On VP this is Salimans & Ho's x̂₀ = α x − σ v. A network trained on the variance-normalized process
 * x/√(α² + σ²) (whose v is (α ε − σ x₀)/√(α² + σ²)) needs that factor applied to its output first.
 */
export function fromV(sde: Sde, vFn: NetworkFn, options?: AdapterOptions): ScoreFn {
  return adapter('fromV', sde, vFn, 'vFn', 'the v network', options, 't', (x, v, c) => {
    const norm = tf.add(tf.square(c.a), tf.square(c.s));
    return tf.neg(tf.div(tf.add(tf.mul(c.s, x), tf.mul(c.a, v)), tf.mul(c.s, norm)));
  });
}

/**
 * Score of an EDM denoiser D(x̃, σ̃) ≈ E[x₀ | x̃] (Karras et al. 2022, eq. 3 and §2): the network sees the VE variable
 * x̃ = x/α(t) at noise level σ̃ = σ(t)/α(t) (default `timeInput: 'edm-sigma'`; its own c_in / c_noise preconditioning is
 * inside D). Since x̃ = x₀ + σ̃ ε, its score is (D − x̃)/σ̃², and in x: s = (α D − x)/σ². One denoiser thus serves every
 * SDE of sbm.
 */
export function fromDenoiser(sde: Sde, denoiser: NetworkFn, options?: AdapterOptions): ScoreFn {
  return adapter(
    'fromDenoiser',
    sde,
    denoiser,
    'denoiser',
    'the denoiser D(x̃, σ̃)',
    options,
    'edm-sigma',
    (x, d, c) => tf.div(tf.sub(tf.mul(c.a, d), x), tf.square(c.s)),
    (x, c) => tf.div(x, c.a),
  );
}

/**
 * A score network as a ScoreFn: the identity but for its time input (score_sde's continuous VE models take σ(t):
 * `fromScore(ve, net, { timeInput: 'sigma' })`), with the same argument and output checks as the other adapters.
 */
export function fromScore(sde: Sde, score: NetworkFn, options?: AdapterOptions): ScoreFn {
  return adapter('fromScore', sde, score, 'score', 'the score network', options, 't', (_x, s) => tf.clone(s));
}

/** The inverse direction: what an exact ε-network would output, ε̂(x, t) = −σ(t) s(x, t). */
export function toEpsilon(sde: Sde, score: ScoreFn): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  return inverse('toEpsilon', sde, score, (_x, s, c) => tf.neg(tf.mul(c.s, s)));
}

/** x̂₀(x, t) = (x + σ² s)/α (Tweedie; the same as @sbm/sde's denoiser). D(x̃, σ̃) of fromDenoiser is x̂₀ at x = α x̃. */
export function toX0(sde: Sde, score: ScoreFn): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  return inverse('toX0', sde, score, (x, s, c) => tf.div(tf.add(x, tf.mul(tf.square(c.s), s)), c.a));
}

/** v̂(x, t) = α ε̂ − σ x̂₀ = −(σ/α)((α² + σ²) s + x), fromV's convention. */
export function toV(sde: Sde, score: ScoreFn): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  return inverse('toV', sde, score, (x, s, c) =>
    tf.neg(tf.mul(tf.div(c.s, c.a), tf.add(tf.mul(tf.add(tf.square(c.a), tf.square(c.s)), s), x))),
  );
}

function inverse(
  where: string,
  sdeArg: unknown,
  scoreArg: unknown,
  f: (x: tf.Tensor, s: tf.Tensor, c: Coefs) => tf.Tensor,
): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  return checkedScoreMap(where, sdeArg, scoreArg, (x, t, s, sde) =>
    f(x, s, { a: broadcastBatch(sde.alphaT(t), x), s: broadcastBatch(sde.stdT(t), x) }),
  );
}

/**
 * The checked frame of the functions of a score: the SDE and the score function are checked once for `where`, then
 * every call checks x and t and the score's output and returns f(x, t, s(x, t), sde) inside tf.tidy.
 */
function checkedScoreMap(
  where: string,
  sdeArg: unknown,
  scoreArg: unknown,
  f: (x: tf.Tensor, t: tf.Tensor1D, s: tf.Tensor, sde: Sde) => tf.Tensor,
): (x: tf.Tensor, t: tf.Tensor1D) => tf.Tensor {
  const sde = checkSde(sdeArg, where);
  const score = checkFn<ScoreFn>(scoreArg, 'score', where, 'a score function (x, t) => tensor');
  return (x, t) =>
    tf.tidy(() => {
      checkXt(x, t, where);
      return f(x, t, checkFnOutput(score(x, t), x, 'score', 'the score function'), sde);
    });
}

// ---- classifier-free guidance ---------------------------------------------------------------------------------------

/** A conditional score network: `condition` is whatever the network takes (a label tensor, an embedding, null). */
export type ConditionalScoreFn<C> = (x: tf.Tensor, t: tf.Tensor1D, condition: C) => tf.Tensor;

export interface CfgOptions<C> {
  /** The condition passed for the conditional branch. */
  condition: C;
  /** The "no condition" value for the unconditional branch (a null-class label, an empty embedding); default null. */
  nullCondition?: C | null;
  /** Guidance scale w (any finite number; see cfg). */
  w: number;
  /**
   * Evaluate both branches in one call on the doubled batch [x; x], [t; t], [nullCondition; condition] (diffusers'
   * order) and split the output; both conditions must then be tensors whose first dimension is the batch size.
   */
  batched?: boolean;
}

const CFG_KEYS = ['condition', 'nullCondition', 'w', 'batched'];

/**
 * Classifier-free guidance (Ho & Salimans 2022) as a ScoreFn: s = s_u + w (s_c − s_u) = (1 − w) s_u + w s_c, the
 * score of p_u^{1−w} p_c^w. w = 0 is the unconditional model, w = 1 the conditional one, w > 1 guides (diffusers'
 * guidance_scale is this w: their ε-form ε_u + w (ε_c − ε_u) is the same rule, since ε = −σ s is linear in s; Ho &
 * Salimans' own w is ours minus 1). w < 0 (away from the condition) and 0 < w < 1 (interpolation) are accepted: the
 * formula is the score of the same geometric mixture for any real w. w = 0 and w = 1 call only the branch they need.
 *
 * Two forms: `cfg(uncond, cond, w)` with two score functions, or `cfg(score, { condition, nullCondition, w, batched })`
 * with one conditional network called with and without its condition (optionally in one batched call).
 */
export function cfg(uncond: ScoreFn, cond: ScoreFn, w: number): ScoreFn;
export function cfg<C>(score: ConditionalScoreFn<C>, options: CfgOptions<C>): ScoreFn;
export function cfg<C>(first: unknown, second: unknown, third?: unknown): ScoreFn {
  if (typeof second === 'function' || typeof second !== 'object' || second === null) {
    const uncond = checkFn<ScoreFn>(first, 'uncond', 'cfg', 'the unconditional score function');
    const cond = checkFn<ScoreFn>(second, 'cond', 'cfg', 'the conditional score function');
    const w = checkNumber(third, 'w');
    return guided(
      w,
      (x, t) => checkFnOutput(uncond(x, t), x, 'uncond', 'the unconditional score function'),
      (x, t) => checkFnOutput(cond(x, t), x, 'cond', 'the conditional score function'),
    );
  }
  if (third !== undefined) throw invalid('options', 'cfg(score, options) takes two arguments', third);
  const score = checkFn<ConditionalScoreFn<C | null>>(first, 'score', 'cfg', 'the conditional score function');
  checkOptions(second, CFG_KEYS, 'cfg');
  const o = second as CfgOptions<C>;
  if (!('condition' in o)) throw invalid('condition', 'cfg: expected options.condition (the condition to guide to)');
  const w = checkNumber(o.w, 'w');
  const condition = o.condition;
  const nullCondition = o.nullCondition ?? null;
  const call = (x: tf.Tensor, t: tf.Tensor1D, c: C | null, branch: string): tf.Tensor =>
    checkFnOutput(score(x, t, c), x, 'score', `the score function (${branch} branch)`);
  if (o.batched) {
    for (const [name, v] of [
      ['condition', condition],
      ['nullCondition', nullCondition],
    ] as const) {
      if (!(v instanceof tf.Tensor) || v.isDisposed) {
        throw invalid(name, `cfg: batched: true needs tensor conditions, got ${describeValue(v)}`);
      }
    }
    const c = condition as unknown as tf.Tensor;
    const u = nullCondition as unknown as tf.Tensor;
    if (c.rank !== u.rank || c.shape.some((d, i) => d !== u.shape[i])) {
      throw new SbmError(
        'INVALID_SHAPE',
        `nullCondition: cfg: expected the shape of condition [${c.shape.join(', ')}], got [${u.shape.join(', ')}]`,
        { argument: 'nullCondition', expected: c.shape, received: u.shape },
      );
    }
    if (w !== 0 && w !== 1) {
      return (x, t) =>
        tf.tidy(() => {
          checkXt(x, t, 'cfg');
          const B = x.shape[0];
          if (c.shape[0] !== B) {
            throw new SbmError(
              'INVALID_SHAPE',
              `condition: cfg: batched: true needs conditions with the batch size ${B} as first dimension, got [${c.shape.join(', ')}]`,
              { argument: 'condition', expected: [B], received: c.shape },
            );
          }
          const x2 = tf.concat([x, x], 0);
          const out = checkFnOutput(
            score(x2, tf.concat([t, t], 0) as tf.Tensor1D, tf.concat([u, c], 0) as unknown as C),
            x2,
            'score',
            'the score function (batched call)',
          );
          const [su, sc] = tf.split(out, 2, 0);
          return tf.add(su, tf.mul(tf.sub(sc, su), w));
        });
    }
  }
  return guided(
    w,
    (x, t) => call(x, t, nullCondition, 'unconditional'),
    (x, t) => call(x, t, condition as C, 'conditional'),
  );
}

function guided(w: number, uncond: ScoreFn, cond: ScoreFn): ScoreFn {
  return (x, t) =>
    tf.tidy(() => {
      checkXt(x, t, 'cfg');
      if (w === 0) return tf.clone(uncond(x, t));
      if (w === 1) return tf.clone(cond(x, t));
      const su = uncond(x, t);
      return tf.add(su, tf.mul(tf.sub(cond(x, t), su), w));
    });
}

// ---- thresholding ---------------------------------------------------------------------------------------------------

export interface DynamicThresholdingOptions {
  /** Percentile p ∈ (0, 1] of |x̂₀| per sample (Imagen, diffusers' dynamic_thresholding_ratio): default 0.995. */
  percentile?: number;
  /**
   * Upper bound of the threshold s (diffusers' sample_max_value; ≥ 1, Infinity allowed): default 1, diffusers'
   * default, under which s is always 1 and the rule reduces to clipping x̂₀ to [−1, 1]. Imagen's paper sets no bound
   * (Infinity); diffusers' docs suggest values above 1 for pixel-space models.
   */
  maxValue?: number;
}

const THRESHOLD_KEYS = ['percentile', 'maxValue'];

function thresholdOptions(options: unknown, where: string): { p: number; maxValue: number } {
  const o = (options ?? {}) as DynamicThresholdingOptions;
  checkOptions(o, THRESHOLD_KEYS, where);
  const p = checkNumber(o.percentile ?? 0.995, 'percentile', { gt: 0, max: 1 });
  const maxValue = o.maxValue === Infinity ? Infinity : checkNumber(o.maxValue ?? 1, 'maxValue', { min: 1 });
  return { p, maxValue };
}

/**
 * Imagen's dynamic thresholding of a data prediction (Saharia et al. 2022, §2.3; diffusers' `_threshold_sample`):
 * per sample, q = the p-quantile of |x̂₀| over all its values (linear interpolation between order statistics, as
 * numpy / torch.quantile), s = clamp(q, 1, maxValue), x̂₀ ← clamp(x̂₀, −s, s)/s. A sample with s = 1 (all but a
 * (1 − p) share of |x̂₀| ≤ 1) is only clipped to [−1, 1]. For data in [−1, 1]. The quantile comes from tf.topk of
 * the k = n − ⌊p(n − 1)⌋ largest values (GPU-safe, no sort of the whole sample). Returns a new tensor.
 */
export function thresholdX0(x0: tf.Tensor, options?: DynamicThresholdingOptions): tf.Tensor {
  const { p, maxValue } = thresholdOptions(options, 'thresholdX0');
  if (!(x0 instanceof tf.Tensor) || x0.isDisposed || x0.rank < 2) {
    throw invalid('x0', `thresholdX0: expected a live tensor [batch, ...], got ${describeValue(x0)}`);
  }
  return applyThreshold(x0, p, maxValue);
}

function applyThreshold(x0: tf.Tensor, p: number, maxValue: number): tf.Tensor {
  return tf.tidy(() => {
    const B = x0.shape[0];
    const n = sampleSize(x0.shape);
    const pos = p * (n - 1);
    const i = Math.min(n - 1, Math.floor(pos));
    const frac = pos - i;
    const k = n - i; // ascending order statistic i is the k-th largest
    const top = tf.topk(tf.reshape(tf.abs(x0), [B, n]), k, true).values; // descending, [B, k]
    let q = tf.slice(top, [0, k - 1], [B, 1]);
    if (frac > 0 && k >= 2) q = tf.add(q, tf.mul(tf.sub(tf.slice(top, [0, k - 2], [B, 1]), q), frac));
    let s = tf.maximum(q, 1);
    if (Number.isFinite(maxValue)) s = tf.minimum(s, maxValue);
    s = tf.reshape(s, [B, ...new Array(x0.rank - 1).fill(1)]);
    return tf.div(tf.minimum(tf.maximum(x0, tf.neg(s)), s), s);
  });
}

/**
 * A ScoreFn transform through the data prediction: x̂₀ = (x + σ² s)/α, x̂₀' = f(x̂₀), and back, written as
 * s' = s + α (x̂₀' − x̂₀)/σ² (equal to (α x̂₀' − x)/σ², and exactly s wherever f leaves x̂₀ unchanged).
 */
function throughX0(where: string, sdeArg: unknown, scoreArg: unknown, f: (x0: tf.Tensor) => tf.Tensor): ScoreFn {
  return checkedScoreMap(where, sdeArg, scoreArg, (x, t, s, sde) => {
    const a = broadcastBatch(sde.alphaT(t), x);
    const var_ = tf.square(broadcastBatch(sde.stdT(t), x));
    const x0 = tf.div(tf.add(x, tf.mul(var_, s)), a);
    return tf.add(s, tf.div(tf.mul(a, tf.sub(f(x0), x0)), var_));
  });
}

/**
 * Dynamic thresholding (Imagen) as a ScoreFn wrapper: the score whose data prediction is thresholdX0(x̂₀) — what a
 * DDIM / DPM-Solver++ step over the thresholded x̂₀ uses (diffusers applies it inside those schedulers' steps).
 */
export function dynamicThresholding(sde: Sde, score: ScoreFn, options?: DynamicThresholdingOptions): ScoreFn {
  const { p, maxValue } = thresholdOptions(options, 'dynamicThresholding');
  return throughX0('dynamicThresholding', sde, score, (x0) => applyThreshold(x0, p, maxValue));
}

/** Static thresholding (Ho et al. 2020; diffusers' clip_sample): x̂₀ clipped to [lo, hi], as a ScoreFn wrapper. */
export function clipX0(sde: Sde, score: ScoreFn, range: readonly [number, number] = [-1, 1]): ScoreFn {
  if (!Array.isArray(range) || range.length !== 2) {
    throw invalid('range', `clipX0: expected [lo, hi], got ${describeValue(range)}`);
  }
  const lo = checkNumber(range[0], 'range[0]');
  const hi = checkNumber(range[1], 'range[1]', { gt: lo });
  return throughX0('clipX0', sde, score, (x0) => tf.clipByValue(x0, lo, hi));
}
