import { SbmError, checkChoice, checkNumber, describeValue } from '@sbm/core';
import type { Sde } from '@sbm/sde';

/** Options of `GaussianMixture#flowMap`. */
export interface FlowMapOptions {
  /** Start time s of the map (default sde.T: the points are prior draws x_T). */
  from?: number;
  /** End time t of the map (default sde.samplingEps). `to > from` runs the flow forwards (data → noise). */
  to?: number;
  /**
   * End at an EDM noise level σ̃ = σ/α instead of a time (not with `to`): the flow runs in x̃ = x/α against σ̃ —
   * the same trajectories — and may go below σ̃(0) down to σ̃ = 0, where k-diffusion / EDM grids end (VE's σ(0) =
   * σ_min > 0). Returns α·x̃ with α = α(t(σ̃)), or α(0) below σ̃(0), as those samplers do.
   */
  toSigma?: number;
  /** Relative tolerance of the float64 adaptive solve (default 1e-10). */
  rtol?: number;
  /** Absolute tolerance of the float64 adaptive solve (default 1e-10). */
  atol?: number;
  /**
   * 'auto' (default): the closed form for a single Gaussian, the adaptive solve otherwise; 'closed-form' (one
   * component only) or 'ode' (the adaptive solve, also for one component, e.g. to check one against the other).
   */
  method?: 'auto' | 'closed-form' | 'ode';
  /** Largest number of accepted + rejected steps per point before the solve gives up (default 100000). */
  maxSteps?: number;
}

/** @internal One mixture component as the flow map needs it: Σ_k = U_k diag(λ_k) U_kᵀ. */
export interface FlowComponent {
  weight: number;
  mean: number[];
  eigValues: number[];
  /** Eigenvectors as columns: eigVectors[i][j] = component i of eigenvector j. */
  eigVectors: number[][];
}

const METHODS = ['auto', 'closed-form', 'ode'] as const;

/** Dormand–Prince 5(4) tableau (Dormand & Prince 1980; Hairer, Nørsett & Wanner, Solving ODEs I, table II.5.2). */
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
/** 5th-order weights minus the embedded 4th-order ones (the local error estimate); the 7th stage is FSAL. */
const E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40];

function invalid(argument: string, expected: string, received: unknown): SbmError {
  return new SbmError('INVALID_ARGUMENT', `flowMap: ${argument}: expected ${expected}, got ${received}`, {
    argument,
    expected,
  });
}

/** Row-major float64 points from a flat array (length n·D) or an array of n rows of length D. */
function readPoints(x: unknown, D: number): Float64Array {
  if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0])) {
    const out = new Float64Array(x.length * D);
    (x as unknown[]).forEach((row, b) => {
      if (!Array.isArray(row) || row.length !== D) {
        throw invalid(`xT[${b}]`, `a row of ${D} numbers`, describeValue(row));
      }
      row.forEach((v, i) => (out[b * D + i] = v as number));
    });
    return checkFinite(out);
  }
  const isArrayLike = Array.isArray(x) || x instanceof Float64Array || x instanceof Float32Array;
  if (!isArrayLike) {
    throw invalid('xT', `a Float64Array or number[] of n·${D} values (row-major n×${D})`, describeValue(x));
  }
  const arr = x as ArrayLike<number>;
  if (arr.length === 0 || arr.length % D !== 0) {
    throw invalid('xT', `a length that is a positive multiple of the dimension ${D}`, `length ${arr.length}`);
  }
  return checkFinite(Float64Array.from(arr));
}

function checkFinite(x: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw invalid(`xT[${i}]`, 'a finite number', describeValue(x[i]));
  }
  return x;
}

function checkSde(sde: unknown): Sde {
  const s = sde as Record<string, unknown> | null;
  const ok =
    s !== null &&
    typeof s === 'object' &&
    typeof s.T === 'number' &&
    ['alpha', 'std', 'driftCoef', 'diffusion'].every((k) => typeof s[k] === 'function');
  if (!ok) throw invalid('sde', 'an Sde (with T and float64 alpha, std, driftCoef, diffusion)', describeValue(sde));
  return sde as Sde;
}

