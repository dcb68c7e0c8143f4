import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { gaussian2d, mixture2d, type GaussianMixture } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectRejectsSbm } from '@sbm/test-harness';
import { VeSde, VpSde, type ScoreFn } from '@sbm/sde';
import { floorOf, meanSwd } from '@sbm/samplers/testing';
import { conditionalSample } from '@sbm/inverse-problems';
import type { RepaintStats } from '../src/methods/repaint';
import { repaintSchedule } from '../src/methods/repaint';
import { abortAtStep, maskOperator, veGaussScore } from './helpers';

const ve = new VeSde();
/** Data N(0, I) under VE: s = −x/(1 + σ(t)²), exact and cheap. */
const gaussScore: ScoreFn = veGaussScore(ve);

describe('repaintSchedule (RePaint get_schedule_jump)', () => {
  it('250 steps, jump 10, 10 resamplings: 2410 moves down (9.64 × 250 NFE), 2160 up, unit moves from 249 to −1', () => {
    const s = repaintSchedule(250, 10, 10);
    const down = s.slice(1).filter((l, i) => l < s[i]).length;
    const up = s.length - 1 - down;
    expect(down).toBe(2410);
    expect(up).toBe(2160);
    expect(s[0]).toBe(249);
    expect(s[s.length - 1]).toBe(-1);
    expect(s.slice(1).every((l, i) => Math.abs(l - s[i]) === 1)).toBe(true);
    expect(Math.max(...s)).toBe(249);
    // Each jump starts at a multiple of 10 below 240 and returns 10 levels up.
    const starts = s.slice(1, -1).filter((l, i) => s[i + 2] > l && s[i] > l);
    expect(new Set(starts)).toEqual(new Set(Array.from({ length: 24 }, (_, k) => 10 * k)));
  });
  it('1 resampling is the plain chain: steps moves down, none up', () => {
    const s = repaintSchedule(30, 10, 1);
    expect(s).toEqual(Array.from({ length: 31 }, (_, i) => 29 - i));
  });
});

describeWithBackends('repaint: schedule on the shared loop, errors, leaks', () => {
  const D = 3;
  const known = [1];
  const b = 5;
  let op: ReturnType<typeof maskOperator>;
  let y: tf.Tensor;
  beforeAll(() => {
    op = maskOperator(D, known);
    y = tf.tensor2d(Array.from({ length: b }, (_, i) => [0.7 * i - 1]));
  });
  afterAll(() => {
    op.dispose();
    y.dispose();
  });
  const base = () => ({ method: 'repaint', sde: ve, score: gaussScore, shape: [b, D], operator: op, y });

  it('12 steps, jump 3, 2 resamplings: 21 NFE (12 + 3 jumps × 3), 30 moves reported, known coordinates = y', async () => {
    const before = countTensors();
    const ts: number[] = [];
    const res = await conditionalSample({
      ...base(),
      seed: 3,
      jumpLength: 3,
      resamplings: 2,
      samplerOptions: { steps: 12 },
      onProgress: (p) => ts.push(p.t),
    });
    expect(res.stats.nfe).toBe(21);
    expect((res.stats as RepaintStats).down).toBe(21);
    expect((res.stats as RepaintStats).up).toBe(9);
    expect(res.stats.steps).toBe(30);
    expect(ts.length).toBe(30);
    // Levels ℓ sit at t = eps + (ℓ + 1)(T − eps)/steps: the run ends at eps, and its first move reaches level 10.
    const eps = ve.samplingEps;
    expect(ts[ts.length - 1]).toBeCloseTo(eps, 12);
    expect(ts[0]).toBeCloseTo(eps + (11 * (1 - eps)) / 12, 12);
    expect(res.residual.every((e) => e === 0)).toBe(true);
    res.samples.dispose();
    expect(countTensors()).toBe(before);
  });

  it('runs on VP too (its forward kernel has α < 1) and is seeded', async () => {
    const vp = new VpSde();
    // VP data N(0, I) stays N(0, I): s = −x.
    const go = async (seed: number) => {
      const r = await conditionalSample({
        ...base(),
        sde: vp,
        score: (x) => tf.neg(x),
        seed,
        jumpLength: 2,
        resamplings: 3,
        samplerOptions: { steps: 8 },
      });
      const v = Array.from(await r.samples.data());
      expect(r.residual.every((e) => e === 0)).toBe(true);
      r.samples.dispose();
      return v;
    };
    const [a, a2, c] = [await go(5), await go(5), await go(6)];
    expect(a2).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('frees every tensor when the score throws mid-run and when aborted', async () => {
    const before = countTensors();
    let calls = 0;
    const failing: ScoreFn = (x, t) => {
      if (++calls === 6) throw new Error('score network failed');
      return gaussScore(x, t);
    };
    await expect(
      conditionalSample({ ...base(), score: failing, seed: 1, jumpLength: 2, samplerOptions: { steps: 10 } }),
    ).rejects.toThrow('score network failed');
    expect(countTensors()).toBe(before);
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, jumpLength: 2, samplerOptions: { steps: 10 }, ...abortAtStep(4) }),
      'ABORTED',
      /repaint/,
    );
    expect(countTensors()).toBe(before);
  });

  it('bad input: one SbmError naming the argument, nothing leaked', async () => {
    const before = countTensors();
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, sampler: 'pc' }),
      'INVALID_ARGUMENT',
      /sampler: method "repaint" is its own sampler .* got "pc"/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, samplerOptions: { snr: 0.16 } }),
      'INVALID_ARGUMENT',
      /repaint: samplerOptions: unknown option "snr"/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, jumpLength: 0 }),
      'INVALID_ARGUMENT',
      /jumpLength: expected an integer >= 1, got 0/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, jumpLength: 20, samplerOptions: { steps: 20 } }),
      'INVALID_ARGUMENT',
      /jumpLength: expected fewer levels than samplerOptions\.steps \(20\)/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, resamplings: 2.5 }),
      'INVALID_ARGUMENT',
      /resamplings: expected an integer >= 1, got 2\.5/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, jumplength: 3 }),
      'INVALID_ARGUMENT',
      /unknown option "jumplength".*jumpLength/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, operator: { ...op, decoupled: undefined } }),
      'INVALID_ARGUMENT',
      /operator: method "repaint" needs an operator with a decoupled form/,
    );
    expect(countTensors()).toBe(before);
  });
});

