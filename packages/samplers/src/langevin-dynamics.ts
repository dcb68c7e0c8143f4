import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber, describeValue, fillTime, randomNormal } from '@sbm/core';
import type { Sde, ScoreFn } from '@sbm/sde';
import { checkBoolean, checkInitShape, checkScoreFn, checkSdeInstance, checkShape, Sampler } from './loop';
import { ALD_KEYS, LANGEVIN_KEYS } from './options';
import type { LoopOptions, NoiseScoreFn, SampleResult } from './types';

/** Where the score comes from: a noise-conditional s(x, σ), or an SDE score s(x, t) used through σ ↦ t. */
export interface NoiseScoreSource {
  /** s(x, σ) when `sde` is absent; s(x, t) of `sde` when it is given. */
  score: NoiseScoreFn | ScoreFn;
  /**
   * With an SDE-based score, level σ means the VE variable x̃ = x/α at σ_EDM(t) = σ: the score of x̃ is
   * α s(α x̃, t(σ)) with t(σ) = sde.tFromEdmSigma(σ). For VE SDEs (α = 1) that is s(x, t(σ)) — a VE score at
   * σ(t) = σ, as NCSN's noise levels.
   */
  sde?: Sde;
}

/** Builds x ↦ ∇ log p_σ(x) at a fixed σ (called inside tf.tidy). */
function scoreAtLevel(src: NoiseScoreSource, call: (x: tf.Tensor, a: tf.Tensor1D) => tf.Tensor, sigma: number) {
  if (!src.sde) return (x: tf.Tensor) => call(x, fillTime(x.shape[0], sigma));
  const t = src.sde.tFromEdmSigma(sigma);
  const a = src.sde.alpha(t);
  return a === 1
    ? (x: tf.Tensor) => call(x, fillTime(x.shape[0], t))
    : (x: tf.Tensor) => tf.mul(call(tf.mul(x, a), fillTime(x.shape[0], t)), a);
}

function checkSource(src: NoiseScoreSource): void {
  checkScoreFn(src.score);
  checkSdeInstance(src.sde, true);
}

export interface AnnealedLangevinOptions extends LoopOptions, NoiseScoreSource {
  shape: number[];
  /** Noise levels σ_1 > … > σ_L; default a geometric ladder from sigmaMax to sigmaMin with `levels` levels. */
  sigmas?: number[];
  /** Default 1 (NCSN), or σ_EDM(T) of `sde` when given. NCSNv2: about the largest pairwise distance in the data. */
  sigmaMax?: number;
  /** Default 0.01 (NCSN), or σ_EDM(samplingEps) of `sde` when given. */
  sigmaMin?: number;
  /** L (default 10). */
  levels?: number;
  /** T, Langevin steps per level (default 100). */
  stepsPerLevel?: number;
  /** ε of α_i = ε σ_i²/σ_L² (default 2e-5, NCSN). Ignored by stepRule 'ncsnv2'. */
  stepSize?: number;
  /** 'ncsn' (α_i = ε σ_i²/σ_L² with the given ε, default) or 'ncsnv2' (ε from Song & Ermon 2020, Technique 4). */
  stepRule?: 'ncsn' | 'ncsnv2';
  /** Final denoising step x + σ_L² s(x, σ_L) (NCSNv2; +1 NFE). Default: true for 'ncsnv2', false for 'ncsn'. */
  denoise?: boolean;
  /** Starting point (not disposed); default N(0, σ_1² I). */
  init?: tf.Tensor;
}

/** Geometric σ ladder from sigmaMax down to sigmaMin, `levels` values, ends exact. */
export function geometricSigmas(sigmaMax: number, sigmaMin: number, levels: number): number[] {
  checkNumber(sigmaMin, 'sigmaMin', { gt: 0 });
  checkNumber(sigmaMax, 'sigmaMax', { gt: sigmaMin });
  checkNumber(levels, 'levels', { integer: true, min: 2 });
  const out: number[] = [];
  for (let i = 0; i < levels; i++)
    out.push(i === levels - 1 ? sigmaMin : sigmaMax * Math.pow(sigmaMin / sigmaMax, i / (levels - 1)));
  return out;
}