/**
 * The exact probability-flow ODE map of a Gaussian mixture under an affine SDE, in float64: each point x (row of
 * `x`) at time `from` is carried along dx/dt = f(t) x − ½ g(t)² ∇ log p_t(x) to time `to`. Uses only the SDE's
 * float64 scalars f = sde.driftCoef, g = sde.diffusion, α = sde.alpha, σ = sde.std.
 *
 * - One component: p_t = N(α μ, U diag(c_t) Uᵀ) with c_t = α_t² λ + σ_t²; in w = Uᵀ(x − α μ) the ODE reads
 *   dw_j/dt = (f + g²/(2 c_j)) w_j and dc_j/dt = 2 f c_j + g², so w_j ∝ √c_j and the map is closed:
 *   x_t = α_t μ + U diag(√(c_t / c_s)) Uᵀ (x_s − α_s μ).
 * - Several: per point, an adaptive Dormand–Prince 5(4) solve (error per coordinate against atol + rtol·|x|, max
 *   norm, the usual 0.9·err^(−1/5) controller) with the exact score: with y_k = x − α μ_k, w_k = U_kᵀ y_k,
 *   c_k = α² λ_k + σ² and q_k = w_k / c_k, the logits ln π_k − ½(Σ ln c_k + w_k·q_k) give responsibilities r_k
 *   (log-sum-exp) and ∇ log p_t = −Σ_k r_k U_k q_k.
 *
 * Each point is solved on its own, so the map of a subset is the subset of the map.
 */
export function mixtureFlowMap(
  comps: readonly FlowComponent[],
  D: number,
  sdeArg: Sde,
  xArg: Float64Array | number[] | number[][],
  opts: FlowMapOptions = {},
): Float64Array {
  const sde = checkSde(sdeArg);
  if (opts === null || typeof opts !== 'object') throw invalid('options', 'an object', describeValue(opts));
  const from = checkNumber(opts.from ?? sde.T, 'from', { min: 0, max: sde.T });
  const to = checkNumber(opts.to ?? sde.samplingEps, 'to', { min: 0, max: sde.T });
  const rtol = checkNumber(opts.rtol ?? 1e-10, 'rtol', { gt: 0, lt: 1 });
  const atol = checkNumber(opts.atol ?? 1e-10, 'atol', { gt: 0 });
  const maxSteps = checkNumber(opts.maxSteps ?? 100000, 'maxSteps', { integer: true, min: 1 });
  const method = checkChoice(opts.method ?? 'auto', 'method', METHODS);
  if (method === 'closed-form' && comps.length !== 1) {
    throw invalid('method', `"auto" or "ode" for a mixture of ${comps.length} components`, '"closed-form"');
  }
  if (opts.toSigma !== undefined) return flowToSigma(comps, D, sde, xArg, from, opts);
  const x = readPoints(xArg, D);
  if (from === to) return x;
  if (method === 'closed-form' || (method === 'auto' && comps.length === 1)) {
    return closedForm(comps[0], D, sde, x, from, to);
  }
  const field = new MixtureField(comps, D, sde);
  const n = x.length / D;
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    const y = x.subarray(b * D, (b + 1) * D);
    out.set(dopri5(field, y, from, to, rtol, atol, maxSteps, b), b * D);
  }
  return out;
}

/**
 * The map to an EDM level: in x̃ = x/α with time σ̃ the probability-flow ODE is dx̃/dσ̃ = −σ̃ ∇ log p̃_σ̃(x̃), p̃_σ̃ =
 * p_0 ∗ N(0, σ̃² I) (Karras et al. 2022, eq. 4 with s = 1) — the flow of a VE SDE with α = 1, σ(s) = s, f = 0, g² = 2s.
 */
