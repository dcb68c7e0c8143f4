import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeAll, withLeakCheck } from '@sbm/core';
import { Sde, createSde, listSdes } from '@sbm/sde';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';
import { sdeConformance } from '@sbm/sde/testing';
import { CosineVpSde, MAX_DISCRETE_BETA, registerCosineVp } from '@sbm/sde-cosine';

// Independent closed form of Nichol & Dhariwal (2021), eq. 17, in float64.
const S = 0.008;
const abar = (t: number): number =>
  Math.cos(((t + S) / (1 + S)) * (Math.PI / 2)) ** 2 / Math.cos((S / (1 + S)) * (Math.PI / 2)) ** 2;
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('registerCosineVp', () => {
  it('registers "cosine-vp" with the @sbm/sde registry, once', () => {
    registerCosineVp();
    expect(listSdes()).toContain('cosine-vp');
    const sde = createSde({ name: 'cosine-vp', N: 200 });
    expect(sde).toBeInstanceOf(CosineVpSde);
    expect(sde).toBeInstanceOf(Sde);
    expect(sde.toConfig()).toEqual({ name: 'cosine-vp', s: 0.008, tMax: 0.9946, N: 200 });
    expect(createSde(JSON.parse(JSON.stringify(sde.toConfig()))).toConfig()).toEqual(sde.toConfig());
    expectThrowsSbm(() => registerCosineVp(), 'DUPLICATE_NAME', /"cosine-vp" is already registered/);
    registerCosineVp({ override: true });
    expectThrowsSbm(
      () => createSde({ name: 'cosine-vp', beta: 1 }),
      'INVALID_ARGUMENT',
      /sde\.beta: not an option of the "cosine-vp" SDE \(expected one of s, tMax, N\)/,
    );
    expectThrowsSbm(
      () => createSde({ name: 'cosine-vp', tMax: 1 }),
      'INVALID_ARGUMENT',
      /tMax: expected a finite number > 0 < 1, got 1/,
    );
  });
});

// The @sbm/sde conformance suite (variance ODE, tensor vs float64 forms, inverses, prior, reverse / flow, the
// clipped DDPM-form chain, config round trip, leaks), with the default and a steeper schedule.
describe('CosineVpSde: @sbm/sde conformance suite', () => {
  beforeAll(() => registerCosineVp({ override: true }));
  for (const c of sdeConformance(() => new CosineVpSde(), { roundTrip: true })) it(c.name, c.run);
  for (const c of sdeConformance(() => new CosineVpSde({ s: 0.02, tMax: 0.99, N: 200 }), { label: 'cosine-vp s 0.02' }))
    it(c.name, c.run);
});

describe('CosineVpSde: scalar coefficients (float64)', () => {
  const sde = new CosineVpSde();
  it('α = √ᾱ and σ = √(1 − ᾱ) match eq. 17', () => {
    for (const t of [0, 1e-4, 0.01, 0.25, 0.5, 0.9, 0.9946]) {
      expect(rel(sde.alpha(t), Math.sqrt(abar(t)))).toBeLessThan(1e-12);
      if (t === 0) expect(sde.std(0)).toBe(0);
      // 1 − ᾱ loses ~1e-16/(1 − ᾱ) relative accuracy in the reference itself near t = 0
      else expect(rel(sde.std(t), Math.sqrt(1 - abar(t)))).toBeLessThan(1e-15 / (1 - abar(t)) + 1e-12);
    }
    expect(sde.alpha(0)).toBe(1);
    expect(sde.T).toBe(0.9946);
    expect(sde.alpha(sde.T)).toBeCloseTo(0.00842, 4);
  });

  it('β = −d ln ᾱ/dt (central differences of eq. 17); f = −½β, g = √β', () => {
    const h = 1e-6;
    for (const t of [0.01, 0.3, 0.7, 0.98]) {
      const beta = -(Math.log(abar(t + h)) - Math.log(abar(t - h))) / (2 * h);
      expect(rel(sde.diffusion(t) ** 2, beta)).toBeLessThan(1e-6);
      expect(rel(sde.driftCoef(t), -0.5 * beta)).toBeLessThan(1e-6);
    }
  });

  it('λ and σ_EDM round-trip through the closed-form inverses, which agree with bisection', () => {
    const generic = Object.getPrototypeOf(CosineVpSde.prototype) as Sde;
    for (const t of [1e-3, 0.05, 0.3, 0.6, 0.9, 0.99]) {
      const lam = sde.lambda(t);
      expect(lam).toBeCloseTo(0.5 * Math.log(abar(t) / (1 - abar(t))), 9);
      expect(Math.abs(sde.tFromLambda(lam) - t)).toBeLessThan(1e-9);
      expect(Math.abs(generic.tFromLambda.call(sde, lam) - t)).toBeLessThan(1e-9);
      expect(Math.abs(sde.tFromEdmSigma(sde.edmSigma(t)) - t)).toBeLessThan(1e-9);
    }
    expect(sde.tFromLambda(Infinity)).toBe(0);
    expect(sde.tFromLambda(-Infinity)).toBe(sde.T);
    expect(sde.tFromLambda(-400)).toBe(sde.T);
    expect(sde.tFromLambda(400)).toBe(0);
    expectThrowsSbm(() => sde.tFromLambda(NaN), 'INVALID_ARGUMENT', /lambda: expected a number/);
    expectThrowsSbm(() => sde.tFromEdmSigma(-2), 'INVALID_ARGUMENT', /sigma: expected a number >= 0/);
  });

  it('discrete chain: β_i = 1 − ᾱ(t_{i+1})/ᾱ(t_i), so ∏(1 − β_i) = ᾱ(T); clipped at 0.999 near t = 1', () => {
    let prod = 1;
    for (let i = 0; i < sde.N; i++) prod *= 1 - sde.discreteBeta(i);
    expect(rel(prod, abar(sde.T))).toBeLessThan(1e-9);
    // with t_max close to 1 and few steps the last step's raw β exceeds 0.999
    const steep = new CosineVpSde({ tMax: 0.99999, N: 100 });
    const raw = 1 - abar(0.99999) / abar((0.99999 * 99) / 100);
    expect(raw).toBeGreaterThan(MAX_DISCRETE_BETA);
    expect(steep.discreteBeta(99)).toBe(MAX_DISCRETE_BETA);
    expect(steep.discreteBeta(10)).toBeLessThan(0.1);
  });
});

