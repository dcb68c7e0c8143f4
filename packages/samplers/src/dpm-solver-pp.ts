import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber, describeValue, yieldToEventLoop } from '@sbm/core';
import { dataMultistepWeights } from './dpm-solver';
import { GRID, optionKeys } from './options';
import { runGrid, setupGridSampler, type GridModel, type GridSamplerOptions, type TimePoint } from './solver';
import type { SampleResult, SdeSamplerOptions } from './types';

/*
 * The DPM-Solver family beyond the deterministic multistep solver of dpm-solver.ts: DPM-Solver++(2S) ancestral,
 * DPM-Solver++ SDE (2 stages), DPM-Solver++(2M) / (3M) SDE (k-diffusion's sample_dpmpp_*), and DPM-Solver-fast /
 * adaptive (Lu et al. 2022a, in k-diffusion's DPMSolver class). k-diffusion writes them in x̃ = x/α and the EDM level
 * σ̃ = σ/α with its "t" = −ln σ̃, which is our λ = ln(α/σ); here every update is written for x at the SDE's own times
 * with the float64 α(t), σ(t), λ(t) of the grid, so each works under every SDE. Levels that are never evaluated (an
 * ancestral step's σ_down) stay levels: the step lands on the next grid time through x = α x̃, without a time for them.
 */

/** Ancestral split of a step σ̃_from → σ̃_to (k-diffusion get_ancestral_step): σ_up = min(σ̃_to, η σ̃_to √(1 − σ̃_to²/σ̃_from²)), σ_down = √(σ̃_to² − σ_up²). */
export function ancestralStep(from: number, to: number, eta: number): { down: number; up: number } {
  if (eta === 0) return { down: to, up: 0 };
  const up = Math.min(to, eta * Math.sqrt((to * to * (from * from - to * to)) / (from * from)));
  return { down: Math.sqrt(to * to - up * up), up };
}

/** Σ_j c_j · t_j over the terms with c_j ≠ 0 (float64 coefficients, one multiply-add per tensor). */
function lin(terms: [tf.Tensor, number][]): tf.Tensor {
  const used = terms.filter(([, c]) => c !== 0);
  if (used.length === 0) return tf.zerosLike(terms[0][0]);
  const parts = used.map(([t, c]) => (c === 1 ? t : tf.mul(t, c)));
  return parts.length === 1 ? parts[0] : tf.addN(parts);
}

/**
 * The deterministic part of a data-prediction step from point p toward point q with ancestral noise η: with
 * (σ_down, σ_up) = ancestral(σ̃_p, σ̃_q, η) and h = λ(σ_down) − λ_p (λ_q − λ_p when σ_up = 0), the step to level
 * σ_down written at q is α_q [ (σ_down/σ̃_p) x_p/α_p − (e^{−h} − 1) x̂₀ ] = cx x_p + cd x̂₀ (with σ_up = 0, cx = σ_q/σ_p).
 */
function ancestralData(p: TimePoint, q: TimePoint, eta: number): { h: number; up: number; cx: number; cd: number } {
  const { down, up } = ancestralStep(p.sigmaEdm, q.sigmaEdm, eta);
  const h = (up === 0 ? q.lambda : -Math.log(down)) - p.lambda;
  const cx = up === 0 ? q.sigma / p.sigma : (q.alpha * Math.exp(-h)) / p.alpha;
  return { h, up, cx, cd: -q.alpha * Math.expm1(-h) };
}

/** runGrid for the history-free solvers: `step(x, x̂₀(x, t_i), point i, point i + 1)` returns x at t_{i+1}. */
function runSingleStep(
  s: ReturnType<typeof setupGridSampler>,
  init: tf.Tensor | undefined,
  step: (x: tf.Tensor, d: tf.Tensor, p: TimePoint, q: TimePoint) => tf.Tensor,
): Promise<SampleResult> {
  const m = s.model;
  return runGrid(
    s,
    init,
    {},
    (x, i) => {
      const p = m.point(i);
      const q = m.point(i + 1);
      return { x: step(x, m.x0(x, i), p, q) };
    },
    { schedule: s.grid.schedule },
  );
}