/**
 * NCSNv2's step size (Song & Ermon 2020, Technique 4): the ε that makes, for γ = σ_{i−1}/σ_i and T steps per level,
 *   (1 − ε/σ_L²)^{2T} (γ² − 2ε/(σ_L² − σ_L² (1 − ε/σ_L²)²)) + 2ε/(σ_L² − σ_L² (1 − ε/σ_L²)²) = 1,
 * i.e. the stationary-variance argument that keeps a sample's noise scale matched to each level: "choose T as large
 * as the budget allows, then ε that makes the expression maximally close to 1". The expression exceeds 1 for small and
 * large ε, so we minimise |expr − 1| over log ε ∈ (σ_L² · 1e-12, σ_L²): a log grid, then golden-section refinement.
 */
export function ncsnv2StepSize(sigmas: number[], stepsPerLevel: number): number {
  const L = sigmas.length;
  const sL2 = sigmas[L - 1] ** 2;
  const gamma = sigmas[0] / sigmas[1];
  const dist = (logEps: number) => {
    const e = Math.exp(logEps);
    const q = 1 - e / sL2;
    const c = (2 * e) / (sL2 - sL2 * q * q);
    return Math.abs(Math.pow(q, 2 * stepsPerLevel) * (gamma * gamma - c) + c - 1);
  };
  const lo0 = Math.log(sL2 * 1e-12);
  const hi0 = Math.log(sL2 * (1 - 1e-9));
  const n = 2000;
  let best = 0;
  for (let k = 1; k <= n; k++) if (dist(lo0 + ((hi0 - lo0) * k) / n) < dist(lo0 + ((hi0 - lo0) * best) / n)) best = k;
  let a = lo0 + ((hi0 - lo0) * Math.max(0, best - 1)) / n;
  let b = lo0 + ((hi0 - lo0) * Math.min(n, best + 1)) / n;
  const phi = (Math.sqrt(5) - 1) / 2;
  for (let k = 0; k < 100; k++) {
    const c = b - phi * (b - a);
    const d = a + phi * (b - a);
    if (dist(c) < dist(d)) b = d;
    else a = c;
  }
  return Math.exp((a + b) / 2);
}

/**
 * Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): for each σ_i of a decreasing ladder,
 * α_i = ε σ_i²/σ_L² and T steps of x ← x + (α_i/2) s(x, σ_i) + √α_i z; optionally the NCSNv2 final denoise
 * x + σ_L² s(x, σ_L). NFE = L·T (+1).
 */