describeWithBackends('CosineVpSde: tensor API', () => {
  it('tensor coefficients match the float64 closed forms (float32 tolerance)', () => {
    const sde = new CosineVpSde();
    const ts = [0, 1e-3, 0.1, 0.5, 0.9, 0.9946];
    const [f, g, a, s] = tf.tidy(() => {
      const t = tf.tensor1d(ts);
      return [sde.driftCoefT(t), sde.diffusionT(t), sde.alphaT(t), sde.stdT(t)].map((x) => Array.from(x.dataSync()));
    });
    ts.forEach((t, i) => {
      // t itself is rounded to float32 (relative 6e-8) and β(t) ∝ tan φ amplifies that by ≤ 1/(π/2 − φ) ≈ 120 at T
      expect(rel(f[i], -0.5 * sde.beta(t))).toBeLessThan(2e-5);
      expect(rel(g[i], Math.sqrt(sde.beta(t)))).toBeLessThan(2e-5);
      expect(rel(a[i], Math.sqrt(abar(t)))).toBeLessThan(2e-5);
      // the stable sin·sin form keeps σ accurate in float32 even at t = 1e-3 (where 1 − α² would lose ~0.2%)
      if (t === 0) expect(s[i]).toBe(0);
      else expect(rel(s[i], Math.sqrt(1 - abar(t)))).toBeLessThan(2e-5);
    });
  });

  it('discretize / correctorAlphaT use the clipped discrete β; marginalProb uses α, σ', () => {
    const sde = new CosineVpSde({ N: 50 });
    const idx = [0, 20, 48];
    const ts = idx.map((i) => ((i + 0.5) / 49) * sde.T);
    const x = [
      [1, -2],
      [0.5, 3],
      [2, 2],
    ];
    const r = tf.tidy(() => {
      const t = tf.tensor1d(ts);
      const xx = tf.tensor2d(x);
      const d = sde.discretize(xx, t);
      const mp = sde.marginalProb(xx, t);
      return {
        f: d.f.arraySync() as number[][],
        G: Array.from(d.G.dataSync()),
        ca: Array.from(sde.correctorAlphaT(t).dataSync()),
        mean: mp.mean.arraySync() as number[][],
        std: Array.from(mp.std.dataSync()),
      };
    });
    idx.forEach((i, b) => {
      const beta = sde.discreteBeta(i);
      expect(rel(r.G[b], Math.sqrt(beta))).toBeLessThan(1e-4);
      expect(Math.abs(r.ca[b] - (1 - beta))).toBeLessThan(1e-5);
      x[b].forEach((v, j) => {
        expect(Math.abs(r.f[b][j] - (Math.sqrt(1 - beta) - 1) * v)).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
        expect(Math.abs(r.mean[b][j] - Math.sqrt(abar(ts[b])) * v)).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
      });
      expect(rel(r.std[b], Math.sqrt(1 - abar(ts[b])))).toBeLessThan(2e-5);
    });
  });

  it('leaks no tensors', async () => {
    const sde = new CosineVpSde();
    const x = tf.ones([3, 4]);
    const t = tf.tensor1d([0.1, 0.5, 0.9]);
    const check = async (fn: () => unknown): Promise<void> => disposeAll(await withLeakCheck(fn, 'cosine-vp'));
    await check(() => sde.sde(x, t));
    await check(() => sde.marginalProb(x, t));
    await check(() => sde.perturb(x, t, 1));
    await check(() => sde.discretize(x, t));
    await check(() => sde.correctorAlphaT(t));
    await check(() => sde.reverse((xx) => tf.neg(xx), { probabilityFlow: true }).sde(x, t));
    await check(() => sde.priorSampling([2, 4], 1));
    tf.dispose([x, t]);
  });
});
