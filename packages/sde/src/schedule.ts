import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber } from '@sbm/core';
import { Sde } from './sde';
import { dualNumberMath, dualTensorMath, numberMath, tensorMath, type Dual, type Num, type ScheduleMath } from './math';
import type { SdeConfig } from './types';

/** One schedule function of t, written once against the arithmetic M (float64, tensors or dual numbers). */
export type ScheduleFn = <V>(t: V, M: ScheduleMath<V>) => Num<V>;

/**
 * The schedule of a linear-drift SDE dx = f(t) x dt + g(t) dw, whose kernel is p_0t(x_t | x_0) = N(α x_0, σ² I).
 * Give the mean scale as `logAlpha` or `alpha`, and the spread as `variance` (σ²) or `std` (σ): f and g then follow
 * exactly, f = d ln α/dt and g² = dσ²/dt − 2 f σ² (the variance ODE; Särkkä & Solin 2019, eq. 6.2), by dual
 * numbers. Or give `drift` (f) and `diffusion` (g) too, in closed form; the conformance suite (@sbm/sde/testing)
 * checks that they agree with α and σ.
 *
 * Prefer `variance` to `std` where σ(0) = 0 with infinite slope (VP: σ = √(1 − α²)): g² = dσ²/dt − 2fσ² stays
 * finite at t = 0, while 2σσ' would be 0·∞ there.
 */
export interface Schedule {
  logAlpha?: ScheduleFn;
  alpha?: ScheduleFn;
  variance?: ScheduleFn;
  std?: ScheduleFn;
  /** f(t) in f(x, t) = f(t)·x. Default d ln α/dt. */
  drift?: ScheduleFn;
  /** g(t). Default √(dσ²/dt − 2 f σ²). */
  diffusion?: ScheduleFn;
}

/** [B] from what a schedule returned (a constant, a scalar tensor or a [B] tensor). */
function toBatch(r: Num<tf.Tensor>, t: tf.Tensor1D): tf.Tensor1D {
  if (typeof r === 'number') return tf.fill(t.shape, r) as tf.Tensor1D;
  if (r.rank === 0) return tf.broadcastTo(r, t.shape) as tf.Tensor1D;
  if (r.rank !== 1 || r.shape[0] !== t.shape[0]) {
    throw new SbmError(
      'INVALID_SHAPE',
      `schedule: expected a schedule function to return shape [${t.shape[0]}] for t of that shape, got [${r.shape.join(', ')}]`,
      { argument: 'schedule', expected: t.shape, received: r.shape },
    );
  }
  return r as tf.Tensor1D;
}

const sqrtRelu = (r: Num<tf.Tensor>): Num<tf.Tensor> =>
  typeof r === 'number' ? Math.sqrt(Math.max(0, r)) : tf.sqrt(tf.relu(r));

function toNumber(r: Num<number>, what: string): number {
  if (typeof r !== 'number') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `schedule.${what}: expected a number in float64 evaluation, got ${typeof r}`,
    );
  }
  return r;
}

/**
 * An SDE written once from its schedule (α, σ, optionally f, g): the tensor forms (alphaT, stdT, driftCoefT,
 * diffusionT) and the float64 forms (alpha, std, driftCoef, diffusion) are both derived from that one definition.
 * A subclass may still override any form with a hand-written one for speed; the conformance suite checks they agree.
 *
 * ```ts
 * class OuSde extends ScheduleSde {
 *   protected schedule(): Schedule {
 *     const { theta, s } = this;
 *     return {
 *       logAlpha: (t, M) => M.mul(t, -theta),
 *       variance: (t, M) => M.mul(M.expm1(M.mul(t, -2 * theta)), (-s * s) / (2 * theta)),
 *     };
 *   }
 *   ...
 * }
 * ```
 */
export abstract class ScheduleSde extends Sde {
  /** The schedule; called once, on first use (so it may read fields the subclass constructor set). */
  protected abstract schedule(): Schedule;

  private resolved?: Schedule;

