import { SbmError, describeValue } from '@sbm/core';
import { emSampler, pcSampler, type PcSamplerOptions } from './pc';
import { odeSampler, type OdeSamplerOptions } from './ode';
import { dpmSolverSampler, type DpmSolverOptions } from './dpm-solver';
import { edmHeunSampler, type EdmHeunOptions } from './edm-heun';
import {
  annealedLangevin,
  langevinDynamics,
  type AnnealedLangevinOptions,
  type LangevinOptions,
} from './langevin-dynamics';
import { getSampler, registerSampler } from './registry';
import type { SampleResult } from './types';

/** Options of `sample`: `sampler` picks the registered sampler; the rest are that sampler's options. */
export type SampleOptions =
  | ({ sampler?: 'pc' } & PcSamplerOptions)
  | ({ sampler: 'em' } & PcSamplerOptions)
  | ({ sampler: 'ode' } & OdeSamplerOptions)
  | ({ sampler: 'dpm-solver' } & DpmSolverOptions)
  | ({ sampler: 'heun' } & EdmHeunOptions)
  | ({ sampler: 'ald' } & AnnealedLangevinOptions)
  | ({ sampler: 'langevin' } & LangevinOptions)
  | ({ sampler: string } & Record<string, unknown> & { seed: number });

/**
 * One entry point for every registered sampler: `sample({ sampler: 'pc', sde, score, shape, seed, ... })` resolves to
 * `{ samples, stats: { sampler, nfe, steps, ms } }`. Default sampler: 'pc'.
 */
export async function sample(opts: SampleOptions): Promise<SampleResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `sample: options: expected an object, got ${describeValue(opts)}`);
  }
  const name = opts.sampler ?? 'pc';
  const fn = getSampler(name);
  return fn(opts);
}

registerSampler('pc', (o: PcSamplerOptions) => pcSampler(o, 'pc'));
registerSampler('em', (o: PcSamplerOptions) => emSampler(o));
registerSampler('ode', (o: OdeSamplerOptions) => odeSampler(o, 'ode'));
registerSampler('dpm-solver', (o: DpmSolverOptions) => dpmSolverSampler(o, 'dpm-solver'));
registerSampler('heun', (o: EdmHeunOptions) => edmHeunSampler(o, 'heun'));
registerSampler('ald', (o: AnnealedLangevinOptions) => annealedLangevin(o, 'ald'));
registerSampler('langevin', (o: LangevinOptions) => langevinDynamics(o, 'langevin'));
