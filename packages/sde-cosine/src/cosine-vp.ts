import * as tf from '@tensorflow/tfjs';
import { broadcastBatch, checkNumber } from '@sbm/core';
import {
  SDE_N,
  ScheduleSde,
  checkSdeOptions,
  numberMath,
  registerSde,
  tensorMath,
  type DiscreteCoefficients,
  type Schedule,
  type ScheduleMath,
  type SdeConfig,
} from '@sbm/sde';
import { name as pkgName, version as pkgVersion } from '../package.json';

export interface CosineVpSdeOptions {
  /** Offset s of the schedule (Nichol & Dhariwal 2021 use 0.008, so that β is not tiny near t = 0). */
  s?: number;
  /**
   * End time T = t_max < 1 of the process, in schedule time (where ᾱ(1) = 0). Default 0.9946, as DPM-Solver
   * (Lu et al. 2022) uses for this schedule: there α ≈ 0.0084 and β ≈ 370; at t = 1 β would be infinite.
   */
  tMax?: number;
  /** Steps of the discrete chain (discretize, corrector step scale). Default 1000. */
  N?: number;
}

/** Largest per-step β of the discrete chain (Nichol & Dhariwal 2021, §3.2: "clip β_t to be no larger than 0.999"). */
export const MAX_DISCRETE_BETA = 0.999;

/**
 * The cosine VP schedule of Nichol & Dhariwal (2021, eq. 17) as a VP SDE dx = −½ β(t) x dt + √β(t) dw:
 *   ᾱ(t) = cos²(φ(t)) / cos²(φ(0)),  φ(t) = (t + s)/(1 + s) · π/2,
 * α = √ᾱ, σ = √(1 − ᾱ), β(t) = −d ln ᾱ/dt = 2 φ' tan φ(t) with φ' = π/(2(1 + s)).
 *
 * β is left unclipped in continuous time (so α, σ and β stay exactly consistent: dσ²/dt = 2fσ² + g²); instead the
 * process stops at t_max < 1. Only the discrete chain clips its per-step β at 0.999, as the paper does.
 */
export class CosineVpSde extends ScheduleSde {
  readonly name = 'cosine-vp';
  readonly s: number;
  readonly samplingEps = 1e-3;
  readonly priorStd = 1;
  private readonly phiRate: number;
  private readonly phi0: number;
  private readonly cosPhi0: number;

  constructor(opts: CosineVpSdeOptions = {}) {
    super(checkNumber(opts.tMax ?? 0.9946, 'tMax', { gt: 0, lt: 1 }), opts.N ?? 1000);
    this.s = checkNumber(opts.s ?? 0.008, 's', { gt: 0 });
    this.phiRate = Math.PI / (2 * (1 + this.s));
    this.phi0 = this.s * this.phiRate;
    this.cosPhi0 = Math.cos(this.phi0);
  }

  /** t_max (the end time T). */
  get tMax(): number {
    return this.T;
  }

  /** β(t) = 2 φ' tan φ(t), written once for numbers and tensors. */
  private betaIn<V>(t: V, M: ScheduleMath<V>): V {
    return M.mul(M.tan(M.mul(M.add(t, this.s), this.phiRate)), 2 * this.phiRate);
  }

  /**
   * The schedule, written once; both the float64 and the tensor forms (and so every sampler) come from it. f and g
   * are given in closed form (f = −½β, g = √β) rather than differentiated, which the conformance suite checks.
   */
  protected schedule(): Schedule {
    const { s, phiRate, cosPhi0 } = this;
    return {
      alpha: (t, M) => M.div(M.cos(M.mul(M.add(t, s), phiRate)), cosPhi0),
      // 1 − ᾱ = (cos² φ₀ − cos² φ)/cos² φ₀ = sin(φ − φ₀) sin(φ + φ₀)/cos² φ₀, with φ − φ₀ = t φ' and
      // φ + φ₀ = (t + 2s) φ' formed directly: no cancellation near t = 0, so σ keeps full float32 relative accuracy.
      // Both sines are ≥ 0 on [0, T] ⊂ [0, 1), so the square root needs no clamp.
      std: (t, M) => M.div(M.sqrt(M.mul(M.sin(M.mul(t, phiRate)), M.sin(M.mul(M.add(t, 2 * s), phiRate)))), cosPhi0),
      drift: (t, M) => M.mul(this.betaIn(t, M), -0.5),
      diffusion: (t, M) => M.sqrt(this.betaIn(t, M)),
    };
  }

