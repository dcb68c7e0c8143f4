import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkSeed, describeValue, isSeedStream } from '@sbm/core';
import { getSampler, sample, samplerEntry, type AfterStepFn, type SampleResult } from '@sbm/samplers';
import type { ConditionalSampleOptions } from '../types';

/**
 * The carrier of the projection-type methods: an unconditional fixed-step sampler of @sbm/samplers, run through
 * `sample()`, with the method's data-consistency step in one of its hooks. PC (and any sampler whose option keys name
 * `project`) takes it through `project`, after the corrector and after the predictor as score_sde's inpainter; every
 * other fixed-step sampler through the shared loop's `afterStep`, after each step.
 */

/** The keys the method sets on the carrier itself: a caller's samplerOptions may not set them. */
const RESERVED = ['sde', 'score', 'shape', 'seed', 'signal', 'onProgress', 'project', 'afterStep', 'init'] as const;

/** Samplers whose steps are not a fixed grid (an error estimate chooses them): no per-step projection. */
const ADAPTIVE = new Set(['ode', 'dpm-adaptive']);
/** Samplers on noise levels σ of a noise-conditional score, not on an SDE's time grid. */
const NOISE_LEVEL = new Set(['ald', 'langevin']);

export type ProjectFn = (
  state: { x: tf.Tensor; xMean: tf.Tensor },
  t: number,
  kind: 'corrector' | 'predictor',
) => { x: tf.Tensor; xMean: tf.Tensor };

export interface Carrier {
  /** The name the caller gave (or the default). */
  name: string;
  /** The registry's canonical name ('dpm-solver' for 'dpmpp_2m'). */
  canonical: string;
  /** Which hook carries the method's step. */
  hook: 'project' | 'afterStep';
  /** The caller's samplerOptions (checked: an object without the reserved keys). */
  samplerOptions: Record<string, unknown>;
}

/**
 * The seeds of a run: `carrier` feeds the carrier sampler (and a method's prior draw), `method` the method's own
 * draws (the noise of its data-consistency steps). A numeric seed gives the carrier exactly the stream an
 * unconditional run with that seed has, so where the measurement does not touch a coordinate's dynamics the two
 * runs agree there; the method's stream is forked off a copy of it. A SeedStream argument is used as the carrier's
 * and forks the method's.
 */
export function streamsOf(seed: unknown): { carrier: SeedStream; method: SeedStream } {
  if (isSeedStream(seed)) return { carrier: seed, method: seed.fork() };
  const s = checkSeed(seed);
  return { carrier: new SeedStream(s), method: new SeedStream(s).fork() };
}

/**
 * Resolves and checks the carrier sampler of `method`: a registered fixed-step SDE sampler. INVALID_ARGUMENT naming
 * 'sampler' for an adaptive or noise-level one, and naming 'samplerOptions.<key>' for a key the method sets itself.
 */
export function resolveCarrier(opts: ConditionalSampleOptions, method: string, fallback = 'pc'): Carrier {
  const name = opts.sampler ?? fallback;
  if (typeof name !== 'string') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sampler: expected a registered sampler name (e.g. 'pc'), got ${describeValue(name)}`,
      {
        argument: 'sampler',
      },
    );
  }
  const entry = samplerEntry(name);
  if (!entry) {
    getSampler(name); // throws UNKNOWN_NAME with a did-you-mean
    throw new SbmError('UNKNOWN_NAME', `sampler: unknown sampler ${JSON.stringify(name)}`, { argument: 'sampler' });
  }
  const canonical = entry.name;
  const keys = entry.options ?? [];
  if (ADAPTIVE.has(canonical) || NOISE_LEVEL.has(canonical)) {
    const why = ADAPTIVE.has(canonical)
      ? 'chooses its steps adaptively, so there is no fixed step to project after'
      : 'runs on the noise levels of a noise-conditional score, not on an SDE time grid';
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sampler: method "${method}" needs a fixed-step SDE sampler ('pc', 'em', 'euler', 'dpm-solver', 'unipc', 'ddim', ...), got "${name}", which ${why}`,
      { argument: 'sampler' },
    );
  }
  const hook = keys.includes('project') ? 'project' : keys.includes('afterStep') ? 'afterStep' : undefined;
  if (!hook || !keys.includes('init')) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sampler: method "${method}" needs a sampler that takes a per-step hook ('project' or 'afterStep') and 'init', got "${name}", whose options are ${keys.length ? keys.join(', ') : 'not declared'}`,
      { argument: 'sampler' },
    );
  }
  const so = opts.samplerOptions ?? {};
  for (const k of RESERVED) {
    if (k in so && so[k] !== undefined) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `samplerOptions.${k}: method "${method}" sets ${k} on its sampler itself${k === 'sde' || k === 'score' || k === 'shape' || k === 'seed' || k === 'signal' || k === 'onProgress' ? ` (pass ${k} at the top level)` : ''}; remove it`,
        { argument: `samplerOptions.${k}` },
      );
    }
  }
  return { name, canonical, hook, samplerOptions: so };
}

/** Runs the carrier with the method's hook (the one `carrier.hook` names) and optional starting state. */
export function runCarrier(
  opts: ConditionalSampleOptions,
  carrier: Carrier,
  hooks: { project?: ProjectFn; afterStep?: AfterStepFn; init?: tf.Tensor; overrides?: Record<string, unknown> },
  stream: SeedStream,
): Promise<SampleResult> {
  const hook = carrier.hook === 'project' ? { project: hooks.project } : { afterStep: hooks.afterStep };
  return sample({
    sampler: carrier.name,
    ...(hooks.overrides ?? {}),
    ...carrier.samplerOptions,
    sde: opts.sde,
    score: opts.score,
    shape: opts.shape,
    seed: stream,
    signal: opts.signal,
    onProgress: opts.onProgress,
    ...hook,
    init: hooks.init,
  } as never);
}

/** The number of steps and last time the carrier will use (for methods that need the grid, e.g. the next time). */
export function carrierGrid(opts: ConditionalSampleOptions, carrier: Carrier): { steps: number; eps: number } {
  const so = carrier.samplerOptions;
  const steps = typeof so.steps === 'number' ? so.steps : opts.sde.N;
  const eps = typeof so.eps === 'number' ? so.eps : opts.sde.samplingEps;
  return { steps, eps };
}
