import { SbmError, checkNumber, describeValue, suggestName } from '@sbm/core';
import type { Sde } from '@sbm/sde';

/**
 * Noise schedules: the decreasing grid of times t_0 > t_1 > … > t_N on which a fixed-step sampler evaluates the
 * network. Every schedule is defined on an SDE through its α(t), σ(t), λ(t) = ln(α/σ) and EDM level σ̃(t) = σ/α, so
 * one schedule works for VE, VP, sub-VP, the tutorial SDE and plugins alike:
 *
 * - `karras` (Karras et al. 2022, eq. 5; k-diffusion get_sigmas_karras): σ̃_i = (σ̃_max^{1/ρ} + i/N (σ̃_min^{1/ρ} −
 *   σ̃_max^{1/ρ}))^ρ, ρ = 7;
 * - `exponential` (get_sigmas_exponential): ln σ̃ uniform between σ̃_max and σ̃_min;
 * - `polyexponential` (get_sigmas_polyexponential): ln σ̃_i = ln σ̃_min + (1 − i/N)^ρ (ln σ̃_max − ln σ̃_min), ρ = 1;
 * - `logsnr-uniform` (DPM-Solver's 'logSNR'): λ uniform between λ(T) and λ(eps). Since λ = −ln σ̃ this is the
 *   exponential schedule with its default ends; the two differ only when sigmaMin / sigmaMax are given;
 * - `time-uniform` (DPM-Solver's 'time_uniform', score_sde's grid, k-diffusion get_sigmas_vp for the VP SDE):
 *   t uniform from T to eps;
 * - `time-quadratic` (DPM-Solver's 'time_quadratic'): √t uniform from √T to √eps;
 * - `{ sigmas: [...] }`: explicit EDM levels σ̃ (k-diffusion's `sigmas`; for VE SDEs the marginal std), decreasing,
 *   N + 1 of them; a trailing 0 (as get_sigmas_* append) means a final denoising step x̂₀ (one more NFE);
 * - `{ times: [...] }`: explicit times in (0, T], decreasing.
 *
 * The default ends are σ̃_max = σ̃(T) and σ̃_min = σ̃(eps), i.e. t_0 = T and t_N = eps: a grid spans what the
 * samplers integrate.
 */
export type ScheduleName =
  'karras' | 'exponential' | 'polyexponential' | 'logsnr-uniform' | 'time-uniform' | 'time-quadratic';

export interface ScheduleSpec {
  type: ScheduleName;
  /** Exponent ρ of karras (default 7) and polyexponential (default 1). */
  rho?: number;
  /** Smallest EDM level σ̃ (default σ̃(eps)); sets t_N = t(σ̃_min). */
  sigmaMin?: number;
  /** Largest EDM level σ̃ (default σ̃(T)); sets t_0 = t(σ̃_max). */
  sigmaMax?: number;
}

export type Schedule = ScheduleName | ScheduleSpec | { sigmas: readonly number[] } | { times: readonly number[] };

export const SCHEDULES: readonly ScheduleName[] = [
  'karras',
  'exponential',
  'polyexponential',
  'logsnr-uniform',
  'time-uniform',
  'time-quadratic',
];

/** Other libraries' names for the same schedules (DPM-Solver's skip_type values, underscores). */
const SCHEDULE_ALIASES: Record<string, ScheduleName> = {
  logSNR: 'logsnr-uniform',
  logsnr: 'logsnr-uniform',
  logsnr_uniform: 'logsnr-uniform',
  time_uniform: 'time-uniform',
  time: 'time-uniform',
  uniform: 'time-uniform',
  time_quadratic: 'time-quadratic',
  vp: 'time-uniform',
};