function flowToSigma(
  comps: readonly FlowComponent[],
  D: number,
  sde: Sde,
  xArg: Float64Array | number[] | number[][],
  from: number,
  opts: FlowMapOptions,
): Float64Array {
  if (opts.to !== undefined) throw invalid('toSigma', 'to or toSigma, not both', `to = ${describeValue(opts.to)}`);
  const sigmaFrom = sde.std(from) / sde.alpha(from);
  const sigmaTop = sde.std(sde.T) / sde.alpha(sde.T);
  const toSigma = checkNumber(opts.toSigma, 'toSigma', { min: 0, max: sigmaTop });
  const sigma0 = sde.std(0) / sde.alpha(0);
  let alphaEnd = sde.alpha(0);
  if (toSigma > sigma0) {
    const inv = (sde as unknown as { tFromEdmSigma?: (s: number) => number }).tFromEdmSigma;
    if (typeof inv !== 'function') throw invalid('sde', 'an Sde with tFromEdmSigma (for toSigma)', 'none');
    alphaEnd = sde.alpha(inv.call(sde, toSigma));
  }
  const levels = {
    T: Math.max(sigmaTop, sigmaFrom),
    samplingEps: 0,
    alpha: () => 1,
    std: (s: number) => s,
    driftCoef: () => 0,
    diffusion: (s: number) => Math.sqrt(2 * s),
  } as unknown as Sde;
  const x = readPoints(xArg, D);
  const a = sde.alpha(from);
  for (let i = 0; i < x.length; i++) x[i] /= a;
  const out = mixtureFlowMap(comps, D, levels, x, { ...opts, toSigma: undefined, from: sigmaFrom, to: toSigma });
  for (let i = 0; i < out.length; i++) out[i] *= alphaEnd;
  return out;
}

function closedForm(c: FlowComponent, D: number, sde: Sde, x: Float64Array, s: number, t: number): Float64Array {
  const as = sde.alpha(s);
  const at = sde.alpha(t);
  const vs = sde.std(s) ** 2;
  const vt = sde.std(t) ** 2;
  const ratio = c.eigValues.map((l) => Math.sqrt((at * at * l + vt) / (as * as * l + vs)));
  const U = c.eigVectors;
  const n = x.length / D;
  const out = new Float64Array(x.length);
  const w = new Float64Array(D);
  for (let b = 0; b < n; b++) {
    const o = b * D;
    for (let j = 0; j < D; j++) {
      let s2 = 0;
      for (let i = 0; i < D; i++) s2 += U[i][j] * (x[o + i] - as * c.mean[i]);
      w[j] = s2 * ratio[j];
    }
    for (let i = 0; i < D; i++) {
      let s2 = at * c.mean[i];
      for (let j = 0; j < D; j++) s2 += U[i][j] * w[j];
      out[o + i] = s2;
    }
  }
  return out;
}

/** The probability-flow velocity of the mixture, v(t, x) = f x − ½ g² ∇ log p_t(x), in float64. */
class MixtureField {
  private readonly K: number;
  private readonly logW: Float64Array;
  private readonly mu: Float64Array; // [K, D]
  private readonly lam: Float64Array; // [K, D]
  private readonly U: Float64Array; // [K, D, D] row-major: U[k][i][j]
  private readonly c: Float64Array;
  private readonly q: Float64Array;
  private readonly logits: Float64Array;
  private readonly y: Float64Array;

  constructor(
    comps: readonly FlowComponent[],
    private readonly D: number,
    private readonly sde: Sde,
  ) {
    const K = (this.K = comps.length);
    this.logW = Float64Array.from(comps, (c) => Math.log(c.weight));
    this.mu = new Float64Array(K * D);
    this.lam = new Float64Array(K * D);
    this.U = new Float64Array(K * D * D);
    comps.forEach((c, k) => {
      for (let i = 0; i < D; i++) {
        this.mu[k * D + i] = c.mean[i];
        this.lam[k * D + i] = c.eigValues[i];
        for (let j = 0; j < D; j++) this.U[(k * D + i) * D + j] = c.eigVectors[i][j];
      }
    });
    this.c = new Float64Array(K * D);
    this.q = new Float64Array(K * D);
    this.logits = new Float64Array(K);
    this.y = new Float64Array(D);
  }

