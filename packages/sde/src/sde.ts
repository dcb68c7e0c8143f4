import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  broadcastBatch,
  brand,
  describeValue,
  checkNumber,
  hasBrand,
  checkTensor,
  checkFnOutput,
  perSampleSum,
  randomNormal,
  sampleSize,
  type SeedStream,
} from '@sbm/core';
import type { DiscreteCoefficients, MarginalProb, ScoreFn, SdeCoefficients, SdeConfig } from './types';

/**
 * An SDE dx = f(t)·x dt + g(t) dw with a linear drift, so that its perturbation kernel is affine Gaussian:
 * p_0t(x_t | x_0) = N(α(t) x_0, σ(t)² I) (Song et al. 2021, Appendix B). VE, VP, sub-VP and the tutorial VE are
 * all of this form, and so is any schedule a plugin defines by its coefficient functions.
 *
 * Subclasses give the coefficients as tensor functions of t ([B] → [B]) and as float64 scalar forms (used by
 * samplers that need α, σ at a grid of times). `ScheduleSde` derives both from one schedule; the scalar forms here
 * fall back to a readback of the tensor forms only for legacy tensor-only subclasses.
 */
export abstract class Sde {
  /** Registry name, e.g. 've'. */
  abstract readonly name: string;
  /** End time T of the forward process. */
  readonly T: number;
  /** Number of discretization steps (SMLD / DDPM grids; default sampler steps). */
  readonly N: number;

  constructor(T: number, N: number) {
    this.T = checkNumber(T, 'T', { gt: 0 });
    this.N = checkNumber(N, 'N', { integer: true, min: 1 });
    // The float64 forms refuse NaN and t outside [0, T] (they would extrapolate silently). Subclasses and plugins
    // override them without calling super, so the check wraps whatever the prototype chain resolves to, per instance.
    for (const m of ['driftCoef', 'diffusion', 'alpha', 'std'] as const) {
      const f = this[m] as (t: number) => number;
      Object.defineProperty(this, m, {
        value: (t: number) => f.call(this, this.checkTime(t)),
        writable: true,
        configurable: true,
      });
    }
  }

