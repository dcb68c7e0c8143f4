import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import {
  SDE_N,
  SDE_T,
  ScheduleSde,
  checkSdeOptions,
  createSde,
  registerSde,
  unregisterSde,
  type Schedule,
  type SdeConfig,
} from '@sbm/sde';
import { sdeConformance } from '@sbm/sde/testing';
import { mixture2d } from '@sbm/gaussian-mixture';
import { sample, type SampleOptions } from '@sbm/samplers';
import { sampleCovariance, sampleMean } from '@sbm/metrics';
import { describeWithBackends } from '@sbm/test-harness';

// The README's plugin tutorial, verbatim: an Ornstein–Uhlenbeck SDE dx = −θ x dt + s dw written once from its
// schedule, α = e^{−θt}, σ² = s²(1 − e^{−2θt})/(2θ); f and g follow from the kit's dual numbers.

interface OuSdeOptions {
  theta?: number;
  s?: number;
  N?: number;
  T?: number;
}

class OuSde extends ScheduleSde {
  readonly name = 'ou';
  readonly samplingEps = 1e-3;
  readonly theta: number;
  readonly s: number;

  constructor(opts: OuSdeOptions = {}) {
    super(opts.T ?? 1, opts.N ?? 1000);
    this.theta = opts.theta ?? 4;
    this.s = opts.s ?? Math.sqrt(8);
  }

  /** The stationary law N(0, s²/(2θ)), which p_T approaches as e^{−2θT}. */
  get priorStd(): number {
    return this.s / Math.sqrt(2 * this.theta);
  }

  protected schedule(): Schedule {
    const { theta, s } = this;
    return {
      logAlpha: (t, M) => M.mul(t, -theta),
      // s²(1 − e^{−2θt})/(2θ) through expm1: full precision near t = 0
      variance: (t, M) => M.mul(M.expm1(M.mul(t, -2 * theta)), (-s * s) / (2 * theta)),
    };
  }

  toConfig(): SdeConfig {
    return { name: 'ou', theta: this.theta, s: this.s, N: this.N, T: this.T };
  }
}

function registerOu(opts: { override?: boolean } = {}): void {
  registerSde(
    'ou',
    (o) => new OuSde(checkSdeOptions<OuSdeOptions>('ou', o, { theta: { gt: 0 }, s: { gt: 0 }, N: SDE_N, T: SDE_T })),
    { ...opts, source: 'sbm-sde-ou@0.1.0', description: 'Ornstein–Uhlenbeck, dx = −θ x dt + s dw' },
  );
}

registerOu();
afterAll(() => {
  unregisterSde('ou');
});

describe('OU plugin: conformance', () => {
  for (const c of sdeConformance(() => new OuSde())) it(c.name, c.run);
  for (const c of sdeConformance(() => new OuSde({ theta: 1.5, s: 0.7, T: 3, N: 300 }), { label: 'ou θ 1.5' }))
    it(c.name, c.run);
});

describe('OU plugin: derived coefficients are exact', () => {
  it('f = −θ and g = s from α and σ² alone (float64, to rounding)', () => {
    const sde = new OuSde({ theta: 1.5, s: 0.7 });
    for (const t of [0, 1e-6, 0.1, 0.5, 1]) {
      expect(sde.driftCoef(t)).toBe(-1.5);
      // g² = dσ²/dt − 2fσ² = s² e^{−2θt} + s²(1 − e^{−2θt}): two positive terms, a few ulps of s²
      expect(Math.abs(sde.diffusion(t) - 0.7)).toBeLessThan(8 * 2 ** -52);
    }
  });
  it('createSde builds it from JSON, with a did-you-mean for a misspelt option', () => {
    const sde = createSde({ name: 'ou', theta: 2, N: 100 });
    expect(sde).toBeInstanceOf(OuSde);
    expect(sde.toConfig()).toEqual({ name: 'ou', theta: 2, s: Math.sqrt(8), N: 100, T: 1 });
    expect(() => createSde({ name: 'ou', thetta: 2 })).toThrow(
      /sde\.thetta: not an option of the "ou" SDE \(expected one of theta, s, N, T\); did you mean "theta"\?/,
    );
    expect(() => createSde({ name: 'ou', theta: -1 })).toThrow(/theta: expected a finite number > 0, got -1/);
    expect(() => createSde({ name: 'uo' })).toThrow(/sde\.name: expected one of .*"ou".* \(did you mean "ou"\?\)/);
  });
});

// Oracle: the exact perturbed score of the 2-D five-component mixture under the OU SDE drives PC, the probability-flow
// ODE and DPM-Solver; the samples' moments are judged against the mixture's closed form at 4 standard errors derived
// from n (as packages/samplers/test/oracle.test.ts does). With θ = 4, T = 1 the prior misses p_T by α(T)² Cov[x_0]
// ≈ e^{−8}·3 ≈ 1e-3 in variance, against a standard error of ≈ 0.04 at n = 1000.
const n = 1000;
const mix = mixture2d();
const trueMean = mix.mean();
const trueCov = mix.covariance();

function momentZ(x: tf.Tensor): { meanZ: number; covZ: number } {
  const m = sampleMean(x);
  const c = sampleCovariance(x);
  let meanZ = 0;
  let covZ = 0;
  for (let i = 0; i < 2; i++) {
    meanZ = Math.max(meanZ, Math.abs(m[i] - trueMean[i]) / Math.sqrt(trueCov[i][i] / n));
    for (let j = 0; j < 2; j++) {
      // SE of a sample covariance entry under Gaussian fourth moments: √((Σ_ii Σ_jj + Σ_ij²)/n)
      const se = Math.sqrt((trueCov[i][i] * trueCov[j][j] + trueCov[i][j] ** 2) / n);
      covZ = Math.max(covZ, Math.abs(c[i][j] - trueCov[i][j]) / se);
    }
  }
  return { meanZ, covZ };
}

describeWithBackends(
  'OU plugin samples the mixture2d oracle',
  () => {
    const sde = new OuSde();
    const cases: { label: string; opts: Partial<SampleOptions> }[] = [
      { label: 'PC (reverse diffusion + Langevin), 500 steps', opts: { sampler: 'pc', steps: 500 } },
      { label: 'probability-flow ODE (RK45)', opts: { sampler: 'ode' } },
      { label: 'DPM-Solver++(2M), 20 steps', opts: { sampler: 'dpm-solver', steps: 20 } },
    ];
    for (const c of cases) {
      it(`${c.label}: mean and covariance within 4 standard errors`, async () => {
        const before = countTensors();
        const { samples } = await sample({
          ...c.opts,
          sde,
          score: mix.perturbed(sde).scoreFn,
          shape: [n, 2],
          seed: 7,
        } as SampleOptions);
        const { meanZ, covZ } = momentZ(samples);
        samples.dispose();
        console.log(`[ou oracle] ${c.label}: meanZ ${meanZ.toFixed(2)} covZ ${covZ.toFixed(2)}`);
        expect(meanZ).toBeLessThan(4);
        expect(covZ).toBeLessThan(4);
        expect(countTensors()).toBe(before);
      });
    }
  },
  { backends: ['wasm'] },
);