// Against the exact posterior (conditionOnCoordinates). wasm only, as projection.test.ts: the oracle score is ≈ 7×
// faster there, and these need ≈ 140 calls each.
describeWithBackends(
  'repaint against the exact posterior',
  () => {
    const n = 1000;
    const op = maskOperator(2, [0]);
    afterAll(() => op.dispose());

    async function run(prior: GaussianMixture, x0: number, extra: Record<string, unknown>) {
      const before = countTensors();
      const y = tf.fill([n, 1], x0);
      const res = await conditionalSample({
        method: 'repaint',
        sde: ve,
        score: prior.perturbed(ve).scoreFn,
        shape: [n, 2],
        seed: 7,
        operator: op,
        y,
        ...extra,
      });
      const post = prior.conditionOnCoordinates([0], [x0]).full;
      const refs = [0, 1, 2, 3].map((k) => post.sample(n, 100 + k));
      const floor = floorOf(refs);
      const d = meanSwd(res.samples, refs);
      const priorSet = prior.sample(n, 5);
      const dPrior = meanSwd(priorSet, refs);
      const v = await res.samples.data();
      tf.dispose([...refs, priorSet, res.samples, y]);
      expect(countTensors()).toBe(before);
      const u = Array.from({ length: n }, (_, i) => v[2 * i + 1]);
      const known = Array.from({ length: n }, (_, i) => v[2 * i]);
      const mean = u.reduce((s, e) => s + e, 0) / n;
      const variance = u.reduce((s, e) => s + (e - mean) ** 2, 0) / (n - 1);
      return {
        known,
        mean,
        variance,
        exactMean: post.mean()[1],
        exactVar: post.covariance()[1][1],
        d,
        floor,
        dPrior,
        res,
      };
    }
    const report = (label: string, r: Awaited<ReturnType<typeof run>>) => {
      const se = Math.sqrt(r.exactVar / n);
      console.log(
        `[repaint] ${label}: mean ${r.mean.toFixed(4)} (exact ${r.exactMean.toFixed(4)}, z ${((r.mean - r.exactMean) / se).toFixed(2)}) var ${r.variance.toFixed(4)} (${r.exactVar.toFixed(4)}) swd ${r.d.toFixed(4)} floor ${r.floor.toFixed(4)} ratio ${(r.d / r.floor).toFixed(2)} prior ${r.dPrior.toFixed(3)} nfe ${r.res.stats.nfe}`,
      );
    };

    it('single Gaussian (50 steps, jump 5, 3 resamplings = 140 NFE): the posterior within sampling error', async () => {
      const r = await run(gaussian2d(), 1.5, { jumpLength: 5, resamplings: 3, samplerOptions: { steps: 50 } });
      report('gaussian2d 50/5/3', r);
      const se = Math.sqrt(r.exactVar / n);
      const seVar = r.exactVar * Math.sqrt(2 / (n - 1));
      expect(r.known.every((e) => e === 1.5)).toBe(true);
      expect(Math.abs(r.mean - r.exactMean)).toBeLessThan(4 * se);
      expect(Math.abs(r.variance - r.exactVar)).toBeLessThan(4 * seVar + 0.1 * r.exactVar);
      expect(r.res.stats.nfe).toBe(140);
    });

    it('five-component mixture (40 steps, jump 5, 4 resamplings = 145 NFE): approximate, within half the prior’s sliced W2', async () => {
      const r = await run(mixture2d(), 1, { jumpLength: 5, resamplings: 4, samplerOptions: { steps: 40 } });
      report('mixture2d 40/5/4', r);
      expect(r.known.every((e) => e === 1)).toBe(true);
      expect(r.d).toBeLessThan(0.5 * r.dPrior);
      expect(r.res.stats.nfe).toBe(145);
    });
  },
  { backends: ['wasm'] },
);