  /** A time of the scalar forms: a number in [0, T] (INVALID_ARGUMENT naming `name` otherwise). */
  checkTime(t: unknown, name = 't'): number {
    // T's float32 rounding counts as T: times that went through a float32 tensor may exceed T by one ulp.
    if (typeof t !== 'number' || !(t >= 0 && (t <= this.T || t <= Math.fround(this.T)))) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}: expected a time in [0, ${this.T}] (the "${this.name}" SDE's range), got ${describeValue(t)}`,
        { argument: name, expected: [0, this.T], received: t },
      );
    }
    return t;
  }

  /**
   * Refuses a [B] time tensor holding NaN or values outside [0, T], with one asynchronous readback (GPU-safe). The
   * tensor forms (sde, marginalProb, perturb, discretize, alphaT, ...) read no values back: they run on hot paths,
   * where a synchronous check would stall a GPU and Node WebGPU refuses one. Call this where times come from a user;
   * the samplers pass only grid times, checked as numbers.
   */
  async checkTimes(t: tf.Tensor, name = 't'): Promise<void> {
    checkTensor(t, name, [null]);
    const T = this.T;
    const stats = tf.tidy(() => {
      const ok = tf.logicalAnd(tf.greaterEqual(t, 0), tf.lessEqual(t, T));
      // The first offending value (NaN fails both comparisons), or 0 when none.
      const bad = tf.logicalNot(ok);
      const any = tf.any(bad);
      const first = tf.sum(tf.where(tf.equal(tf.cumsum(tf.cast(bad, 'int32')), 1), tf.where(bad, t, 0), 0));
      return tf.stack([tf.cast(any, 'float32'), first]);
    });
    let v: Float32Array | Int32Array | Uint8Array;
    try {
      v = await stats.data();
    } finally {
      stats.dispose();
    }
    if (v[0] !== 0) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}: expected times in [0, ${T}] (the "${this.name}" SDE's range), got ${describeValue(v[1])}`,
        { argument: name, expected: [0, T], received: v[1] },
      );
    }
  }

  /** Smallest time samplers integrate down to by default (score_sde: 1e-5 for VE, 1e-3 for VP/sub-VP). */
  abstract readonly samplingEps: number;

  /** f(t) in f(x, t) = f(t)·x. */
  abstract driftCoefT(t: tf.Tensor1D): tf.Tensor1D;
  /** g(t). */
  abstract diffusionT(t: tf.Tensor1D): tf.Tensor1D;
  /** α(t), the mean scale of p_0t. */
  abstract alphaT(t: tf.Tensor1D): tf.Tensor1D;
  /** σ(t), the std of p_0t. */
  abstract stdT(t: tf.Tensor1D): tf.Tensor1D;
  /** Std of the prior N(0, s² I) that x_T is drawn from. */
  abstract readonly priorStd: number;
  /** The plain-JSON config that recreates this SDE with createSde. */
  abstract toConfig(): SdeConfig;

  // ---- scalar forms -------------------------------------------------------------------------------------------

  /**
   * Fallback for legacy subclasses that give only tensor forms: one synchronous readback per call, which Node WebGPU
   * refuses and which stalls GPU pipelines. Every SDE of sbm has float64 forms (hand-written, or derived from its
   * schedule by ScheduleSde), so none reaches this; a plugin should extend ScheduleSde instead.
   */
  private evalScalar(fn: (t: tf.Tensor1D) => tf.Tensor1D, t: number): number {
    return tf.tidy(() => fn.call(this, tf.tensor1d([t])).dataSync()[0]);
  }
  driftCoef(t: number): number {
    return this.evalScalar(this.driftCoefT, t);
  }
  diffusion(t: number): number {
    return this.evalScalar(this.diffusionT, t);
  }
  alpha(t: number): number {
    return this.evalScalar(this.alphaT, t);
  }
  std(t: number): number {
    return this.evalScalar(this.stdT, t);
  }
  /** Half log-SNR λ(t) = ln(α/σ), the time variable of DPM-Solver (Lu et al. 2022). Decreasing in t. */
  lambda(t: number): number {
    return Math.log(this.alpha(t)) - Math.log(this.std(t));
  }
  /** EDM noise level σ_EDM(t) = σ(t)/α(t) (Karras et al. 2022): x/α is a VE process with this σ. Increasing in t. */
  edmSigma(t: number): number {
    return this.std(t) / this.alpha(t);
  }
  /** Inverse of λ(t) on [0, T] (bisection; subclasses with closed forms override). ±∞ map to 0 and T. */
  tFromLambda(lambda: number): number {
    this.checkLambdaArg(lambda);
    return this.invertMonotone((t) => -this.lambda(t), -lambda);
  }
  /** Inverse of edmSigma(t) on [0, T]; values beyond the range are clamped to 0 or T. */
  tFromEdmSigma(sigma: number): number {
    this.checkEdmSigmaArg(sigma);
    return this.invertMonotone((t) => this.edmSigma(t), sigma);
  }

  /** Validates the argument of tFromLambda (overrides call it too): any number but NaN; ±∞ are the ends. */
  protected checkLambdaArg(lambda: number): void {
    if (typeof lambda !== 'number' || Number.isNaN(lambda)) {
      throw new SbmError('INVALID_ARGUMENT', `lambda: expected a number (half log-SNR), got ${describeValue(lambda)}`, {
        argument: 'lambda',
      });
    }
  }
  /** Validates the argument of tFromEdmSigma: a number ≥ 0 (+∞ is the end T). */
  protected checkEdmSigmaArg(sigma: number): void {
    if (typeof sigma !== 'number' || !(sigma >= 0)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `sigma: expected a number >= 0 (EDM noise level), got ${describeValue(sigma)}`,
        {
          argument: 'sigma',
        },
      );
    }
  }

  /** Solves h(t) = target for increasing h on [0, T] by bisection to float64 precision (clamped to the ends). */
  protected invertMonotone(h: (t: number) => number, target: number): number {
    let lo = 0;
    let hi = this.T;
    const hLo = h(lo);
    const hHi = h(hi);
    if (target <= hLo) return lo;
    if (target >= hHi) return hi;
    for (let i = 0; i < 80 && hi - lo > 1e-15 * this.T; i++) {
      const mid = 0.5 * (lo + hi);
      if (h(mid) < target) lo = mid;
      else hi = mid;
    }
    return 0.5 * (lo + hi);
  }

  // ---- tensor API (score_sde's sde_lib.SDE) -------------------------------------------------------------------

  /** Forward SDE coefficients at (x, t). */
  sde(x: tf.Tensor, t: tf.Tensor1D): SdeCoefficients {
    this.checkXt(x, t);
    return tf.tidy(() => ({
      drift: tf.mul(broadcastBatch(this.driftCoefT(t), x), x),
      diffusion: this.diffusionT(t),
    }));
  }

  /** Mean and std of p_0t(x_t | x_0). */
  marginalProb(x0: tf.Tensor, t: tf.Tensor1D): MarginalProb {
    this.checkXt(x0, t, 'x0');
    return tf.tidy(() => ({ mean: tf.mul(broadcastBatch(this.alphaT(t), x0), x0), std: this.stdT(t) }));
  }

  /** x_t = α x_0 + σ z, with z drawn from `seed`. Returns the noise too (losses need it). */
  perturb(x0: tf.Tensor, t: tf.Tensor1D, seed: number | SeedStream): { xt: tf.Tensor; z: tf.Tensor; std: tf.Tensor1D } {
    this.checkXt(x0, t, 'x0');
    return tf.tidy(() => {
      const z = randomNormal(x0.shape, seed);
      const std = this.stdT(t);
      const xt = tf.add(tf.mul(broadcastBatch(this.alphaT(t), x0), x0), tf.mul(broadcastBatch(std, x0), z));
      return { xt, z, std };
    });
  }

  /** A sample of the prior N(0, priorStd² I). */
  priorSampling(shape: number[], seed: number | SeedStream): tf.Tensor {
    if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new SbmError(
        'INVALID_SHAPE',
        `shape: expected [batch, ...dims] of positive integers, got ${JSON.stringify(shape)}`,
        { argument: 'shape', received: shape },
      );
    }
    return tf.tidy(() => tf.mul(randomNormal(shape, seed), this.priorStd));
  }

  /** log N(z; 0, priorStd² I) per sample: −D/2 ln(2π s²) − ‖z‖²/(2 s²). */
  priorLogp(z: tf.Tensor): tf.Tensor1D {
    checkTensor(z, 'z', undefined, { minRank: 2 });
    const s2 = this.priorStd * this.priorStd;
    const D = sampleSize(z.shape);
    return tf.tidy(() =>
      tf.sub(-0.5 * D * Math.log(2 * Math.PI * s2), tf.div(perSampleSum(tf.square(z)), 2 * s2)),
    ) as tf.Tensor1D;
  }

  /**
   * One step of the discretized forward process: x_{i+1} = x_i + f + G z. Default is Euler–Maruyama with Δt = T/N
   * (score_sde's SDE.discretize); VE and VP override with the SMLD / DDPM chains.
   */
  discretize(x: tf.Tensor, t: tf.Tensor1D): DiscreteCoefficients {
    this.checkXt(x, t);
    const dt = this.T / this.N;
    return tf.tidy(() => {
      const { drift, diffusion } = this.sde(x, t);
      return { f: tf.mul(drift, dt), G: tf.mul(diffusion, Math.sqrt(dt)) as tf.Tensor1D };
    });
  }

  /**
   * Step size scale α_i of the Langevin corrector (score_sde sampling.LangevinCorrector): 1 − β_i on the DDPM grid
   * for VP-type SDEs, 1 otherwise.
   */
  correctorAlphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.onesLike(t);
  }

  /** The discrete time index i = ⌊t (N − 1)/T⌋ used by the SMLD / DDPM grids (as score_sde's `.long()`). */
  protected timestepT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.floor(tf.mul(t, (this.N - 1) / this.T)) as tf.Tensor1D;
  }

  /**
   * The reverse-time SDE dx = [f − g² s] dt + g dw̄, or with `probabilityFlow` the ODE dx = [f − ½ g² s] dt
   * (Song et al. 2021, eqs. 6 and 13).
   */
  reverse(score: ScoreFn, opts: { probabilityFlow?: boolean } = {}): ReverseSde {
    if (typeof score !== 'function') {
      throw new SbmError('INVALID_ARGUMENT', `score: expected a function (x, t) => tensor, got ${typeof score}`);
    }
    return new ReverseSde(this, score, opts.probabilityFlow ?? false);
  }

  /** Validates a batch x and its time vector t. */
  checkXt(x: tf.Tensor, t: tf.Tensor1D, xName = 'x'): void {
    checkTensor(x, xName, undefined, { minRank: 2 });
    checkTensor(t, 't', [x.shape[0]]);
  }
}

