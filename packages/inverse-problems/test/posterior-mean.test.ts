import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { gaussian2d } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectRejectsSbm } from '@sbm/test-harness';
import { VeSde, type ScoreFn } from '@sbm/sde';
import { conditionalSample, posteriorMean } from '@sbm/inverse-problems';
import { maskOperator, veGaussScore } from './helpers';

const ve = new VeSde();
const separableScore: ScoreFn = veGaussScore(ve);

describeWithBackends('posteriorMean: the average and spread of K seeded conditionalSample draws', () => {
  const D = 4;
  const b = 5;
  let op: ReturnType<typeof maskOperator>;
  let y: tf.Tensor;
  beforeAll(() => {
    op = maskOperator(D, [0, 2]);
    y = tf.tensor2d(Array.from({ length: b }, (_, i) => [0.5 + i, -1 - 0.25 * i]));
  });
  afterAll(() => {
    op.dispose();
    y.dispose();
  });
  const base = () => ({
    method: 'projection',
    sde: ve,
    score: separableScore,
    shape: [b, D],
    operator: op,
    y,
    samplerOptions: { steps: 6 },
  });

  it('is the mean and the (K − 1)-denominator std of the draws its stats.seeds reproduce; known pixels exact', async () => {
    const before = countTensors();
    const seen: number[] = [];
    const r = await posteriorMean({ ...base(), seed: 3, draws: 4, onDraw: (k, K) => seen.push(k * 10 + K) });
    expect(seen).toEqual([14, 24, 34, 44]);
    expect(r.stats.draws).toBe(4);
    expect(r.stats.seeds).toHaveLength(4);
    expect(new Set(r.stats.seeds).size).toBe(4);
    const draws: number[][] = [];
    let nfe = 0;
    for (const seed of r.stats.seeds) {
      const d = await conditionalSample({ ...base(), seed });
      draws.push(Array.from(await d.samples.data()));
      nfe += d.stats.nfe;
      d.samples.dispose();
    }
    expect(r.stats.nfe).toBe(nfe);
    const mean = Array.from(await r.mean.data());
    const std = Array.from(await r.std.data());
    let spread = 0;
    for (let i = 0; i < mean.length; i++) {
      const v = draws.map((d) => d[i]);
      const m = v.reduce((s, e) => s + e, 0) / v.length;
      const sd = Math.sqrt(v.reduce((s, e) => s + (e - m) ** 2, 0) / (v.length - 1));
      expect(mean[i]).toBeCloseTo(m, 5);
      expect(std[i]).toBeCloseTo(sd, 5);
      spread += sd;
    }
    // The draws differ (independent seeds), except in the known coordinates, which every draw — and so the
    // mean — holds at y exactly.
    expect(spread).toBeGreaterThan(0.1);
    const yv = await y.data();
    for (let i = 0; i < b; i++) {
      expect(mean[i * D]).toBe(yv[i * 2]);
      expect(mean[i * D + 2]).toBe(yv[i * 2 + 1]);
      expect(std[i * D]).toBe(0);
    }
    expect(r.residual).toHaveLength(b);
    for (const e of r.residual) expect(e).toBeLessThan(1e-5);
    tf.dispose([r.mean, r.std]);
    expect(countTensors()).toBe(before);
  });

  it('same seed ⇒ same mean; K = 1 is the single draw with zero std', async () => {
    const a = await posteriorMean({ ...base(), seed: 9, draws: 2 });
    const a2 = await posteriorMean({ ...base(), seed: 9, draws: 2 });
    expect(Array.from(await a2.mean.data())).toEqual(Array.from(await a.mean.data()));
    const one = await posteriorMean({ ...base(), seed: 9, draws: 1 });
    const single = await conditionalSample({ ...base(), seed: one.stats.seeds[0] });
    expect(Array.from(await one.mean.data())).toEqual(Array.from(await single.samples.data()));
    expect(Math.max(...(await one.std.data()))).toBe(0);
    tf.dispose([a.mean, a.std, a2.mean, a2.std, one.mean, one.std, single.samples]);
  });

  it('bad draws / onDraw: one SbmError naming it; a score that throws in the second draw leaks nothing', async () => {
    const before = countTensors();
    for (const draws of [0, 1.5, -2, '3', undefined, Number.NaN]) {
      await expectRejectsSbm(
        posteriorMean({ ...base(), seed: 1, draws: draws as number }),
        'INVALID_ARGUMENT',
        /posteriorMean: draws: expected an integer ≥ 1/,
      );
    }
    await expectRejectsSbm(
      posteriorMean({ ...base(), seed: 1, draws: 2, onDraw: 'log' as unknown as () => void }),
      'INVALID_ARGUMENT',
      /onDraw: expected a function/,
    );
    // conditionalSample's own checks still run (on the first draw).
    await expectRejectsSbm(posteriorMean({ ...base(), seed: 1, draws: 2, lamda: 0.5 }), 'INVALID_ARGUMENT', /lamda/);
    let calls = 0;
    const failing: ScoreFn = (x, t) => {
      if (++calls === 9) throw new Error('score network failed');
      return separableScore(x, t);
    };
    // 6 PC steps = 12 score calls per draw: call 9 fails inside the first draw, so start the count one draw in.
    calls = -12;
    await expect(posteriorMean({ ...base(), score: failing, seed: 1, draws: 3 })).rejects.toThrow(
      'score network failed',
    );
    expect(calls).toBe(9);
    expect(countTensors()).toBe(before);
  });
});

