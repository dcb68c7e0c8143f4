/**
 * `@sbm/samplers/testing`: a runner-agnostic conformance suite for samplers (built-in or plugin), judged against the
 * closed-form Gaussian-mixture oracle of `@sbm/gaussian-mixture` with `@sbm/metrics`' distances. Each case is
 * `{ name, run }`; `run` throws a plain Error on failure. With vitest: `for (const c of samplerConformance('mine'))
 * it(c.name, c.run)`. Needs @sbm/gaussian-mixture and @sbm/metrics installed (optional peer dependencies).
 */
import * as tf from '@tensorflow/tfjs';
import { SbmError, checkTensor, countTensors, describeValue, isSbmError } from '@sbm/core';
import { mixture2d, type GaussianMixture } from '@sbm/gaussian-mixture';
import { sampleCovariance, sampleMean, slicedWasserstein } from '@sbm/metrics';
import { VpSde, type ScoreFn, type Sde } from '@sbm/sde';
import { sample, type SampleOptions } from './sample';
import { samplerEntry } from './registry';
import type { SampleProgress, SampleResult } from './types';

export interface ConformanceCase {
  name: string;
  run: () => Promise<void>;
}

export interface SamplerConformanceOptions {
  /** The sampler's own options for every case (e.g. `{ steps: 200 }`, `{ sigma: 1, steps: 1000 }`). */
  options?: Record<string, unknown>;
  /** The SDE whose oracle score drives the sampler (default `new VpSde()`); passed as `sde`. */
  sde?: Sde;
  /** The data distribution (default mixture2d(): five 2-D components). */
  mixture?: GaussianMixture;
  /**
   * What the samples should follow, when not the data itself (plain Langevin at a fixed σ targets p_σ: pass
   * `(mix, sde) => mix.atTime(sde, sde.tFromEdmSigma(σ))`).
   */
  target?: (mixture: GaussianMixture, sde: Sde) => GaussianMixture;
  /** Samples in the statistical case (default 1000). The tolerances below scale with it. */
  n?: number;
  /** Sliced W2 to exact draws ≤ factor × the floor of exact-vs-exact draws at the same n (default 1.2). */
  swdFactor?: number;
  /** Largest |sample moment − true moment| in standard errors at n (default 4). */
  zMax?: number;
  /**
   * Seeds whose sample sets' distances are averaged in the statistical case (default [7, 8, 9, 10]). One set's own
   * luck moves its distance as much as the references' does (an exact sampler's single set reached 1.25 × floor at
   * n = 1000), so with one seed give swdFactor room for it (about 1.5).
   */
  seeds?: number[];
  /** Expected NFE (checked in the statistical case when given). */
  nfe?: number;
  /** Include the statistical case (default true; the others take a batch of 16). */
  statistics?: boolean;
  /** Prefix of every case name (default the sampler's name). */
  label?: string;
}

class ConformanceError extends Error {
  constructor(label: string, message: string) {
    super(`${label}: ${message}`);
    this.name = 'ConformanceError';
  }
}

/** Rows of a [n, D] tensor read asynchronously (GPU-safe: the metrics then run on plain arrays). */
async function rows(x: tf.Tensor): Promise<number[][]> {
  const v = await x.data();
  const D = x.size / x.shape[0];
  return Array.from({ length: x.shape[0] }, (_, i) => Array.from(v.subarray(i * D, (i + 1) * D)));
}

/** Sliced W2 with one fixed set of 128 directions (seed 3), so that every comparison uses the same slices. */
export const swd = (a: tf.Tensor | number[][], b: tf.Tensor | number[][]): number =>
  slicedWasserstein(a, b, { projections: 128, seed: 3 });

/**
 * The sliced-W2 floor at a sample size: the distance between two independent exact sample sets fluctuates a lot at
 * n = 1000 (0.12–0.34 over 12 pairs for mixture2d), so one pair is no yardstick: with K = 4 exact sets the floor is
 * the mean over their 6 pairs, and a sampler's distance is its mean distance to the same 4 sets; an exact sampler
 * then has E[distance] = E[floor].
 */
