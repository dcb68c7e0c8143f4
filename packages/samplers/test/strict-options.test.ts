// Strict options, at compile time (the @ts-expect-error lines: `tsc -p packages/samplers/tsconfig.json` compiles this
// file, and an unused directive is itself an error, so each line must fail to typecheck) and at run time (the same
// calls, made from untyped code, reject with INVALID_ARGUMENT / UNKNOWN_NAME and a did-you-mean).
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors, isSbmError } from '@sbm/core';
import {
  listSamplers,
  odeSampler,
  registerSampler,
  sample,
  samplerEntry,
  unregisterSampler,
  VpSde,
  type OdeSamplerOptions,
  type SampleOptions,
  type SampleResult,
  type ScoreFn,
} from '@sbm/samplers';

interface ScaleOptions {
  seed: number;
  shape: number[];
  scale?: number;
}

// A plugin's sampler, typed by declaration merging.
declare module '@sbm/samplers' {
  interface SamplerOptionsMap {
    'test-scale': ScaleOptions;
  }
}

const sde = new VpSde();
const score: ScoreFn = (x) => tf.neg(x);
const base = { sde, score, shape: [8, 2], seed: 1 };

const rejects = async (p: () => Promise<SampleResult>, code: string, ...parts: string[]) => {
  const before = countTensors();
  let err: unknown;
  try {
    (await p()).samples.dispose();
  } catch (e) {
    err = e;
  }
  expect(isSbmError(err) && err.code === code, String(err)).toBe(true);
  for (const s of parts) expect((err as Error).message).toContain(s);
  expect(countTensors()).toBe(before);
};

it('a misspelt option, another library’s name and an unknown sampler fail tsc and are rejected at run time', async () => {
  // @ts-expect-error `stpes` is not an option of pc
  const misspelt: SampleOptions = { ...base, sampler: 'pc', stpes: 10 };
  await rejects(() => sample(misspelt), 'INVALID_ARGUMENT', '"stpes"', 'did you mean "steps"');
  // @ts-expect-error diffusers' name; sbm's is `steps`
  const diffusers: SampleOptions = { ...base, num_inference_steps: 5 };
  await rejects(() => sample(diffusers), 'INVALID_ARGUMENT', 'did you mean "steps"');
  // @ts-expect-error no sampler of that name
  const unknown: SampleOptions = { ...base, sampler: 'dpmpp_2s' };
  await rejects(() => sample(unknown), 'UNKNOWN_NAME', 'sampler', 'did you mean "dpm-solver"');
  // @ts-expect-error `method` is the ODE sampler's, not DPM-Solver's
  const odeOnly: SampleOptions = { ...base, sampler: 'dpm-solver', method: 'rk4' };
  await rejects(() => sample(odeOnly), 'INVALID_ARGUMENT', '"method"');
  // @ts-expect-error em takes no predictor (it is PC with Euler–Maruyama and no corrector)
  const emPredictor: SampleOptions = { ...base, sampler: 'em', predictor: 'ancestral' };
  await rejects(() => sample(emPredictor), 'INVALID_ARGUMENT', '"predictor"');
  // Direct calls of a sampler check through the same lists.
  // @ts-expect-error `snr` is the corrector's, not the ODE sampler's
  const odeSnr: OdeSamplerOptions = { ...base, snr: 0.1 };
  await rejects(() => odeSampler(odeSnr), 'INVALID_ARGUMENT', '"snr"');
});

it('undefined-valued keys pass (spread configs); aliases resolve to the same sampler', async () => {
  const r = await sample({ ...base, sampler: 'dpm-solver', steps: 5, order: undefined });
  const a = await sample({ ...base, sampler: 'dpmpp_2m', steps: 5 });
  expect(await a.samples.data()).toEqual(await r.samples.data());
  expect(a.stats.sampler).toBe('dpm-solver');
  expect(listSamplers()).not.toContain('dpmpp_2m');
  expect(samplerEntry('dpmpp_2m')?.name).toBe('dpm-solver');
  tf.dispose([r.samples, a.samples]);
});

it('a plugin sampler: declaration merging types it, its option list checks it at run time', async () => {
  registerSampler(
    'test-scale',
    async (o: ScaleOptions) => ({
      samples: tf.mul(tf.ones(o.shape), o.scale ?? 1),
      stats: { sampler: 'test-scale', nfe: 0, steps: 0, ms: 0 },
    }),
    { options: ['seed', 'shape', 'scale'], description: 'test' },
  );
  try {
    const r = await sample({ sampler: 'test-scale', seed: 1, shape: [2, 2], scale: 3 });
    expect(Array.from(await r.samples.data())).toEqual([3, 3, 3, 3]);
    r.samples.dispose();
    expect(samplerEntry('test-scale')?.source).toBe('user');
    await rejects(
      // @ts-expect-error not one of ScaleOptions
      () => sample({ sampler: 'test-scale', seed: 1, shape: [2, 2], scael: 3 }),
      'INVALID_ARGUMENT',
      'did you mean "scale"',
    );
  } finally {
    unregisterSampler('test-scale');
  }
});