function checkEta(value: unknown, fallback: number, max?: number): number {
  return checkNumber(value ?? fallback, 'eta', max === undefined ? { min: 0 } : { min: 0, max });
}
function checkSNoise(value: unknown): number {
  return checkNumber(value ?? 1, 'sNoise', { min: 0 });
}

// ---- DPM-Solver++(2S) ancestral ------------------------------------------------------------------------------------

export interface Dpmpp2sAncestralOptions extends GridSamplerOptions {
  /**
   * Ancestral noise η in [0, 1] (default 1): each step goes deterministically to σ_down and adds σ_up of fresh noise
   * (k-diffusion get_ancestral_step). η = 0 is the deterministic DPM-Solver++(2S), second order. (k-diffusion takes
   * η > 1 too; there the midpoint can fall below the grid's last level, outside some SDEs' time range.)
   */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
}
export const DPMPP_2S_ANCESTRAL_KEYS = optionKeys<Dpmpp2sAncestralOptions>()([...GRID, 'eta', 'sNoise']);

/**
 * DPM-Solver++(2S) with ancestral noise (k-diffusion sample_dpmpp_2s_ancestral; Lu et al. 2022b, Algorithm 1 with
 * r = ½). Per step t_i → t_{i+1}, with (σ_down, σ_up) = ancestral(σ̃_i, σ̃_{i+1}, η), h = ln(σ̃_i/σ_down) and the
 * midpoint s at λ_i + h/2:
 *   x_s = (σ_s/σ_i) x_i − α_s (e^{−h/2} − 1) x̂₀(x_i, t_i),
 *   x_{i+1} = α_{i+1} [ (σ_down/σ̃_i) x_i/α_i − (e^{−h} − 1) x̂₀(x_s, s) + s_noise σ_up z ].
 * With η = 0, σ_down = σ̃_{i+1} and the first factor is σ_{i+1}/σ_i. NFE = 2 · steps. Default grid logsnr-uniform.
 */
export async function dpmpp2sAncestralSampler(
  opts: Dpmpp2sAncestralOptions,
  name = 'dpmpp-2s-ancestral',
): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, DPMPP_2S_ANCESTRAL_KEYS, { steps: 20, schedule: 'logsnr-uniform' });
  const eta = checkEta(opts.eta, 1, 1);
  const sNoise = checkSNoise(opts.sNoise);
  const m = s.model;
  return runSingleStep(s, opts.init, (x, d, p, q) => {
    const { h, up, cx, cd } = ancestralData(p, q, eta);
    const mid = m.atLambda(p.lambda + h / 2);
    const hm = mid.lambda - p.lambda;
    const xm = lin([
      [x, mid.sigma / p.sigma],
      [d, -mid.alpha * Math.expm1(-hm)],
    ]);
    const d2 = m.x0At(xm, mid);
    const terms: [tf.Tensor, number][] = [
      [x, cx],
      [d2, cd],
    ];
    if (up > 0 && sNoise > 0) terms.push([m.noise(x), q.alpha * up * sNoise]);
    return lin(terms);
  });
}

// ---- DPM-Solver++ SDE (2 stages) ------------------------------------------------------------------------------------

export interface DpmppSdeOptions extends GridSamplerOptions {
  /** Stochasticity η ≥ 0 of both stages (default 1); η = 0 is deterministic DPM-Solver++(2S) with stage point r. */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
  /** Position r ∈ (0, 1) of the intermediate stage in λ (k-diffusion r, default ½). */
  r?: number;
}
export const DPMPP_SDE_KEYS = optionKeys<DpmppSdeOptions>()([...GRID, 'eta', 'sNoise', 'r']);