  /** β(t) = 2 φ' tan φ(t). */
  beta(t: number): number {
    return this.betaIn(t, numberMath);
  }
  betaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => this.betaIn<tf.Tensor>(t, tensorMath) as tf.Tensor1D);
  }

  /** Closed form: ᾱ = sigmoid(2λ), so cos φ = cos φ₀ √ᾱ and t = φ/φ' − s (clamped to [0, T]). */
  override tFromLambda(lambda: number): number {
    this.checkLambdaArg(lambda);
    // √sigmoid(2λ) without overflow for large |λ|
    const sqrtAbar =
      lambda >= 0 ? 1 / Math.sqrt(1 + Math.exp(-2 * lambda)) : Math.exp(lambda) / Math.sqrt(1 + Math.exp(2 * lambda));
    const t = Math.acos(Math.min(1, this.cosPhi0 * sqrtAbar)) / this.phiRate - this.s;
    return Math.min(this.T, Math.max(0, t));
  }
  /** σ_EDM = σ/α = e^{−λ} for a VP SDE. */
  override tFromEdmSigma(sigma: number): number {
    this.checkEdmSigmaArg(sigma);
    return this.tFromLambda(-Math.log(sigma));
  }

  /** β_i of the discrete chain on the grid t_i = i T/N: 1 − ᾱ(t_{i+1})/ᾱ(t_i), clipped at 0.999. */
  discreteBeta(i: number): number {
    const r = this.alpha(((i + 1) * this.T) / this.N) / this.alpha((i * this.T) / this.N);
    return Math.min(MAX_DISCRETE_BETA, 1 - r * r);
  }
  discreteBetaT(i: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const dt = this.T / this.N;
      const r = tf.div(this.alphaT(tf.mul(tf.add(i, 1), dt) as tf.Tensor1D), this.alphaT(tf.mul(i, dt) as tf.Tensor1D));
      return tf.minimum(tf.sub(1, tf.square(r)), MAX_DISCRETE_BETA);
    }) as tf.Tensor1D;
  }

  /** DDPM-form chain x_{i+1} = √(1 − β_i) x_i + √β_i z with the clipped cosine β_i (index i = ⌊t (N − 1)/T⌋). */
  override discretize(x: tf.Tensor, t: tf.Tensor1D): DiscreteCoefficients {
    this.checkXt(x, t);
    return tf.tidy(() => {
      const beta = this.discreteBetaT(this.timestepT(t));
      const f = tf.mul(tf.sub(tf.sqrt(broadcastBatch(tf.sub(1, beta), x)), 1), x);
      return { f, G: tf.sqrt(beta) as tf.Tensor1D };
    });
  }

  /** Langevin step scale 1 − β_i, as for VP. */
  override correctorAlphaT(t: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => tf.sub(1, this.discreteBetaT(this.timestepT(t)))) as tf.Tensor1D;
  }

  toConfig(): SdeConfig {
    return { name: 'cosine-vp', s: this.s, tMax: this.T, N: this.N };
  }
}

/**
 * Registers the schedule as "cosine-vp" so that `createSde({ name: 'cosine-vp', s?, tMax?, N? })` (and so configs,
 * checkpoints and the CLI) can build it. `override` re-registers over an existing entry.
 */
export function registerCosineVp(opts: { override?: boolean } = {}): void {
  registerSde(
    'cosine-vp',
    (options) =>
      new CosineVpSde(
        checkSdeOptions<CosineVpSdeOptions>('cosine-vp', options, { s: { gt: 0 }, tMax: { gt: 0, lt: 1 }, N: SDE_N }),
      ),
    { override: opts.override, source: `${pkgName}@${pkgVersion}`, description: 'cosine VP (Nichol & Dhariwal 2021)' },
  );
}
