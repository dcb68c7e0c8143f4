import { SbmError, describeValue } from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import { emSampler, pcSampler, type EmSamplerOptions, type PcSamplerOptions } from './pc';
import { odeSampler, type OdeSamplerOptions } from './ode';
import { dpmSolverSampler, type DpmSolverOptions } from './dpm-solver';
import { edmHeunSampler, type EdmHeunOptions } from './edm-heun';
import {
  annealedLangevin,
  langevinDynamics,
  type AnnealedLangevinOptions,
  type LangevinOptions,
} from './langevin-dynamics';
import { ALD_KEYS, DPM_KEYS, EM_KEYS, HEUN_KEYS, LANGEVIN_KEYS, ODE_KEYS, PC_KEYS } from './options';
import { getSampler, registerSampler } from './registry';
import type { SampleResult } from './types';

/**
 * Sampler name → its options: what `sample()` is typed from. A plugin adds its sampler by declaration merging,
 *
 *   declare module '@sbm/samplers' { interface SamplerOptionsMap { mine: MyOptions } }
 *
 * (and registers it with `registerSampler('mine', fn, { options: [...its keys] })` for the run-time check).
 */
export interface SamplerOptionsMap {
  pc: PcSamplerOptions;
  em: EmSamplerOptions;
  ode: OdeSamplerOptions;
  'dpm-solver': DpmSolverOptions;
  /** k-diffusion's name for DPM-Solver++(2M): an alias of 'dpm-solver'. */
  dpmpp_2m: DpmSolverOptions;
  heun: EdmHeunOptions;
  ald: AnnealedLangevinOptions;
  langevin: LangevinOptions;
}

export type SamplerName = keyof SamplerOptionsMap;

/**
 * Options of `sample`: `sampler` picks the sampler (default 'pc'); the rest are exactly that sampler's options, so a
 * misspelt key (`stpes`), another library's name (`num_inference_steps`) or an unknown sampler fails to compile.
 */
export type SampleOptions =
  | ({ sampler?: 'pc' } & PcSamplerOptions)
  | { [N in Exclude<SamplerName, 'pc'>]: { sampler: N } & SamplerOptionsMap[N] }[Exclude<SamplerName, 'pc'>];

/**
 * One entry point for every registered sampler: `sample({ sampler: 'pc', sde, score, shape, seed, ... })` resolves to
 * `{ samples, stats: { sampler, nfe, steps, ms } }`. Default sampler: 'pc'. Unknown option keys are rejected at run
 * time too (INVALID_ARGUMENT with a did-you-mean), and an unknown sampler name with UNKNOWN_NAME.
 */
export async function sample(opts: SampleOptions): Promise<SampleResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `sample: options: expected an object, got ${describeValue(opts)}`);
  }
  const { sampler, ...rest } = opts as { sampler?: string };
  return getSampler(sampler ?? 'pc')(rest);
}

const BUILT_IN = { ifAbsent: true, source: `${pkgName}@${pkgVersion}` };
registerSampler('pc', (o: PcSamplerOptions) => pcSampler(o, 'pc'), {
  ...BUILT_IN,
  options: PC_KEYS,
  description: 'predictor–corrector (Song et al. 2021, Algorithm 1)',
});
registerSampler('em', (o: EmSamplerOptions) => emSampler(o), {
  ...BUILT_IN,
  options: EM_KEYS,
  description: 'Euler–Maruyama on the reverse SDE',
});
registerSampler('ode', (o: OdeSamplerOptions) => odeSampler(o, 'ode'), {
  ...BUILT_IN,
  options: ODE_KEYS,
  description: 'probability-flow ODE (RK45 or fixed-step)',
});
registerSampler('dpm-solver', (o: DpmSolverOptions) => dpmSolverSampler(o, 'dpm-solver'), {
  ...BUILT_IN,
  options: DPM_KEYS,
  aliases: ['dpmpp_2m'],
  description: 'DPM-Solver++(2M) (Lu et al. 2022b)',
});
registerSampler('heun', (o: EdmHeunOptions) => edmHeunSampler(o, 'heun'), {
  ...BUILT_IN,
  options: HEUN_KEYS,
  description: 'EDM deterministic Heun (Karras et al. 2022, Algorithm 1)',
});
registerSampler('ald', (o: AnnealedLangevinOptions) => annealedLangevin(o, 'ald'), {
  ...BUILT_IN,
  options: ALD_KEYS,
  description: 'annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1)',
});
registerSampler('langevin', (o: LangevinOptions) => langevinDynamics(o, 'langevin'), {
  ...BUILT_IN,
  options: LANGEVIN_KEYS,
  description: 'Langevin dynamics at one noise level',
});
