import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { withLeakCheck } from '@sbm/core';
import { gaussianFourierProjection, sinusoidalEmbedding, ScoreNet } from '@sbm/models';
import { maxAbsDiff, values } from './helpers';

/** DDPM's get_timestep_embedding written out in float64: [sin(t ω_k), cos(t ω_k)], ω_k = 10000^(−k/(h−1)). */
function sinusoidalRef(ts: number[], dim: number, maxPositions = 10000): number[] {
  const h = Math.floor(dim / 2);
  const out: number[] = [];
  for (const t of ts) {
    const w = Array.from({ length: h }, (_, k) => Math.exp((-k * Math.log(maxPositions)) / (h - 1)));
    out.push(...w.map((f) => Math.sin(t * f)), ...w.map((f) => Math.cos(t * f)));
    if (dim % 2 === 1) out.push(0);
  }
  return out;
}

describeWithBackends('embeddings', () => {
  // Arguments up to 999 lose ~999·6e-8 ≈ 6e-5 in float32 before sin/cos: tolerance 2e-4.
  it('sinusoidal embedding equals the DDPM formula (even and odd widths)', async () => {
    const ts = [0, 1, 17.5, 999];
    for (const dim of [8, 7, 32]) {
      const t = tf.tensor1d(ts);
      const e = await withLeakCheck(() => sinusoidalEmbedding(t, dim), 'sinusoidalEmbedding');
      t.dispose();
      expect(e.shape).toEqual([4, dim]);
      expect(maxAbsDiff(values(e), sinusoidalRef(ts, dim))).toBeLessThan(2e-4);
      e.dispose();
    }
    // Frequencies span 1 … 1/maxPositions: the last sine column at t = 999 is sin(999/10000).
    const e = tf.tidy(() => sinusoidalEmbedding(tf.tensor1d([999]), 8));
    expect(values(e)[3]).toBeCloseTo(Math.sin(0.0999), 5);
    e.dispose();
  });

  it('Fourier projection equals [sin(2π x W), cos(2π x W)] for a known W', async () => {
    const W = [0.5, -1.25, 3];
    const xs = [0, 0.3, -1.7];
    const expected: number[] = [];
    for (const x of xs) {
      expected.push(...W.map((w) => Math.sin(2 * Math.PI * x * w)), ...W.map((w) => Math.cos(2 * Math.PI * x * w)));
    }
    const e = await withLeakCheck(
      () => tf.tidy(() => gaussianFourierProjection(tf.tensor1d(xs), tf.tensor1d(W))),
      'gaussianFourierProjection',
    );
    expect(e.shape).toEqual([3, 6]);
    expect(maxAbsDiff(values(e), expected)).toBeLessThan(1e-5);
    e.dispose();
  });

  it('ScoreNet draws its 128 fixed frequencies from N(0, 30²), reproducibly from the seed', () => {
    const a = new ScoreNet({ name: 'scorenet' }, 7);
    const b = new ScoreNet({ name: 'scorenet' }, 7);
    const wa = values(a.getWeights().find((w) => w.name === 'embed/fourier/W')!.tensor);
    const wb = values(b.getWeights().find((w) => w.name === 'embed/fourier/W')!.tensor);
    expect(wa.length).toBe(128);
    expect(wa).toEqual(wb);
    // 128 draws: the sample mean has SE 30/√128 ≈ 2.65 and the sample std a relative SE ≈ 1/√256 = 0.0625;
    // 4 SE bounds.
    const mean = wa.reduce((s, v) => s + v, 0) / wa.length;
    const std = Math.sqrt(wa.reduce((s, v) => s + (v - mean) ** 2, 0) / (wa.length - 1));
    expect(Math.abs(mean)).toBeLessThan(4 * 2.65);
    expect(Math.abs(std / 30 - 1)).toBeLessThan(4 * 0.0625);
    a.dispose();
    b.dispose();
  });
});