/**
 * DPM-Solver++ SDE (k-diffusion sample_dpmpp_sde). Per step t_i → t_{i+1}: h = λ_{i+1} − λ_i, the stage s at
 * λ_i + r h, f = 1/(2r); with (d₁, u₁) = ancestral(σ̃_i, σ̃_s, η) and (d₂, u₂) = ancestral(σ̃_i, σ̃_{i+1}, η):
 *   x_s = α_s [ (d₁/σ̃_i) x_i/α_i − (d₁/σ̃_i − 1) x̂₀(x_i, t_i) + s_noise u₁ z₁ ],
 *   x_{i+1} = α_{i+1} [ (d₂/σ̃_i) x_i/α_i − (d₂/σ̃_i − 1) ((1 − f) x̂₀(x_i, t_i) + f x̂₀(x_s, s)) + s_noise u₂ z₂ ].
 * k-diffusion draws z₁, z₂ from a Brownian tree in σ̃: z₁ is W's increment over [σ̃_s, σ̃_i] and z₂ over
 * [σ̃_{i+1}, σ̃_i] ⊃ it, each normalised. Here they come from two N(0, 1) draws a, b of the run's seed stream per step
 * (a at the first stage, b at the second), with the same joint law: z₁ = a, z₂ = (√Δ₁ a + √Δ₂ b)/√(Δ₁ + Δ₂),
 * Δ₁ = σ̃_i − σ̃_s, Δ₂ = σ̃_s − σ̃_{i+1} (increments of disjoint intervals are independent; the steps' intervals are
 * disjoint). No draws when η = 0 or s_noise = 0. NFE = 2 · steps. Default grid logsnr-uniform.
 */
export async function dpmppSdeSampler(opts: DpmppSdeOptions, name = 'dpmpp-sde'): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, DPMPP_SDE_KEYS, { steps: 20, schedule: 'logsnr-uniform' });
  const eta = checkEta(opts.eta, 1);
  const sNoise = checkSNoise(opts.sNoise);
  const r = checkNumber(opts.r ?? 0.5, 'r', { gt: 0, lt: 1 });
  const noisy = eta > 0 && sNoise > 0;
  const f = 1 / (2 * r);
  const m = s.model;
  return runSingleStep(s, opts.init, (x, d, p, q) => {
    const sp = m.atLambda(p.lambda + r * (q.lambda - p.lambda));
    // Stage 1: to σ_down of (σ̃_i → σ̃_s), plus u₁ z₁; evaluated at s.
    const a1 = ancestralData(p, sp, eta);
    const t1: [tf.Tensor, number][] = [
      [x, a1.cx],
      [d, a1.cd],
    ];
    const za = noisy ? m.noise(x) : null;
    if (za) t1.push([za, sp.alpha * a1.up * sNoise]);
    const d2 = m.x0At(lin(t1), sp);
    // Stage 2: to σ_down of (σ̃_i → σ̃_{i+1}) with the combined x̂₀, plus u₂ z₂.
    const a2 = ancestralData(p, q, eta);
    const t2: [tf.Tensor, number][] = [
      [x, a2.cx],
      [d, a2.cd * (1 - f)],
      [d2, a2.cd * f],
    ];
    if (za) {
      const dl1 = p.sigmaEdm - sp.sigmaEdm;
      const dl2 = sp.sigmaEdm - q.sigmaEdm;
      const k = q.alpha * a2.up * sNoise;
      t2.push(
        [za, (k * Math.sqrt(dl1)) / Math.sqrt(dl1 + dl2)],
        [m.noise(x), (k * Math.sqrt(dl2)) / Math.sqrt(dl1 + dl2)],
      );
    }
    return lin(t2);
  });
}

// ---- DPM-Solver++(2M) SDE and (3M) SDE ------------------------------------------------------------------------------

export interface DpmppMultistepSdeOptions extends GridSamplerOptions {
  /** Stochasticity η ≥ 0 (default 1, the SDE-DPM-Solver++ of Lu et al. 2022b); η = 0 gives the deterministic 2M / 3M. */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
  /**
   * Form of the second-order step (k-diffusion solver_type): 'midpoint' (½ φ₁ D₁) or 'heun' (φ₂ D₁). It is every
   * step of dpmpp-2m-sde (default 'midpoint', as k-diffusion) and the warm-up second step of dpmpp-3m-sde (default
   * 'heun', the form k-diffusion's 3M SDE uses).
   */
  solverType?: 'midpoint' | 'heun';
}
export const DPMPP_MSDE_KEYS = optionKeys<DpmppMultistepSdeOptions>()([...GRID, 'eta', 'sNoise', 'solverType']);

/**
 * The multistep SDE solvers (k-diffusion sample_dpmpp_2m_sde / sample_dpmpp_3m_sde; Lu et al. 2022b, SDE-DPM-Solver++
 * with η = 1). With h = λ_{i+1} − λ_i and ĥ = (1 + η) h:
 *   x_{i+1} = (σ_{i+1}/σ_i) e^{−ηh} x_i + α_{i+1} (w₀ m₀ + w₁ m₁ + w₂ m₂) + s_noise σ_{i+1} √(1 − e^{−2ηh}) z,
 * where m_j are the x̂₀ of the last steps and w the multistep weights of `dataMultistepWeights` at ĥ (order 1 on
 * the first step, then up to `maxOrder`). One score call per step: NFE = steps.
 */
