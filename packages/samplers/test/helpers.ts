import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect } from 'vitest';
import { countTensors, isSbmError } from '@sbm/core';
import type { GaussianMixture } from '@sbm/gaussian-mixture';
import type { ScoreFn, Sde } from '@sbm/sde';
import { sample, type SampleOptions, type SampleResult, type SampleStats } from '@sbm/samplers';
import { floorOf, meanSwd, momentErrors } from '@sbm/samplers/testing';

// The oracle tests' yardsticks live in @sbm/samplers/testing (the conformance suite uses the same ones).
export { swd, floorOf, meanSwd, momentErrors } from '@sbm/samplers/testing';

/** A mixture oracle for a describe block: 4 true sample sets (seeds 1000–1003) of n points and their floor. */
export interface MixtureOracle {
  mix: GaussianMixture;
  n: number;
  /** The reference sets (drawn in beforeAll, freed in afterAll). */
  refs: tf.Tensor[];
  /** floorOf(refs): the sliced W2 between true sample sets. */
  floor: number;
}

/** Registers the reference draws of `mix` (n points, seeds 1000–1003) in beforeAll / afterAll of the current block. */
export function mixtureOracle(mix: GaussianMixture, n: number): MixtureOracle {
  const o: MixtureOracle = { mix, n, refs: [], floor: 0 };
  beforeAll(() => {
    o.refs = [0, 1, 2, 3].map((i) => mix.sample(n, 1000 + i));
    o.floor = floorOf(o.refs);
  });
  afterAll(() => tf.dispose(o.refs));
  return o;
}

/**
 * Samples `opts` under `sde` with the oracle's exact score, one set of n points per seed, and returns the sliced W2
 * to the references averaged over the seeds. Each set must have the true moments within 4 standard errors (derived
 * from n in momentErrors; skipped with `moments: false`; `label` names the failing case) and, when `nfe` is given,
 * that NFE; nothing may leak.
 */
export async function mixtureSwd(
  o: MixtureOracle,
  sde: Sde,
  opts: object,
  seeds: number[],
  check: { nfe?: number; moments?: boolean; label?: string } = {},
): Promise<number> {
  const before = countTensors();
  let d = 0;
  for (const seed of seeds) {
    const { samples, stats } = await sample({
      ...opts,
      sde,
      score: o.mix.perturbed(sde).scoreFn,
      shape: [o.n, 2],
      seed,
    } as SampleOptions);
    d += meanSwd(samples, o.refs) / seeds.length;
    const { meanZ, covZ } = momentErrors(samples, o.mix.mean(), o.mix.covariance());
    samples.dispose();
    if (check.moments ?? true) {
      expect(meanZ, check.label).toBeLessThan(4);
      expect(covZ, check.label).toBeLessThan(4);
    }
    if (check.nfe !== undefined) expect(stats.nfe).toBe(check.nfe);
  }
  expect(countTensors()).toBe(before);
  return d;
}

/** A sampler run with fixed base options (sde, score, shape, seed) and per-call ones. */
export type Run = (o: Record<string, unknown>) => Promise<SampleResult>;

/** Runs `a` and `b` and expects the same samples, bit for bit; frees them and returns their stats. */
export async function expectSameSamples(
  run: Run,
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): Promise<[SampleStats, SampleStats]> {
  const x = await run(a);
  const y = await run(b);
  expect(Array.from(await x.samples.data())).toEqual(Array.from(await y.samples.data()));
  tf.dispose([x.samples, y.samples]);
  return [x.stats, y.stats];
}

/**
 * Runs `o` with a score that throws on its 5th call, (with `nan`) a score that returns NaN, and a signal aborted at
 * step 2, and expects each to reject (the error, NON_FINITE, ABORTED) with no tensor left behind.
 */
export async function expectFreedOnFailure(run: Run, o: Record<string, unknown>, score: ScoreFn, nan = false) {
  let calls = 0;
  const throwing: ScoreFn = (x, t) => {
    if (++calls === 5) throw new Error('score boom');
    return score(x, t);
  };
  const before = countTensors();
  await expect(run({ ...o, score: throwing }), JSON.stringify(o)).rejects.toThrow('score boom');
  expect(countTensors()).toBe(before);
  if (nan) {
    await expect(run({ ...o, score: (x: tf.Tensor) => tf.mul(x, NaN) })).rejects.toSatisfy((e) =>
      isSbmError(e, 'NON_FINITE'),
    );
    expect(countTensors()).toBe(before);
  }
  const ac = new AbortController();
  await expect(
    run({ ...o, signal: ac.signal, onProgress: (p: { step: number }) => p.step === 2 && ac.abort('stop') }),
  ).rejects.toSatisfy((e) => isSbmError(e, 'ABORTED'));
  expect(countTensors()).toBe(before);
}