  /** Writes v(t, x) into `out`. */
  eval(t: number, x: Float64Array, out: Float64Array): void {
    const { D, K, mu, lam, U, c, q, logits, y } = this;
    const a = this.sde.alpha(t);
    const v = this.sde.std(t) ** 2;
    const f = this.sde.driftCoef(t);
    const g2 = this.sde.diffusion(t) ** 2;
    let maxLogit = -Infinity;
    for (let k = 0; k < K; k++) {
      const o = k * D;
      for (let i = 0; i < D; i++) y[i] = x[i] - a * mu[o + i];
      let logdet = 0;
      let maha = 0;
      for (let j = 0; j < D; j++) {
        let w = 0;
        for (let i = 0; i < D; i++) w += U[(o + i) * D + j] * y[i];
        const cj = a * a * lam[o + j] + v;
        c[o + j] = cj;
        q[o + j] = w / cj;
        logdet += Math.log(cj);
        maha += w * q[o + j];
      }
      logits[k] = this.logW[k] - 0.5 * (logdet + maha);
      if (logits[k] > maxLogit) maxLogit = logits[k];
    }
    let z = 0;
    for (let k = 0; k < K; k++) z += logits[k] = Math.exp(logits[k] - maxLogit);
    // v = f x + ½ g² Σ_k r_k U_k q_k  (since ∇ log p_t = −Σ_k r_k U_k q_k)
    for (let i = 0; i < D; i++) out[i] = f * x[i];
    for (let k = 0; k < K; k++) {
      const r = (0.5 * g2 * logits[k]) / z;
      if (r === 0) continue;
      const o = k * D;
      for (let i = 0; i < D; i++) {
        let s = 0;
        const row = (o + i) * D;
        for (let j = 0; j < D; j++) s += U[row + j] * q[o + j];
        out[i] += r * s;
      }
    }
  }
}

/** One point's adaptive Dormand–Prince 5(4) solve from s to t (either direction); returns x(t). */
function dopri5(
  field: MixtureField,
  x0: Float64Array,
  s: number,
  t: number,
  rtol: number,
  atol: number,
  maxSteps: number,
  index: number,
): Float64Array {
  const D = x0.length;
  const dir = t > s ? 1 : -1;
  const span = Math.abs(t - s);
  const k = Array.from({ length: 7 }, () => new Float64Array(D));
  let x = Float64Array.from(x0);
  let xNew = new Float64Array(D);
  const stage = new Float64Array(D);
  field.eval(s, x, k[0]);
  // Initial step: Hairer's heuristic h = 0.01 · ‖x‖ / ‖v‖ (scaled norms), capped by the span.
  let d0 = 0;
  let d1 = 0;
  for (let i = 0; i < D; i++) {
    const sc = atol + rtol * Math.abs(x[i]);
    d0 = Math.max(d0, Math.abs(x[i]) / sc);
    d1 = Math.max(d1, Math.abs(k[0][i]) / sc);
  }
  let h = Math.min(span, d0 < 1e-5 || d1 < 1e-5 ? 1e-6 * span : (0.01 * d0) / d1);
  let time = s;
  let steps = 0;
  while (dir * (t - time) > 0) {
    if (++steps > maxSteps) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `flowMap: point ${index}: no convergence in maxSteps = ${maxSteps} steps (at t = ${time}, step ${h}); raise maxSteps or loosen rtol/atol`,
        { argument: 'maxSteps' },
      );
    }
    const last = h >= Math.abs(t - time) * (1 - 1e-12);
    if (last) h = Math.abs(t - time);
    const hs = dir * h;
    for (let st = 1; st < 7; st++) {
      const a = A[st];
      for (let i = 0; i < D; i++) {
        let acc = x[i];
        for (let m = 0; m < st; m++) if (a[m] !== 0) acc += hs * a[m] * k[m][i];
        stage[i] = acc;
      }
      if (st === 6) xNew.set(stage);
      // c = 1 for stages 6 and 7: on the last step they sit exactly at t.
      field.eval(last && C[st] === 1 ? t : time + hs * C[st], st === 6 ? xNew : stage, k[st]);
    }
    let err = 0;
    for (let i = 0; i < D; i++) {
      let e = 0;
      for (let m = 0; m < 7; m++) e += E[m] * k[m][i];
      const sc = atol + rtol * Math.max(Math.abs(x[i]), Math.abs(xNew[i]));
      err = Math.max(err, Math.abs(hs * e) / sc);
    }
    if (!Number.isFinite(err)) {
      throw new SbmError('NON_FINITE', `flowMap: point ${index}: non-finite velocity at t = ${time}`, {
        argument: 'xT',
      });
    }
    if (err <= 1) {
      time = last ? t : time + hs;
      const tmp = x;
      x = xNew;
      xNew = tmp;
      const k0 = k[0];
      k[0] = k[6];
      k[6] = k0;
    }
    const factor = err === 0 ? 5 : Math.min(5, Math.max(0.2, 0.9 * err ** -0.2));
    h = Math.min(span, h * (err <= 1 ? factor : Math.min(1, factor)));
  }
  return x;
}