brand(Sde.prototype, 'sde');

/**
 * Whether `v` is an Sde — also one built by another copy of @sbm/sde (the ESM build next to the CJS one), which
 * `instanceof` would refuse. Use it, not instanceof, to check arguments.
 */
export function isSde(v: unknown): v is Sde {
  return hasBrand(v, 'sde');
}

/** Whether an SDE is of VE type (α ≡ 1: VE, tutorial VE and plugins like them), from its float64 schedule. */
export function isVeType(sde: Sde): boolean {
  return sde.alpha(0) === 1 && sde.alpha(sde.T) === 1;
}

/** The reverse-time SDE of `sde` under the score `score` (score_sde's SDE.reverse). */
export class ReverseSde {
  constructor(
    readonly forward: Sde,
    readonly score: ScoreFn,
    readonly probabilityFlow: boolean,
  ) {}

  get T(): number {
    return this.forward.T;
  }
  get N(): number {
    return this.forward.N;
  }

  /** Calls the score function and checks its output: a live tensor of x's shape (a common plugin mistake). */
  evalScore(x: tf.Tensor, t: tf.Tensor1D): tf.Tensor {
    return checkFnOutput(this.score(x, t), x, 'score');
  }

  /** Drift and diffusion of the reverse SDE (diffusion 0 for the probability flow). */
  sde(x: tf.Tensor, t: tf.Tensor1D, score?: tf.Tensor): SdeCoefficients {
    return tf.tidy(() => {
      const { drift, diffusion } = this.forward.sde(x, t);
      const s = score ?? this.evalScore(x, t);
      const g2 = broadcastBatch(tf.square(diffusion), x);
      const w = this.probabilityFlow ? 0.5 : 1;
      return {
        drift: tf.sub(drift, tf.mul(tf.mul(g2, s), w)),
        diffusion: this.probabilityFlow ? (tf.zerosLike(diffusion) as tf.Tensor1D) : diffusion,
      };
    });
  }

  /** Reverse of the discretized chain: f_rev = f − G² s (× ½ for the flow), G_rev = G (0 for the flow). */
  discretize(x: tf.Tensor, t: tf.Tensor1D, score?: tf.Tensor): DiscreteCoefficients {
    return tf.tidy(() => {
      const { f, G } = this.forward.discretize(x, t);
      const s = score ?? this.evalScore(x, t);
      const w = this.probabilityFlow ? 0.5 : 1;
      return {
        f: tf.sub(f, tf.mul(tf.mul(broadcastBatch(tf.square(G), x), s), w)),
        G: this.probabilityFlow ? (tf.zerosLike(G) as tf.Tensor1D) : G,
      };
    });
  }
}