function multistepSde(
  opts: DpmppMultistepSdeOptions,
  name: string,
  maxOrder: 2 | 3,
  defaultForm: 'midpoint' | 'heun',
): Promise<SampleResult> {
  const s = setupGridSampler(name, opts, DPMPP_MSDE_KEYS, { steps: 20, schedule: 'logsnr-uniform' });
  const eta = checkEta(opts.eta, 1);
  const sNoise = checkSNoise(opts.sNoise);
  const form = checkChoice(opts.solverType ?? defaultForm, 'solverType', ['midpoint', 'heun'] as const);
  const { alpha, sigma, lambda } = s.grid;
  return runGrid(
    s,
    opts.init,
    { d1: null as tf.Tensor | null, d2: null as tf.Tensor | null },
    (x, k, hist) => {
      const i = k + 1;
      const order = Math.min(maxOrder, k + 1) as 1 | 2 | 3;
      const h = lambda[i] - lambda[i - 1];
      const r0 = order >= 2 ? (lambda[i - 1] - lambda[i - 2]) / h : 1;
      const r1 = order === 3 ? (lambda[i - 2] - lambda[i - 3]) / h : 1;
      const [w0, w1, w2] = dataMultistepWeights((1 + eta) * h, order, r0, r1, form);
      const d0 = s.model.x0(x, k);
      const terms: [tf.Tensor, number][] = [
        [x, (sigma[i] / sigma[i - 1]) * Math.exp(-eta * h)],
        [d0, alpha[i] * w0],
      ];
      if (order >= 2) terms.push([hist.d1!, alpha[i] * w1]);
      if (order === 3) terms.push([hist.d2!, alpha[i] * w2]);
      if (eta > 0 && sNoise > 0) {
        terms.push([s.model.noise(x), sigma[i] * Math.sqrt(-Math.expm1(-2 * eta * h)) * sNoise]);
      }
      return { x: lin(terms), d1: d0, d2: maxOrder === 3 ? hist.d1 : null };
    },
    { schedule: s.grid.schedule },
  );
}

/** DPM-Solver++(2M) SDE (k-diffusion sample_dpmpp_2m_sde; see `multistepSde`), solverType 'midpoint' by default. */
export async function dpmpp2mSdeSampler(opts: DpmppMultistepSdeOptions, name = 'dpmpp-2m-sde'): Promise<SampleResult> {
  return multistepSde(opts, name, 2, 'midpoint');
}
/**
 * DPM-Solver++(3M) SDE (k-diffusion sample_dpmpp_3m_sde; see `multistepSde`): orders 1, 2 ('heun'), then 3. The
 * third-order weights give D2 its Taylor weight (twice k-diffusion's; see `dataMultistepWeights`), so that η = 0 is
 * third order and equals dpmpp-3m.
 */
export async function dpmpp3mSdeSampler(opts: DpmppMultistepSdeOptions, name = 'dpmpp-3m-sde'): Promise<SampleResult> {
  return multistepSde(opts, name, 3, 'heun');
}

// ---- DPM-Solver singlestep steps (noise prediction; Lu et al. 2022a) -----------------------------------------------