  private sched(): Schedule {
    if (this.resolved) return this.resolved;
    const s = this.schedule();
    const name = `${this.constructor.name || 'ScheduleSde'}.schedule()`;
    if (s === null || typeof s !== 'object') {
      throw new SbmError('INVALID_ARGUMENT', `${name}: expected an object { logAlpha | alpha, variance | std }`);
    }
    const pairs: [keyof Schedule, keyof Schedule][] = [
      ['logAlpha', 'alpha'],
      ['variance', 'std'],
    ];
    for (const [a, b] of pairs) {
      if ((s[a] === undefined) === (s[b] === undefined)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `${name}: expected exactly one of ${a}, ${b}, got ${s[a] === undefined ? 'neither' : 'both'}`,
          { argument: `schedule.${a}` },
        );
      }
    }
    for (const [k, v] of Object.entries(s)) {
      if (v !== undefined && typeof v !== 'function') {
        throw new SbmError('INVALID_ARGUMENT', `${name}: ${k}: expected a function (t, M) => value, got ${typeof v}`, {
          argument: `schedule.${k}`,
        });
      }
    }
    this.resolved = s;
    return s;
  }

  // ---- one definition, any arithmetic ----------------------------------------------------------------------------

  private alphaIn<V>(t: V, M: ScheduleMath<V>): Num<V> {
    const s = this.sched();
    return s.alpha ? s.alpha(t, M) : M.exp(s.logAlpha!(t, M));
  }
  private varianceIn<V>(t: V, M: ScheduleMath<V>): Num<V> {
    const s = this.sched();
    return s.variance ? s.variance(t, M) : M.square(s.std!(t, M));
  }
  private stdIn<V>(t: V, M: ScheduleMath<V>): Num<V> {
    const s = this.sched();
    return s.std ? s.std(t, M) : M.sqrt(s.variance!(t, M));
  }
  /** f = d ln α/dt by forward-mode differentiation (or the closed form given). */
  private driftIn<V>(t: V, M: ScheduleMath<V>, D: ScheduleMath<Dual<V>>): Num<V> {
    const s = this.sched();
    if (s.drift) return s.drift(t, M);
    const td: Dual<V> = { v: t, d: 1 };
    if (s.logAlpha) return asDual(s.logAlpha(td, D)).d;
    const a = asDual(s.alpha!(td, D));
    return a.d === 0 ? 0 : M.div(a.d, a.v);
  }
  /** g² = dσ²/dt − 2 f σ² (or the square of the closed form given). */
  private diffusion2In<V>(t: V, M: ScheduleMath<V>, D: ScheduleMath<Dual<V>>): Num<V> {
    const s = this.sched();
    if (s.diffusion) return M.square(s.diffusion(t, M));
    const v = asDual(this.varianceIn<Dual<V>>({ v: t, d: 1 }, D));
    const f = this.driftIn(t, M, D);
    return f === 0 ? v.d : M.sub(v.d, M.mul(M.mul(f, v.v), 2));
  }

  // ---- tensor forms ----------------------------------------------------------------------------------------------

  alphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => toBatch(this.alphaIn<tf.Tensor>(t, tensorMath), t));
  }
  stdT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const s = this.sched();
      // float32 rounding may leave a variance a hair below 0 where it is 0 in exact arithmetic
      if (s.std) return toBatch(s.std(t, tensorMath), t);
      return toBatch(sqrtRelu(s.variance!(t, tensorMath)), t);
    });
  }
  driftCoefT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => toBatch(this.driftIn<tf.Tensor>(t, tensorMath, dualTensorMath), t));
  }
  diffusionT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const s = this.sched();
      if (s.diffusion) return toBatch(s.diffusion(t, tensorMath), t);
      const g2 = this.diffusion2In<tf.Tensor>(t, tensorMath, dualTensorMath);
      return toBatch(sqrtRelu(g2), t);
    });
  }

  // ---- float64 forms ---------------------------------------------------------------------------------------------

  override alpha(t: number): number {
    return toNumber(this.alphaIn(t, numberMath), 'alpha');
  }
  override std(t: number): number {
    const s = this.sched();
    if (s.std) return toNumber(s.std(t, numberMath), 'std');
    return Math.sqrt(Math.max(0, toNumber(this.varianceIn(t, numberMath), 'variance')));
  }
  override driftCoef(t: number): number {
    return toNumber(this.driftIn(t, numberMath, dualNumberMath), 'drift');
  }
  override diffusion(t: number): number {
    const s = this.sched();
    if (s.diffusion) return toNumber(s.diffusion(t, numberMath), 'diffusion');
    return Math.sqrt(Math.max(0, toNumber(this.diffusion2In(t, numberMath, dualNumberMath), 'diffusion')));
  }
  /** σ(t)² in float64 (the variance of p_0t). */
  variance(t: number): number {
    return toNumber(this.varianceIn(t, numberMath), 'variance');
  }
}

const asDual = <V>(x: Num<Dual<V>>): Dual<V> => (typeof x === 'number' ? { v: x, d: 0 } : x);

/** What `defineSde` needs: a name, the schedule, the prior, and the options that recreate it. */
export interface SdeDefinition extends Schedule {
  /** Registry name (toConfig's `name`). */
  name: string;
  /** End time (default 1). */
  T?: number;
  /** Discretization steps (default 1000). */
  N?: number;
  /** Smallest time samplers integrate down to (default 1e-3). */
  samplingEps?: number;
  /** Std of the prior N(0, priorStd² I) that x_T is drawn from. */
  priorStd: number;
  /** The options that, with `name`, make toConfig()'s plain-JSON config (default { N, T }). */
  config?: Record<string, unknown>;
}

class DefinedSde extends ScheduleSde {
  readonly name: string;
  readonly samplingEps: number;
  readonly priorStd: number;
  private readonly def: SdeDefinition;

  constructor(def: SdeDefinition) {
    super(def.T ?? 1, def.N ?? 1000);
    if (typeof def.name !== 'string' || def.name === '') {
      throw new SbmError('INVALID_ARGUMENT', `defineSde: name: expected a non-empty string, got ${typeof def.name}`);
    }
    this.name = def.name;
    this.samplingEps = checkNumber(def.samplingEps ?? 1e-3, 'samplingEps', { gt: 0, lt: this.T });
    this.priorStd = checkNumber(def.priorStd, 'priorStd', { gt: 0 });
    this.def = def;
  }
  protected schedule(): Schedule {
    const { logAlpha, alpha, variance, std, drift, diffusion } = this.def;
    return { logAlpha, alpha, variance, std, drift, diffusion };
  }
  toConfig(): SdeConfig {
    return { name: this.name, ...(this.def.config ?? { N: this.N, T: this.T }) };
  }
}

/**
 * An SDE from a plain definition, without writing a class: `defineSde({ name: 'ou', priorStd, logAlpha, variance })`.
 * For an SDE with its own methods (a discrete chain, closed-form inverses) extend `ScheduleSde` instead.
 */
export function defineSde(def: SdeDefinition): ScheduleSde {
  if (def === null || typeof def !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `defineSde: expected a definition object, got ${typeof def}`);
  }
  return new DefinedSde(def);
}