export function floorOf(refs: (tf.Tensor | number[][])[]): number {
  const d: number[] = [];
  for (let i = 0; i < refs.length; i++) for (let j = i + 1; j < refs.length; j++) d.push(swd(refs[i], refs[j]));
  return d.reduce((s, v) => s + v, 0) / d.length;
}

export function meanSwd(x: tf.Tensor | number[][], refs: (tf.Tensor | number[][])[]): number {
  return refs.map((r) => swd(x, r)).reduce((s, v) => s + v, 0) / refs.length;
}

/**
 * Sample mean and covariance against the truth, with tolerances from the sample size n: the mean's standard error is
 * √(Σ_jj/n); a sample covariance entry has standard error ≈ √((Σ_ii Σ_jj + Σ_ij²)/n) (Gaussian fourth moments; the
 * mixture's are of the same order). Returns the largest |error| / SE of each.
 */
export function momentErrors(
  x: tf.Tensor | number[][],
  mean: number[],
  cov: number[][],
): { meanZ: number; covZ: number } {
  const n = Array.isArray(x) ? x.length : x.shape[0];
  const m = sampleMean(x);
  const c = sampleCovariance(x);
  let meanZ = 0;
  let covZ = 0;
  for (let i = 0; i < mean.length; i++) {
    meanZ = Math.max(meanZ, Math.abs(m[i] - mean[i]) / Math.sqrt(cov[i][i] / n));
    for (let j = 0; j < mean.length; j++) {
      const se = Math.sqrt((cov[i][i] * cov[j][j] + cov[i][j] ** 2) / n);
      covZ = Math.max(covZ, Math.abs(c[i][j] - cov[i][j]) / se);
    }
  }
  return { meanZ, covZ };
}

export { gaussian2d } from '@sbm/gaussian-mixture';

/**
 * The error of a deterministic sampler's output against the exact flow map (`GaussianMixture#flowMap` from the same
 * x_T): per point the Euclidean distance ‖x_i − x*_i‖ (float64 on the values read back asynchronously, GPU-safe),
 * then its max and mean over the n points. `samples` is [n, ...] with n·D values; `exact` row-major of the same size.
 */
export async function flowMapError(
  samples: tf.Tensor,
  exact: Float64Array | number[],
): Promise<{ max: number; mean: number }> {
  checkTensor(samples, 'samples', undefined, { minRank: 1 });
  if (!(exact instanceof Float64Array || Array.isArray(exact)) || exact.length !== samples.size) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `flowMapError: exact: expected ${samples.size} values (the size of samples, shape [${samples.shape.join(', ')}]), got ${describeValue(exact)}${exact && typeof exact === 'object' && 'length' in exact ? ` of length ${(exact as { length: number }).length}` : ''}`,
      { argument: 'exact' },
    );
  }
  const v = await samples.data();
  const n = samples.shape[0];
  const D = samples.size / n;
  let max = 0;
  let sum = 0;
  for (let b = 0; b < n; b++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += (v[b * D + i] - exact[b * D + i]) ** 2;
    const e = Math.sqrt(s);
    if (Number.isNaN(e)) return { max: NaN, mean: NaN };
    max = Math.max(max, e);
    sum += e;
  }
  return { max, mean: sum / n };
}

/**
 * The measured convergence order: the least-squares slope of −log err against log NFE (err ∝ NFE^(−p) gives p).
 * Needs at least two points with distinct NFE; every NFE and error must be finite and > 0.
 */
export function convergenceOrder(nfe: number[], err: number[]): number {
  const bad = (argument: string, expected: string, received: unknown): SbmError =>
    new SbmError('INVALID_ARGUMENT', `convergenceOrder: ${argument}: expected ${expected}, got ${received}`, {
      argument,
    });
  if (!Array.isArray(nfe) || nfe.length < 2) throw bad('nfe', 'an array of at least 2 NFE', describeValue(nfe));
  if (!Array.isArray(err) || err.length !== nfe.length) {
    throw bad('err', `an array of ${nfe.length} errors (one per NFE)`, describeValue(err));
  }
  nfe.forEach((v, i) => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw bad(`nfe[${i}]`, 'a number > 0', describeValue(v));
  });
  err.forEach((v, i) => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw bad(`err[${i}]`, 'a finite number > 0', describeValue(v));
  });
  const xs = nfe.map(Math.log);
  const ys = err.map((e) => -Math.log(e));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i] - my);
    sxx += (x - mx) ** 2;
  });
  if (sxx === 0) throw bad('nfe', 'at least two distinct NFE', `[${nfe.join(', ')}]`);
  return sxy / sxx;
}