/**
 * One DPM-Solver-k step (Lu et al. 2022a, Algorithms 1–2, eqs. 3.7–3.9 with the noise prediction ε̂ = −σ s; k-diffusion
 * DPMSolver.dpm_solver_{1,2,3}_step) from x at grid time p to the level λ_b = λ_p + h, returned as x̃_b = x_b/α_b
 * (λ_b need not be a time: the ancestral variants add noise there first). Stages at λ_p + r₁h (and λ_p + r₂h):
 *   DPM-Solver-1: x̃_b = x/α_p − σ̃_b (e^h − 1) ε₀;
 *   DPM-Solver-2: u₁ = (α₁/α_p) x − σ₁ (e^{r₁h} − 1) ε₀; x̃_b = x/α_p − σ̃_b (e^h − 1) ε₀ − σ̃_b/(2r₁) (e^h − 1)(ε₁ − ε₀);
 *   DPM-Solver-3: u₂ = (α₂/α_p) x − σ₂ (e^{r₂h} − 1) ε₀ − σ₂ (r₂/r₁) ((e^{r₂h} − 1)/(r₂h) − 1)(ε₁ − ε₀),
 *                 x̃_b = x/α_p − σ̃_b (e^h − 1) ε₀ − (σ̃_b/r₂) ((e^h − 1)/h − 1)(ε₂ − ε₀).
 * `stages` are the stage ratios (r₁ = ½ for order 2; r₁ = ⅓, r₂ = ⅔ for order 3). With `low`, also the embedded
 * lower-order solution from the same evaluations (k-diffusion's adaptive pairs: DPM-Solver-1 inside -2, and
 * DPM-Solver-2 with r₁ = ⅓ inside -3).
 */
function dpmSolverStep(
  m: GridModel,
  x: tf.Tensor,
  p: TimePoint,
  h: number,
  order: 1 | 2 | 3,
  e0: tf.Tensor,
  low = false,
): { high: tf.Tensor; low?: tf.Tensor } {
  const sb = Math.exp(-(p.lambda + h)); // σ̃_b = e^{−λ_b}
  const em = Math.expm1(h);
  const base: [tf.Tensor, number][] = [
    [x, 1 / p.alpha],
    [e0, -sb * em],
  ];
  if (order === 1) return { high: lin(base) };
  const r1 = order === 2 ? 0.5 : 1 / 3;
  const s1 = m.atLambda(p.lambda + r1 * h);
  const h1 = s1.lambda - p.lambda;
  const u1 = lin([
    [x, s1.alpha / p.alpha],
    [e0, -s1.sigma * Math.expm1(h1)],
  ]);
  const e1 = m.epsAt(u1, s1);
  const q1 = h1 / h;
  // DPM-Solver-2 at ratio q1: x̃_b = base − σ̃_b/(2 q1) (e^h − 1)(ε₁ − ε₀).
  const c2 = (-sb * em) / (2 * q1);
  const two = lin([...base.slice(0, 1), [e0, -sb * em - c2], [e1, c2]]);
  if (order === 2) return low ? { high: two, low: lin(base) } : { high: two };
  const s2 = m.atLambda(p.lambda + (2 / 3) * h);
  const h2 = s2.lambda - p.lambda;
  const k2 = -s2.sigma * (h2 / h1) * (Math.expm1(h2) / h2 - 1);
  const u2 = lin([
    [x, s2.alpha / p.alpha],
    [e0, -s2.sigma * Math.expm1(h2) - k2],
    [e1, k2],
  ]);
  const e2 = m.epsAt(u2, s2);
  const c3 = (-sb * (em / h - 1)) / (h2 / h);
  const high = lin([...base.slice(0, 1), [e0, -sb * em - c3], [e2, c3]]);
  return low ? { high, low: two } : { high };
}

// ---- DPM-Solver-fast ------------------------------------------------------------------------------------------------

export interface DpmFastOptions extends GridSamplerOptions {
  /**
   * The NFE budget (default 20; Lu et al. 2022a's NFE): K = ⌊NFE/3⌋ + 1 grid intervals with orders 3, …, 3 and then
   * [2, 1] (NFE divisible by 3) or [NFE mod 3]. With an explicit `schedule` list every interval takes order 3
   * (NFE = 3K) and `steps` must be left out or equal 3K.
   */
  steps?: number;
  /** Ancestral noise η ≥ 0 of k-diffusion's dpm_fast (default 0: deterministic). */
  eta?: number;
  /** Multiplier of the added noise (k-diffusion s_noise, default 1). */
  sNoise?: number;
}
export const DPM_FAST_KEYS = optionKeys<DpmFastOptions>()([...GRID, 'eta', 'sNoise']);

/**
 * DPM-Solver-fast (Lu et al. 2022a, §3.4 and Appendix; k-diffusion sample_dpm_fast): singlestep DPM-Solver-3 steps
 * on K intervals, uniform in λ by default (DPM-Solver's 'logSNR' grid for the singlestep solver), the last one or two
 * of lower order so that the score calls add up to the budget. Noise prediction (see `dpmSolverStep`). With η > 0
 * each interval ends at σ_down of (σ̃_i → σ̃_{i+1}) (no lower than the grid's last level, as k-diffusion) and adds
 * s_noise √(σ̃_{i+1}² − σ̃_down²) of fresh noise in x̃.
 */
