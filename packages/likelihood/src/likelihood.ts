import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkChoice,
  checkFiniteAsync,
  checkNumber,
  checkOptions,
  checkTensor,
  describeValue,
  sampleSize,
  seedStream,
  throwIfAborted,
  type SeedStream,
} from '@sbm/core';
import { dopri5, type OdeProgress } from '@sbm/ode';
import { isSde, type Sde, type ScoreFn } from '@sbm/sde';
import { type DataRange, bpdOffset, checkDataRange, dequantizeUnchecked } from './bits-per-dim';
import { DIVERGENCE_METHODS, type DivergenceMethod, makeProbes, valueAndProbe } from './divergence';

export interface LikelihoodOptions {
  /** Lower end of the integration, t ∈ [eps, T] (default 1e-5, score_sde likelihood.py). Must lie in (0, T). */
  eps?: number;
  /** RK45 tolerances (default 1e-5 each, as score_sde). */
  rtol?: number;
  atol?: number;
  /** Divergence estimator (default 'rademacher'). 'exact' costs D vector-Jacobian products per step: small D only. */
  divergence?: DivergenceMethod;
  /**
   * Hutchinson probes per sample (default 1). Each probe is fixed for the whole trajectory and gives its own
   * log-likelihood estimate; the result is their mean, with a standard error when probes ≥ 2.
   */
  probes?: number;
  /** Refuse 'exact' above this many dimensions per sample (default 256). */
  maxExactDim?: number;
  /** Range that 8-bit data was scaled to (e.g. [0, 1] or [−1, 1]); sets the bits/dim offset log₂(256/(hi − lo)). */
  dataRange?: DataRange;
  /** Explicit bits/dim offset (overrides dataRange's). Default: from dataRange, else 0 (plain −log₂ p / D). */
  bpdOffset?: number;
  /** Uniformly dequantize x first (x holds 256-level data in dataRange, default [0, 1]). Uses the seed. */
  dequantize?: boolean;
  /** Also return the latent x_T (the caller disposes it). */
  returnLatent?: boolean;
  /** Checked at every solver step: aborting ends the call with SbmError('ABORTED'). */
  signal?: AbortSignal;
  /** Called after each accepted solver step. */
  onProgress?: (p: OdeProgress) => void;
}

export interface LikelihoodResult {
  /** −log p_eps(x) per sample, in nats (mean over probes). */
  nll: number[];
  /** Bits/dim per sample: nll/(D ln 2) + bpdOffset. */
  bpd: number[];
  /** The offset applied. */
  bpdOffset: number;
  /** Standard error of nll per sample (Hutchinson with probes ≥ 2: sample std over probes / √probes), else absent. */
  nllStdErr?: number[];
  /** Standard error of bpd, nllStdErr/(D ln 2). */
  bpdStdErr?: number[];
  /** log p_T(x_T) under the prior, per sample. */
  priorLogp: number[];
  /** ∫_eps^T ∇·f̃ dt per sample (mean over probes). */
  deltaLogp: number[];
  /** Values per sample. */
  dim: number;
  /** Right-hand-side evaluations of the ODE (each is one score call on the stacked batch and one backward pass). */
  nfe: number;
  steps: number;
  rejected: number;
  /** x_T, with x's shape (only with returnLatent). */
  latent?: tf.Tensor;
}

const LIKELIHOOD_OPTION_KEYS = [
  'eps',
  'rtol',
  'atol',
  'divergence',
  'probes',
  'maxExactDim',
  'dataRange',
  'bpdOffset',
  'dequantize',
  'returnLatent',
  'signal',
  'onProgress',
] as const;

// score_sde / torchdiffeq spellings of the same options.
const LIKELIHOOD_ALIASES: Record<string, string> = {
  hutchinson_type: 'divergence',
  hutchinsonType: 'divergence',
  data_range: 'dataRange',
  return_latent: 'returnLatent',
  callback: 'onProgress',
};