export async function annealedLangevin(opts: AnnealedLangevinOptions, name = 'ald'): Promise<SampleResult> {
  const run = new Sampler(name, opts, ALD_KEYS);
  checkSource(opts);
  const shape = checkShape(opts.shape);
  checkInitShape(opts.init, shape);
  const stepRule = checkChoice(opts.stepRule ?? 'ncsn', 'stepRule', ['ncsn', 'ncsnv2'] as const);
  const T = checkNumber(opts.stepsPerLevel ?? 100, 'stepsPerLevel', { integer: true, min: 1 });
  let sigmas: number[];
  if (opts.sigmas !== undefined) {
    if (!Array.isArray(opts.sigmas) || opts.sigmas.length < 2) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `sigmas: expected an array of at least 2 noise levels, got ${describeValue(opts.sigmas)}`,
        {
          argument: 'sigmas',
        },
      );
    }
    opts.sigmas.forEach((s, i) => {
      checkNumber(s, `sigmas[${i}]`, { gt: 0 });
      if (i > 0 && !(s < opts.sigmas![i - 1])) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `sigmas: expected strictly decreasing levels, got ${opts.sigmas![i - 1]} then ${s}`,
          {
            argument: 'sigmas',
          },
        );
      }
    });
    sigmas = [...opts.sigmas];
  } else {
    const sMax = opts.sigmaMax ?? (opts.sde ? opts.sde.edmSigma(opts.sde.T) : 1);
    const sMin = opts.sigmaMin ?? (opts.sde ? opts.sde.edmSigma(opts.sde.samplingEps) : 0.01);
    sigmas = geometricSigmas(sMax, sMin, opts.levels ?? 10);
  }
  const L = sigmas.length;
  const eps =
    stepRule === 'ncsnv2' ? ncsnv2StepSize(sigmas, T) : checkNumber(opts.stepSize ?? 2e-5, 'stepSize', { gt: 0 });
  const denoise = checkBoolean(opts.denoise, 'denoise') ?? stepRule === 'ncsnv2';
  const score = run.score<tf.Tensor1D>(opts.score as NoiseScoreFn);
  const levelScores = sigmas.map((sigma) => scoreAtLevel(opts, score, sigma));
  const stepSizes = sigmas.map((sigma) => (eps * sigma * sigma) / (sigmas[L - 1] * sigmas[L - 1]));
  return run.run<{ x: tf.Tensor }>({
    steps: L * T,
    init: opts.init,
    initial: () => ({ x: opts.init ? tf.clone(opts.init) : tf.mul(randomNormal(shape, run.stream), sigmas[0]) }),
    update: ({ x }, k) => {
      const i = Math.floor(k / T);
      const a = stepSizes[i];
      return {
        x: tf.add(tf.add(x, tf.mul(levelScores[i](x), a / 2)), tf.mul(randomNormal(shape, run.stream), Math.sqrt(a))),
      };
    },
    point: (s, k) => ({ t: sigmas[Math.floor(k / T)], x: s.x }),
    // NCSNv2's final denoise: Tweedie's E[x₀ | x] = x + σ_L² s(x, σ_L) for the VE kernel N(x₀, σ_L² I).
    finish: (s) => (denoise ? tf.add(s.x, tf.mul(levelScores[L - 1](s.x), sigmas[L - 1] ** 2)) : s.x),
  });
}

export interface LangevinOptions extends LoopOptions, NoiseScoreSource {
  shape: number[];
  /** The fixed noise level σ the chain targets (p_σ). */
  sigma: number;
  /** Number of Langevin steps (default 1000). */
  steps?: number;
  /** Fixed step ε; default the ALD rule ε = 2 (snr σ)². */
  stepSize?: number;
  /** snr of the default step rule (default 0.16). */
  snr?: number;
  /** Starting point (not disposed); default N(0, initStd² I). */
  init?: tf.Tensor;
  /** Std of the default starting point (default 1). */
  initStd?: number;
}

/**
 * Langevin dynamics at a fixed noise level (Song & Ermon 2019, eq. 4): x ← x + ε s(x, σ) + √(2ε) z, which samples
 * p_σ as ε → 0 and steps → ∞. Step ε given, or the ALD rule 2 (snr σ)² (score_sde AnnealedLangevinDynamics at one
 * level). NFE = steps.
 */
export async function langevinDynamics(opts: LangevinOptions, name = 'langevin'): Promise<SampleResult> {
  const run = new Sampler(name, opts, LANGEVIN_KEYS);
  checkSource(opts);
  const shape = checkShape(opts.shape);
  checkInitShape(opts.init, shape);
  const sigma = checkNumber(opts.sigma, 'sigma', { gt: 0 });
  const steps = checkNumber(opts.steps ?? 1000, 'steps', { integer: true, min: 1 });
  const snr = checkNumber(opts.snr ?? 0.16, 'snr', { gt: 0 });
  const eps = checkNumber(opts.stepSize ?? 2 * (snr * sigma) ** 2, 'stepSize', { gt: 0 });
  const initStd = checkNumber(opts.initStd ?? 1, 'initStd', { gt: 0 });
  const s = scoreAtLevel(opts, run.score<tf.Tensor1D>(opts.score as NoiseScoreFn), sigma);
  return run.run<{ x: tf.Tensor }>({
    steps,
    init: opts.init,
    initial: () => ({ x: opts.init ? tf.clone(opts.init) : tf.mul(randomNormal(shape, run.stream), initStd) }),
    update: ({ x }) => ({
      x: tf.add(tf.add(x, tf.mul(s(x), eps)), tf.mul(randomNormal(shape, run.stream), Math.sqrt(2 * eps))),
    }),
    point: (st) => ({ t: sigma, x: st.x }),
  });
}