export async function dpmFastSampler(opts: DpmFastOptions, name = 'dpm-fast'): Promise<SampleResult> {
  const explicit = opts.schedule !== null && typeof opts.schedule === 'object' && !('type' in opts.schedule);
  const nfe = explicit ? undefined : checkNumber(opts.steps ?? 20, 'steps', { integer: true, min: 1 });
  const K = nfe === undefined ? undefined : Math.floor(nfe / 3) + 1;
  const s = setupGridSampler(name, { ...opts, steps: K }, DPM_FAST_KEYS, { steps: K ?? 1, schedule: 'logsnr-uniform' });
  const g = s.grid;
  let orders: (1 | 2 | 3)[];
  if (nfe === undefined) {
    orders = new Array<3>(g.steps).fill(3);
    if (opts.steps !== undefined && opts.steps !== 3 * g.steps) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `steps: ${describeValue(opts.steps)} disagrees with the explicit schedule (${g.steps} intervals of order 3 = ${3 * g.steps} NFE); leave steps out`,
        { argument: 'steps' },
      );
    }
  } else if (nfe % 3 === 0) {
    orders = [...new Array<3>(K! - 2).fill(3), 2, 1].slice(-K!) as (1 | 2 | 3)[];
  } else {
    orders = [...new Array<3>(K! - 1).fill(3), (nfe % 3) as 1 | 2];
  }
  const eta = checkEta(opts.eta, 0);
  const sNoise = checkSNoise(opts.sNoise);
  const m = s.model;
  const lamEnd = g.lambda[g.steps];
  return runGrid(
    s,
    opts.init,
    {},
    (x, i) => {
      const p = m.point(i);
      const q = m.point(i + 1);
      let lamB = q.lambda;
      let su = 0;
      if (eta > 0) {
        const a = ancestralStep(p.sigmaEdm, q.sigmaEdm, eta);
        lamB = Math.min(lamEnd, -Math.log(a.down));
        su = Math.sqrt(Math.max(0, q.sigmaEdm * q.sigmaEdm - Math.exp(-2 * lamB)));
      }
      const { high } = dpmSolverStep(m, x, p, lamB - p.lambda, orders[i], m.eps(x, i));
      const terms: [tf.Tensor, number][] = [[high, q.alpha]];
      if (su > 0 && sNoise > 0) terms.push([m.noise(x), q.alpha * su * sNoise]);
      return { x: lin(terms) };
    },
    { schedule: g.schedule },
  );
}

// ---- DPM-Solver adaptive --------------------------------------------------------------------------------------------

/** The keys of SdeSamplerOptions (no `schedule`: the adaptive solver makes its own steps). */
const LOOP_AND_SDE = [
  'afterStep',
  'seed',
  'signal',
  'onProgress',
  'onTrajectory',
  'trajectoryEvery',
  'yieldEvery',
  'sde',
  'score',
  'shape',
  'steps',
  'eps',
  'init',
] as const;

export interface DpmAdaptiveOptions extends SdeSamplerOptions {
  /** 3 (DPM-Solver-23: order 3 with an embedded order-2 estimate, default) or 2 (DPM-Solver-12). */
  order?: 2 | 3;
  /** Relative tolerance (default 0.05, as k-diffusion), on x̃ = x/α. */
  rtol?: number;
  /** Absolute tolerance (default 0.0078, as k-diffusion), on x̃ = x/α. */
  atol?: number;
  /** First step in λ (default 0.05). */
  hInit?: number;
  /** PID step-size controller coefficients (defaults 0, 1, 0: the integral controller, as k-diffusion). */
  pcoeff?: number;
  icoeff?: number;
  dcoeff?: number;
  /** A step is accepted when the controller's factor is ≥ this (default 0.81). */
  acceptSafety?: number;
  /** Ancestral noise η ≥ 0 (default 0: deterministic). */
  eta?: number;
  /** Multiplier of the added noise (default 1). */
  sNoise?: number;
  /** The most step attempts, accepted and rejected (default 10000); more is an error naming `steps`. */
  steps?: number;
  /** After reaching eps, return x̂₀(x_eps, eps) (+1 NFE; default false). */
  denoiseToZero?: boolean;
}
export const DPM_ADAPTIVE_KEYS = optionKeys<DpmAdaptiveOptions>()([
  ...LOOP_AND_SDE,
  'order',
  'rtol',
  'atol',
  'hInit',
  'pcoeff',
  'icoeff',
  'dcoeff',
  'acceptSafety',
  'eta',
  'sNoise',
  'denoiseToZero',
]);