/** Synchronous checks; finiteness of x is checked asynchronously by the caller (no readback on GPU backends). */
function checkArgs(score: unknown, x: unknown, sde: unknown, opts: LikelihoodOptions) {
  checkOptions(opts, LIKELIHOOD_OPTION_KEYS, 'logLikelihood', LIKELIHOOD_ALIASES);
  if (typeof score !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `score: expected a function (x, t) => tensor, got ${describeValue(score)}`, {
      argument: 'score',
    });
  }
  const xt = checkTensor(x, 'x', undefined, { minRank: 2, nonEmpty: true });
  if (xt.dtype !== 'float32') {
    throw new SbmError('INVALID_ARGUMENT', `x: expected a float32 tensor, got dtype ${xt.dtype}`, { argument: 'x' });
  }
  if (!isSde(sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected an Sde instance (createSde(...)), got ${describeValue(sde)}`,
      {
        argument: 'sde',
      },
    );
  }
  const eps = checkNumber(opts.eps ?? 1e-5, 'eps', { gt: 0, lt: sde.T });
  const divergence = checkChoice(opts.divergence ?? 'rademacher', 'divergence', DIVERGENCE_METHODS);
  const probes = checkNumber(opts.probes ?? 1, 'probes', { integer: true, min: 1 });
  if (divergence === 'exact' && probes !== 1) {
    throw new SbmError('INVALID_ARGUMENT', `probes: the exact divergence takes no probes; expected 1, got ${probes}`, {
      argument: 'probes',
    });
  }
  const D = sampleSize(xt.shape);
  const maxExactDim = checkNumber(opts.maxExactDim ?? 256, 'maxExactDim', { integer: true, min: 1 });
  if (divergence === 'exact' && D > maxExactDim) {
    throw new SbmError(
      'INVALID_SHAPE',
      `x: the exact divergence needs D backward passes per step; expected at most maxExactDim = ${maxExactDim} values per sample, got ${D} (use divergence 'rademacher')`,
      { argument: 'x', expected: maxExactDim, received: D },
    );
  }
  const range = opts.dataRange !== undefined ? checkDataRange(opts.dataRange) : undefined;
  const offset =
    opts.bpdOffset !== undefined
      ? checkNumber(opts.bpdOffset, 'bpdOffset')
      : range
        ? bpdOffset(range)
        : opts.dequantize
          ? bpdOffset([0, 1])
          : 0;
  for (const k of ['onProgress'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'function') {
      throw new SbmError('INVALID_ARGUMENT', `${k}: expected a function, got ${describeValue(opts[k])}`, {
        argument: k,
      });
    }
  }
  return { x: xt, sde, eps, divergence, probes, D, range, offset };
}

/**
 * Log-likelihood of data under the probability-flow ODE of a score model (Song et al. 2021, Sec. 4.3 and App. D.2;
 * score_sde likelihood.py): with f̃(x, t) = f(x, t) − ½ g(t)² s(x, t) (the drift of `sde.reverse(score,
 * { probabilityFlow: true })`), the instantaneous change of variables (Chen et al. 2018) gives
 *   log p_eps(x) = log p_T(x_T) + ∫_eps^T ∇·f̃(x_t, t) dt,
 * integrated from x_eps = x to T together with x_t by the adaptive RK45 of @sbm/ode. The state is one [B, D + P]
 * tensor: x flattened and P running integrals (P = 1 for the exact trace, P = probes for Hutchinson). The result is
 * the density of p_eps, the SDE's marginal at t = eps (for VE that is the data convolved with N(0, σ(eps)² I)).
 */
export async function logLikelihood(
  score: ScoreFn,
  x: tf.Tensor,
  sde: Sde,
  seed: number | SeedStream,
  opts: LikelihoodOptions = {},
): Promise<LikelihoodResult> {
  const c = checkArgs(score, x, sde, opts);
  await checkFiniteAsync(c.x, 'x');
  const stream = seedStream(seed);
  throwIfAborted(opts.signal, 'logLikelihood');
  const B = x.shape[0];
  const { D, eps, probes } = c;
  const dataShape = x.shape.slice(1);
  const rsde = sde.reverse(score, { probabilityFlow: true });
  const data = opts.dequantize ? dequantizeUnchecked(x, stream, c.range ?? [0, 1]) : tf.clone(x);
  // Drawn once: Hutchinson's estimator needs the same v along the whole trajectory, or the integral of a fresh
  // estimate per step would be a different (higher-variance) quantity than the trace integral it targets.
  const { v, copies } = makeProbes(c.divergence, B, D, probes, stream);
  const P = c.divergence === 'exact' ? 1 : probes;
  const y0 = tf.tidy(() => tf.concat([tf.reshape(data, [B, D]), tf.zeros([B, P])], 1));
  data.dispose();

  const field = (t: number, y: tf.Tensor): tf.Tensor => {
    const xs = tf.tile(tf.reshape(tf.slice(y, [0, 0], [B, D]), [B, ...dataShape]), [copies, ...dataShape.map(() => 1)]);
    const ts = tf.fill([copies * B], t) as tf.Tensor1D;
    const { value, vjv } = valueAndProbe((xx) => rsde.sde(xx, ts).drift, xs, v);
    const dx = tf.reshape(tf.slice(value, [0], [B]), [B, D]);
    // Copies are stacked copy-major, so vjv → [copies, B]; the exact trace sums the D basis terms.
    const per = tf.reshape(vjv, [copies, B]);
    const div = c.divergence === 'exact' ? tf.reshape(tf.sum(per, 0), [B, 1]) : tf.transpose(per);
    return tf.concat([dx, div], 1);
  };

  let solved: Awaited<ReturnType<typeof dopri5>> | undefined;
  try {
    solved = await dopri5(field, y0, eps, sde.T, {
      rtol: opts.rtol ?? 1e-5,
      atol: opts.atol ?? 1e-5,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
  } finally {
    y0.dispose();
    v.dispose();
  }
  const yT = solved.y;
  try {
    const latent = tf.tidy(() => tf.reshape(tf.slice(yT, [0, 0], [B, D]), x.shape));
    const prior = sde.priorLogp(latent);
    const priorLogp = Array.from(await prior.data());
    prior.dispose();
    const deltas = tf.slice(yT, [0, D], [B, P]);
    const d = (await deltas.array()) as number[][];
    deltas.dispose();
    const nll: number[] = [];
    const deltaLogp: number[] = [];
    const se: number[] = [];
    for (let b = 0; b < B; b++) {
      const est = d[b].map((dl) => -(priorLogp[b] + dl));
      const mean = est.reduce((s, e) => s + e, 0) / P;
      nll.push(mean);
      deltaLogp.push(d[b].reduce((s, e) => s + e, 0) / P);
      if (P >= 2) {
        const variance = est.reduce((s, e) => s + (e - mean) * (e - mean), 0) / (P - 1);
        se.push(Math.sqrt(variance / P));
      }
    }
    const scale = 1 / (D * Math.LN2);
    const result: LikelihoodResult = {
      nll,
      bpd: nll.map((n) => n * scale + c.offset),
      bpdOffset: c.offset,
      priorLogp,
      deltaLogp,
      dim: D,
      nfe: solved.nfe,
      steps: solved.steps,
      rejected: solved.rejected,
    };
    if (P >= 2) {
      result.nllStdErr = se;
      result.bpdStdErr = se.map((s) => s * scale);
    }
    if (opts.returnLatent) result.latent = latent;
    else latent.dispose();
    return result;
  } finally {
    yT.dispose();
  }
}