/**
 * The conformance cases of the registered sampler `name`: the statistics of its samples against exact draws, seeded
 * reproducibility, no leaked tensors (also when the score throws or returns the wrong shape), abort, progress, and
 * the rejection of unknown options.
 */
export function samplerConformance(name: string, opts: SamplerConformanceOptions = {}): ConformanceCase[] {
  const label = opts.label ?? name;
  const sde = opts.sde ?? new VpSde();
  const mix = opts.mixture ?? mixture2d();
  const oracle = mix.perturbed(sde);
  const score: ScoreFn = oracle.scoreFn;
  const D = mix.mean().length;
  const fail = (msg: string): never => {
    throw new ConformanceError(label, msg);
  };
  const run = (extra: Record<string, unknown>): Promise<SampleResult> =>
    sample({ sampler: name, sde, score, shape: [16, D], seed: 5, ...opts.options, ...extra } as SampleOptions);
  /** Rejects with an SbmError of `code` (or the given error) and frees every tensor. */
  const expectRejects = async (what: string, extra: Record<string, unknown>, ok: (e: unknown) => boolean) => {
    const before = countTensors();
    let err: unknown;
    try {
      (await run(extra)).samples.dispose();
    } catch (e) {
      err = e;
    }
    if (err === undefined) fail(`${what}: expected the sampler to reject, it resolved`);
    if (!ok(err)) fail(`${what}: rejected with an unexpected error: ${String(err)}`);
    const after = countTensors();
    if (after !== before) fail(`${what}: ${after - before} tensors leaked on the error path`);
  };

  const cases: ConformanceCase[] = [];
  if (opts.statistics ?? true) {
    const n = opts.n ?? 1000;
    const factor = opts.swdFactor ?? 1.2;
    const zMax = opts.zMax ?? 4;
    const seeds = opts.seeds ?? [7, 8, 9, 10];
    cases.push({
      name: `${label}: moments within ${zMax} SE and sliced W2 ≤ ${factor} × floor of exact draws (n = ${n})`,
      run: async () => {
        const target = opts.target ? opts.target(mix, sde) : mix;
        const refTensors = [0, 1, 2, 3].map((i) => target.sample(n, 1000 + i));
        const refs = await Promise.all(refTensors.map(rows));
        tf.dispose(refTensors);
        const floor = floorOf(refs);
        let d = 0;
        for (const seed of seeds) {
          const r = await sample({
            sampler: name,
            sde,
            score,
            shape: [n, D],
            ...opts.options,
            seed,
          } as SampleOptions);
          const x = await rows(r.samples);
          r.samples.dispose();
          if (opts.nfe !== undefined && r.stats.nfe !== opts.nfe) fail(`NFE ${r.stats.nfe}, expected ${opts.nfe}`);
          const { meanZ, covZ } = momentErrors(x, target.mean(), target.covariance());
          if (!(meanZ < zMax)) fail(`seed ${seed}: sample mean ${meanZ.toFixed(2)} SE from the truth (≥ ${zMax})`);
          if (!(covZ < zMax)) fail(`seed ${seed}: sample covariance ${covZ.toFixed(2)} SE from the truth (≥ ${zMax})`);
          d += meanSwd(x, refs) / seeds.length;
        }
        if (!(d <= factor * floor)) {
          fail(`sliced W2 ${d.toFixed(4)} > ${factor} × floor ${floor.toFixed(4)} (ratio ${(d / floor).toFixed(3)})`);
        }
      },
    });
  }

  cases.push({
    name: `${label}: same seed ⇒ bit-identical samples; another seed ⇒ different ones`,
    run: async () => {
      const a = await run({ seed: 5 });
      const b = await run({ seed: 5 });
      const c = await run({ seed: 6 });
      const [va, vb, vc] = await Promise.all([a.samples.data(), b.samples.data(), c.samples.data()]);
      tf.dispose([a.samples, b.samples, c.samples]);
      if (va.some((v, i) => !Object.is(v, vb[i]))) fail('two runs with seed 5 differ');
      if (va.every((v, i) => v === vc[i])) fail('seeds 5 and 6 gave the same samples');
    },
  });

  cases.push({
    name: `${label}: no tensor leaks, also when the score throws or returns the wrong shape`,
    run: async () => {
      (await run({})).samples.dispose(); // warm-up: lazily built constants of tfjs or the oracle are not leaks
      const before = countTensors();
      const r = await run({});
      r.samples.dispose();
      if (countTensors() !== before) fail(`${countTensors() - before} tensors leaked by a successful run`);
      const boom = new Error('conformance: score failure');
      let calls = 0;
      const throwing: ScoreFn = (x, t) => {
        if (++calls === 3) throw boom;
        return score(x, t);
      };
      await expectRejects('a score that throws on its 3rd call', { score: throwing }, (e) => e === boom);
      calls = 0;
      const wrong: ScoreFn = (x, t) => (++calls >= 2 ? tf.zeros([x.shape[0] + 1, ...x.shape.slice(1)]) : score(x, t));
      await expectRejects('a score of the wrong shape', { score: wrong }, (e) => isSbmError(e, 'INVALID_SHAPE'));
    },
  });

  cases.push({
    name: `${label}: an AbortSignal ends sampling with ABORTED and frees every tensor`,
    run: async () => {
      const ac = new AbortController();
      await expectRejects(
        'aborted at step 2',
        {
          signal: ac.signal,
          onProgress: (p: SampleProgress) => {
            if (p.step === 2) ac.abort('conformance');
          },
        },
        (e) => isSbmError(e, 'ABORTED'),
      );
    },
  });

  cases.push({
    name: `${label}: progress counts steps 1, 2, … with a growing NFE`,
    run: async () => {
      const seen: SampleProgress[] = [];
      const r = await run({ onProgress: (p: SampleProgress) => seen.push({ ...p }) });
      r.samples.dispose();
      const canonical = samplerEntry(name)?.name ?? name;
      if (seen.length === 0) fail('onProgress was never called');
      seen.forEach((p, i) => {
        if (p.step !== i + 1) fail(`progress ${i}: step ${p.step}, expected ${i + 1}`);
        if (p.sampler !== canonical) fail(`progress names the sampler "${p.sampler}", expected "${canonical}"`);
        if (i > 0 && p.nfe < seen[i - 1].nfe) fail(`NFE went down from ${seen[i - 1].nfe} to ${p.nfe}`);
        if (p.steps > 0 && !(p.fraction > 0 && p.fraction <= 1)) fail(`fraction ${p.fraction} outside (0, 1]`);
        if (!Number.isFinite(p.t)) fail(`progress t ${p.t} is not finite`);
      });
      const last = seen[seen.length - 1];
      if (last.nfe > r.stats.nfe) fail(`progress NFE ${last.nfe} exceeds the final stats.nfe ${r.stats.nfe}`);
      if (last.steps > 0 && last.step !== last.steps) fail(`last progress at step ${last.step} of ${last.steps}`);
    },
  });

  cases.push({
    name: `${label}: unknown options are rejected with a did-you-mean`,
    run: async () => {
      const keys = samplerEntry(name)?.options;
      if (!keys) fail(`registered without its option keys (registerSampler(name, fn, { options }))`);
      await expectRejects(
        'option "stpes"',
        { stpes: 3 },
        (e) =>
          isSbmError(e, 'INVALID_ARGUMENT') &&
          e.message.includes('"stpes"') &&
          (!keys!.includes('steps') || e.message.includes('did you mean "steps"')),
      );
      await expectRejects(
        'option "num_inference_steps"',
        { num_inference_steps: 3 },
        (e) =>
          isSbmError(e, 'INVALID_ARGUMENT') &&
          e.message.includes('"num_inference_steps"') &&
          (!keys!.includes('steps') || e.message.includes('did you mean "steps"')),
      );
    },
  });
  return cases;
}