/**
 * k-diffusion's PIDStepSizeController (after Söderlind 2003): with the inverse errors ε⁻¹ of the last three accepted
 * steps, the factor (ε₀⁻¹)^{b₁} (ε₁⁻¹)^{b₂} (ε₂⁻¹)^{b₃}, b₁ = (p + i + d)/k, b₂ = −(p + 2d)/k, b₃ = d/k, passed through
 * the limiter 1 + atan(f − 1); the step is accepted when the factor is ≥ accept_safety and h is scaled by it.
 */
class PidController {
  private readonly b1: number;
  private readonly b2: number;
  private readonly b3: number;
  private errs: number[] = [];
  constructor(
    public h: number,
    p: number,
    i: number,
    d: number,
    order: number,
    private readonly acceptSafety: number,
  ) {
    this.b1 = (p + i + d) / order;
    this.b2 = -(p + 2 * d) / order;
    this.b3 = d / order;
  }
  propose(error: number): boolean {
    const inv = 1 / (error + 1e-8);
    if (this.errs.length === 0) this.errs = [inv, inv, inv];
    this.errs[0] = inv;
    const f = this.errs[0] ** this.b1 * this.errs[1] ** this.b2 * this.errs[2] ** this.b3;
    const factor = 1 + Math.atan(f - 1);
    const accept = factor >= this.acceptSafety;
    if (accept) {
      this.errs[2] = this.errs[1];
      this.errs[1] = this.errs[0];
    }
    this.h *= factor;
    return accept;
  }
}

/**
 * DPM-Solver-12 / -23 with adaptive steps in λ (Lu et al. 2022a, §3.4 Algorithm 4 with k-diffusion's
 * dpm_solver_adaptive controller). From λ(T) to λ(eps): each attempt takes a step h (to t = min(λ_eps, s + h)),
 * computes the order-k solution and its embedded order-(k−1) one from the same k score calls, and measures
 *   E = ‖(x̃_low − x̃_high) / max(atol, rtol · max(|x̃_low|, |x̃_prev|))‖₂ / √(numel)
 * on x̃ = x/α (k-diffusion's variable, so the tolerances mean the same under every SDE; x̃_prev is the last accepted
 * low solution). The PID controller accepts or rejects and rescales h. The one float per attempt is read back
 * asynchronously (GPU-safe). stats.nfe counts every score call (k per attempt), stats.steps the accepted steps,
 * stats.rejected the others.
 */