/** A sampler's grid: N + 1 points from t_0 (= T by default) down to t_N (= eps by default), float64 coefficients. */
export interface Grid {
  /** The schedule's canonical name, 'sigmas' or 'times'. */
  schedule: string;
  /** N, the number of intervals. */
  steps: number;
  t: number[];
  alpha: number[];
  /** Marginal std σ(t) of p_0t(x_t | x_0) = N(α x_0, σ² I). */
  sigma: number[];
  /** λ(t) = ln α − ln σ. */
  lambda: number[];
  /** σ̃(t) = σ/α, the EDM / k-diffusion noise level. */
  sigmaEdm: number[];
  /** True when an explicit σ̃ list ended in 0: the sampler ends with x̂₀(x_{t_N}, t_N) (one more NFE). */
  denoiseToZero: boolean;
}

function bad(argument: string, expected: string, received: unknown): SbmError {
  return new SbmError('INVALID_ARGUMENT', `${argument}: expected ${expected}, got ${describeValue(received)}`, {
    argument,
  });
}

/** Resolves a schedule name (or alias) to its canonical name; INVALID_ARGUMENT with a did-you-mean otherwise. */
export function scheduleName(name: unknown, argument = 'schedule'): ScheduleName {
  if (typeof name === 'string') {
    if ((SCHEDULES as readonly string[]).includes(name)) return name as ScheduleName;
    if (Object.prototype.hasOwnProperty.call(SCHEDULE_ALIASES, name)) return SCHEDULE_ALIASES[name];
  }
  const hint =
    typeof name === 'string' ? suggestName(name, [...SCHEDULES, ...Object.keys(SCHEDULE_ALIASES)]) : undefined;
  throw new SbmError(
    'INVALID_ARGUMENT',
    `${argument}: expected one of ${SCHEDULES.join(', ')}, { type, rho?, sigmaMin?, sigmaMax? }, { sigmas: [...] } or { times: [...] }, got ${describeValue(name)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
    { argument, expected: [...SCHEDULES] },
  );
}

function strictlyDecreasing(v: readonly number[]): boolean {
  for (let i = 1; i < v.length; i++) if (!(v[i] < v[i - 1])) return false;
  return true;
}

function finiteList(v: unknown, argument: string, min: number): number[] {
  if (!Array.isArray(v) || v.length < min || !v.every((e) => typeof e === 'number' && Number.isFinite(e))) {
    throw bad(argument, `an array of at least ${min} finite numbers`, v);
  }
  return v as number[];
}

/**
 * The grid of `schedule` with `steps` intervals from T (or σ̃_max) to `eps` (or σ̃_min) under `sde`. Explicit
 * `sigmas` / `times` set the number of steps themselves (`steps` is then ignored unless it disagrees: an error).
 */
export function makeGrid(
  sde: Sde,
  schedule: Schedule | undefined,
  steps: number | undefined,
  eps: number,
  defaultSchedule: ScheduleName = 'logsnr-uniform',
): Grid {
  const spec = schedule ?? defaultSchedule;
  let t: number[];
  let name: string;
  let toZero = false;
  const checkSteps = (n: number, arg: string) => {
    if (steps !== undefined && steps !== n) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `steps: ${steps} disagrees with ${arg} (${n + 1} points = ${n} steps); leave steps out with an explicit schedule`,
        { argument: 'steps' },
      );
    }
  };
  if (spec !== null && typeof spec === 'object' && 'sigmas' in spec) {
    let s = finiteList(spec.sigmas, 'schedule.sigmas', 2);
    if (s[s.length - 1] === 0) {
      toZero = true;
      s = s.slice(0, -1);
    }
    if (s.length < 2 || !strictlyDecreasing(s) || !(s[s.length - 1] > 0)) {
      throw bad(
        'schedule.sigmas',
        'at least 2 positive, strictly decreasing EDM noise levels (optionally then a 0)',
        spec.sigmas,
      );
    }
    checkSteps(s.length - 1, 'schedule.sigmas');
    t = s.map((v) => sde.tFromEdmSigma(v));
    name = 'sigmas';
  } else if (spec !== null && typeof spec === 'object' && 'times' in spec) {
    const ts = finiteList(spec.times, 'schedule.times', 2);
    if (!strictlyDecreasing(ts) || !(ts[ts.length - 1] > 0) || ts[0] > sde.T) {
      throw bad('schedule.times', `strictly decreasing times in (0, T = ${sde.T}]`, spec.times);
    }
    checkSteps(ts.length - 1, 'schedule.times');
    t = [...ts];
    name = 'times';
  } else {
    const o: ScheduleSpec =
      spec !== null && typeof spec === 'object' ? (spec as ScheduleSpec) : { type: scheduleName(spec) };
    if (typeof spec === 'object' && spec !== null) {
      const extra = Object.keys(spec).filter((k) => !['type', 'rho', 'sigmaMin', 'sigmaMax'].includes(k));
      if (extra.length) throw bad(`schedule.${extra[0]}`, 'one of type, rho, sigmaMin, sigmaMax', extra[0]);
    }
    name = scheduleName(o.type, 'schedule.type');
    const n = checkNumber(steps ?? NaN, 'steps', { integer: true, min: 1 });
    const sMaxDefault = sde.edmSigma(sde.T);
    const sMin = checkNumber(o.sigmaMin ?? sde.edmSigma(eps), 'schedule.sigmaMin', { gt: 0 });
    const sMax = checkNumber(o.sigmaMax ?? sMaxDefault, 'schedule.sigmaMax', { gt: sMin });
    const tMax = o.sigmaMax === undefined ? sde.T : sde.tFromEdmSigma(sMax);
    const tMin = o.sigmaMin === undefined ? eps : sde.tFromEdmSigma(sMin);
    const u = Array.from({ length: n + 1 }, (_, i) => i / n);
    const lnMax = Math.log(sMax);
    const lnMin = Math.log(sMin);
    const fromSigmas = (s: number[]) => s.map((v, i) => (i === 0 ? tMax : i === n ? tMin : sde.tFromEdmSigma(v)));
    switch (name) {
      case 'karras': {
        const rho = checkNumber(o.rho ?? 7, 'schedule.rho', { gt: 0 });
        const a = Math.pow(sMax, 1 / rho);
        const b = Math.pow(sMin, 1 / rho);
        t = fromSigmas(u.map((v) => Math.pow(a + v * (b - a), rho)));
        break;
      }
      case 'exponential':
        t = fromSigmas(u.map((v) => Math.exp(lnMax + v * (lnMin - lnMax))));
        break;
      case 'polyexponential': {
        const rho = checkNumber(o.rho ?? 1, 'schedule.rho', { gt: 0 });
        t = fromSigmas(u.map((v) => Math.exp(lnMin + Math.pow(1 - v, rho) * (lnMax - lnMin))));
        break;
      }
      case 'logsnr-uniform': {
        const lT = sde.lambda(tMax);
        const lE = sde.lambda(tMin);
        t = u.map((v, i) => (i === 0 ? tMax : i === n ? tMin : sde.tFromLambda(lT + v * (lE - lT))));
        break;
      }
      case 'time-uniform':
        t = u.map((v, i) => (i === n ? tMin : tMax + v * (tMin - tMax)));
        break;
      default: {
        // time-quadratic
        const a = Math.sqrt(tMax);
        const b = Math.sqrt(tMin);
        t = u.map((v, i) => (i === 0 ? tMax : i === n ? tMin : Math.pow(a + v * (b - a), 2)));
      }
    }
    if (!strictlyDecreasing(t)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `schedule: the ${name} grid of ${n} steps is not strictly decreasing in t under the ${sde.name} SDE (levels too close for float64)`,
        { argument: 'schedule' },
      );
    }
  }
  const alpha = t.map((v) => sde.alpha(v));
  const sigma = t.map((v) => sde.std(v));
  return {
    schedule: name,
    steps: t.length - 1,
    t,
    alpha,
    sigma,
    lambda: t.map((_, i) => Math.log(alpha[i]) - Math.log(sigma[i])),
    sigmaEdm: t.map((_, i) => sigma[i] / alpha[i]),
    denoiseToZero: toZero,
  };
}
