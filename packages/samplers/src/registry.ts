import { SbmError, describeValue } from '@sbm/core';
import type { CorrectorFactory, PredictorFactory } from './predictors/types';
import type { SampleResult } from './types';
import { eulerMaruyama } from './predictors/euler-maruyama';
import { reverseDiffusion } from './predictors/reverse-diffusion';
import { ancestral } from './predictors/ancestral';
import { noneCorrector, nonePredictor } from './predictors/none';
import { langevinCorrector } from './correctors/langevin';
import { aldCorrector } from './correctors/ald';

/** A sampler: takes its options object (always with `seed`) and resolves to samples + stats. */
export type SamplerFn = (opts: any) => Promise<SampleResult>;

function makeRegistry<T>(kind: string) {
  const entries = new Map<string, T>();
  return {
    register(name: string, value: T, opts: { override?: boolean } = {}): void {
      if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `register${kind}: name: expected a name like "my-${kind.toLowerCase()}", got ${describeValue(name)}`,
        );
      }
      if (typeof value !== 'function') {
        throw new SbmError('INVALID_ARGUMENT', `register${kind}: expected a function, got ${describeValue(value)}`);
      }
      if (entries.has(name) && !opts.override) {
        throw new SbmError(
          'DUPLICATE_NAME',
          `register${kind}: "${name}" is already registered (pass { override: true } to replace it)`,
          {
            name,
          },
        );
      }
      entries.set(name, value);
    },
    get(name: unknown, argument: string): T {
      const v = typeof name === 'string' ? entries.get(name) : undefined;
      if (!v) {
        const known = [...entries.keys()];
        throw new SbmError(
          'UNKNOWN_NAME',
          `${argument}: expected one of ${known.map((k) => JSON.stringify(k)).join(', ')}, got ${describeValue(name)}`,
          { argument, expected: known, received: name },
        );
      }
      return v;
    },
    unregister: (name: string): boolean => entries.delete(name),
    list: (): string[] => [...entries.keys()],
  };
}

const predictors = makeRegistry<PredictorFactory>('Predictor');
const correctors = makeRegistry<CorrectorFactory>('Corrector');
const samplers = makeRegistry<SamplerFn>('Sampler');

/** Registers a predictor for the PC sampler (score_sde's @register_predictor). */
export function registerPredictor(name: string, factory: PredictorFactory, opts?: { override?: boolean }): void {
  predictors.register(name, factory, opts);
}
/** Registers a corrector for the PC sampler (score_sde's @register_corrector). */
export function registerCorrector(name: string, factory: CorrectorFactory, opts?: { override?: boolean }): void {
  correctors.register(name, factory, opts);
}
/** Registers a sampler under a name usable as `sample({ sampler: name, ... })`. */
export function registerSampler(name: string, fn: SamplerFn, opts?: { override?: boolean }): void {
  samplers.register(name, fn, opts);
}
export const getPredictor = (name: unknown): PredictorFactory => predictors.get(name, 'predictor');
export const getCorrector = (name: unknown): CorrectorFactory => correctors.get(name, 'corrector');
export const getSampler = (name: unknown): SamplerFn => samplers.get(name, 'sampler');
export const listPredictors = (): string[] => predictors.list();
export const listCorrectors = (): string[] => correctors.list();
export const listSamplers = (): string[] => samplers.list();
export const unregisterPredictor = (name: string): boolean => predictors.unregister(name);
export const unregisterCorrector = (name: string): boolean => correctors.unregister(name);
export const unregisterSampler = (name: string): boolean => samplers.unregister(name);

registerPredictor('euler-maruyama', eulerMaruyama);
registerPredictor('reverse-diffusion', reverseDiffusion);
registerPredictor('ancestral', ancestral);
registerPredictor('none', nonePredictor);
registerCorrector('langevin', langevinCorrector);
registerCorrector('ald', aldCorrector);
registerCorrector('none', noneCorrector);