export async function dpmAdaptiveSampler(opts: DpmAdaptiveOptions, name = 'dpm-adaptive'): Promise<SampleResult> {
  const s = setupGridSampler(name, { ...opts, steps: 1 }, DPM_ADAPTIVE_KEYS, { steps: 1, schedule: 'logsnr-uniform' });
  s.run.refuseAfterStep();
  const maxAttempts = checkNumber(opts.steps ?? 10000, 'steps', { integer: true, min: 1 });
  const order = opts.order ?? 3;
  if (order !== 2 && order !== 3) {
    throw new SbmError('INVALID_ARGUMENT', `order: expected 2 or 3, got ${describeValue(order)}`, {
      argument: 'order',
    });
  }
  const rtol = checkNumber(opts.rtol ?? 0.05, 'rtol', { min: 0 });
  const atol = checkNumber(opts.atol ?? 0.0078, 'atol', { gt: 0 });
  const hInit = checkNumber(opts.hInit ?? 0.05, 'hInit', { gt: 0 });
  const pcoeff = checkNumber(opts.pcoeff ?? 0, 'pcoeff');
  const icoeff = checkNumber(opts.icoeff ?? 1, 'icoeff');
  const dcoeff = checkNumber(opts.dcoeff ?? 0, 'dcoeff');
  const acceptSafety = checkNumber(opts.acceptSafety ?? 0.81, 'acceptSafety', { gt: 0 });
  const eta = checkEta(opts.eta, 0);
  const sNoise = checkSNoise(opts.sNoise);
  const { run, model: m } = s;
  const start = m.point(0);
  const end = m.point(1);
  const pid = new PidController(hInit, pcoeff, icoeff, dcoeff, eta > 0 ? 1.5 : order, acceptSafety);
  const every = opts.trajectoryEvery ?? 1;
  const yieldEvery = opts.yieldEvery ?? 1;
  if (opts.init !== undefined) await run.checkInit(opts.init);
  let x: tf.Tensor | null = tf.tidy(() => s.initial());
  let prev: tf.Tensor | null = tf.tidy(() => tf.div(x!, start.alpha));
  let cur = start;
  let accepted = 0;
  let rejected = 0;
  let samples: tf.Tensor | undefined;
  try {
    while (cur.lambda < end.lambda - 1e-5) {
      run.checkAbort();
      if (accepted + rejected >= maxAttempts) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `steps: ${name} did not reach eps in ${maxAttempts} step attempts (at t = ${cur.t}, step ${pid.h} in λ); raise steps or loosen rtol / atol`,
          { argument: 'steps' },
        );
      }
      const lamT = Math.min(end.lambda, cur.lambda + pid.h);
      const tp = lamT === end.lambda ? end : m.atLambda(lamT);
      let lamB = tp.lambda;
      let su = 0;
      if (eta > 0) {
        const a = ancestralStep(cur.sigmaEdm, tp.sigmaEdm, eta);
        lamB = Math.min(end.lambda, -Math.log(a.down));
        su = Math.sqrt(Math.max(0, tp.sigmaEdm * tp.sigmaEdm - Math.exp(-2 * lamB)));
      }
      const xs: tf.Tensor = x!;
      const pv: tf.Tensor = prev!;
      const here = cur;
      const att: { high: tf.Tensor; low: tf.Tensor; err: tf.Tensor } = tf.tidy(() => {
        const { high, low } = dpmSolverStep(m, xs, here, lamB - here.lambda, order, m.epsAt(xs, here), true);
        const delta = tf.maximum(tf.mul(tf.maximum(tf.abs(low!), tf.abs(pv)), rtol), atol);
        const err = tf.sqrt(tf.mean(tf.square(tf.div(tf.sub(low!, high), delta))));
        return { high, low: low!, err };
      });
      let e: number;
      try {
        e = (await att.err.data())[0];
      } finally {
        att.err.dispose();
      }
      if (!Number.isFinite(e)) {
        tf.dispose([att.high, att.low]);
        throw new SbmError(
          'NON_FINITE',
          `${name}: the samples contain NaN or Inf (first seen at t = ${here.t}) (the score function returned non-finite values)`,
          { sampler: name },
        );
      }
      if (!pid.propose(e)) {
        rejected++;
        tf.dispose([att.high, att.low]);
        continue;
      }
      const next = tf.tidy(() =>
        su > 0 && sNoise > 0
          ? lin([
              [att.high, tp.alpha],
              [m.noise(att.high), tp.alpha * su * sNoise],
            ])
          : tf.mul(att.high, tp.alpha),
      );
      tf.dispose([att.high, xs, pv]);
      x = next;
      prev = att.low;
      cur = tp;
      accepted++;
      const last = !(cur.lambda < end.lambda - 1e-5);
      if (opts.onTrajectory && (accepted % every === 0 || last)) {
        await opts.onTrajectory({ step: accepted, t: cur.t, x });
      }
      opts.onProgress?.({
        sampler: name,
        step: accepted,
        steps: 0,
        t: cur.t,
        nfe: run.nfe,
        fraction: (cur.lambda - start.lambda) / (end.lambda - start.lambda),
      });
      if (accepted % yieldEvery === 0) await yieldToEventLoop();
    }
    const xf = x!;
    samples = tf.tidy(() => s.finish(xf));
    if (samples !== xf) xf.dispose();
    x = null;
    prev!.dispose();
    prev = null;
  } catch (e) {
    for (const t of [x, prev, samples]) if (t && !t.isDisposed) t.dispose();
    run.dispose();
    throw e;
  }
  return run.result(samples, { steps: accepted, rejected });
}