// Against the exact posterior: gaussian2d given x₀ = 1.5 has x₁ ~ N(−1.3, 0.14) (projection.test.ts). wasm only, as
// the other oracle runs (the score of the mixture is several times cheaper there).
describeWithBackends(
  'posteriorMean against the exact posterior',
  () => {
    it('gaussian2d, n = 200 inputs × K = 8 draws (PC 60): mean of x₁ within 4 SE, the K-mean spread ≈ v/K, std² ≈ v', async () => {
      const before = countTensors();
      const g = gaussian2d();
      const op = maskOperator(2, [0]);
      const n = 200;
      const K = 8;
      const y = tf.fill([n, 1], 1.5);
      const r = await posteriorMean({
        method: 'projection',
        sde: ve,
        score: g.perturbed(ve).scoreFn,
        shape: [n, 2],
        seed: 7,
        operator: op,
        y,
        samplerOptions: { steps: 60 },
        draws: K,
      });
      const m = await r.mean.data();
      const s = await r.std.data();
      tf.dispose([r.mean, r.std, y]);
      op.dispose();
      expect(countTensors()).toBe(before);
      const v = 0.14;
      const means = Array.from({ length: n }, (_, i) => m[i * 2 + 1]);
      const grand = means.reduce((a, e) => a + e, 0) / n;
      // The grand mean averages n·K draws: SE √(v / nK).
      const seGrand = Math.sqrt(v / (n * K));
      // Each input's mean has variance v/K; their sample variance over n inputs has SE (v/K)·√(2/(n − 1)). Draws
      // sharing a seed would give v (or 0 when identical), 8 × off.
      const spread = means.reduce((a, e) => a + (e - grand) ** 2, 0) / (n - 1);
      const seSpread = (v / K) * Math.sqrt(2 / (n - 1));
      // The mean of the per-input variances: n(K − 1) degrees of freedom, SE v·√(2/(n(K − 1))); projection
      // over-disperses by ≈ 6 % (projection.test.ts), allowed as there (10 %).
      const s2 = Array.from({ length: n }, (_, i) => s[i * 2 + 1] ** 2).reduce((a, e) => a + e, 0) / n;
      const seS2 = v * Math.sqrt(2 / (n * (K - 1)));
      console.log(
        `[posteriorMean] gaussian2d PC 60, n ${n} K ${K}: grand mean ${grand.toFixed(4)} (−1.3, z ${((grand + 1.3) / seGrand).toFixed(2)}); spread of means ${spread.toFixed(5)} (v/K ${(v / K).toFixed(5)}, z ${((spread - v / K) / seSpread).toFixed(2)}); mean std² ${s2.toFixed(4)} (0.14, z ${((s2 - v) / seS2).toFixed(2)}); nfe ${r.stats.nfe}`,
      );
      expect(Math.abs(grand + 1.3)).toBeLessThan(4 * seGrand);
      expect(Math.abs(spread - v / K)).toBeLessThan(4 * seSpread + 0.1 * (v / K));
      expect(Math.abs(s2 - v)).toBeLessThan(4 * seS2 + 0.1 * v);
      for (let i = 0; i < n; i++) expect(m[i * 2]).toBe(1.5);
      expect(r.stats.nfe).toBe(120 * K);
    });
  },
  { backends: ['wasm'] },
);
