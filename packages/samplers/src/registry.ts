import { checkOptions, createRegistry, SbmError, describeValue, type RegistryEntry } from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
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

/** What the sampler registry holds: the function and the option keys it accepts (undefined: not checked). */
export interface SamplerDefinition {
  run: SamplerFn;
  options?: readonly string[];
}

/** Options of registerPredictor / registerCorrector (core's RegisterOptions without the built-ins' ifAbsent). */
export interface RegisterComponentOptions {
  override?: boolean;
  /** "package@version" of the registering package (default "user"), shown by `sbm plugins`. */
  source?: string;
  description?: string;
  /** Other names that resolve to this one (other libraries' names for exactly the same thing). */
  aliases?: readonly string[];
  /** @internal built-ins: skip when already registered (an ESM and a CJS copy in one process). */
  ifAbsent?: boolean;
}

export interface RegisterSamplerOptions extends RegisterComponentOptions {
  /**
   * Every option key the sampler accepts, besides `sampler` (e.g. ['seed', 'sde', 'score', 'shape', 'steps', 'mine']).
   * With it, `sample({ sampler: name, ... })` rejects any other key with a did-you-mean before calling the sampler;
   * without it, the sampler gets whatever it is passed and should check its options itself (core's checkOptions).
   */
  options?: readonly string[];
}

const predictors = createRegistry<PredictorFactory>('predictor', { registerName: 'registerPredictor' });
const correctors = createRegistry<CorrectorFactory>('corrector', { registerName: 'registerCorrector' });
const samplers = createRegistry<SamplerDefinition>('sampler', {
  registerName: 'registerSampler',
  isValue: (v) => v !== null && typeof v === 'object' && typeof (v as SamplerDefinition).run === 'function',
  expected: 'a function',
});

/** Registers a predictor for the PC sampler (score_sde's @register_predictor). */
export function registerPredictor(name: string, factory: PredictorFactory, opts?: RegisterComponentOptions): void {
  predictors.register(name, factory, opts);
}
/** Registers a corrector for the PC sampler (score_sde's @register_corrector). */
export function registerCorrector(name: string, factory: CorrectorFactory, opts?: RegisterComponentOptions): void {
  correctors.register(name, factory, opts);
}
/**
 * Registers a sampler under a name usable as `sample({ sampler: name, ... })`. Pass `options` (the keys it accepts)
 * for strict run-time checks, and extend `SamplerOptionsMap` by declaration merging for compile-time ones.
 */
export function registerSampler(name: string, fn: SamplerFn, opts: RegisterSamplerOptions = {}): void {
  if (typeof fn !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerSampler: sampler "${name}": expected a function, got ${describeValue(fn)}`,
      {
        argument: 'fn',
      },
    );
  }
  const { options, ...ro } = opts;
  if (options !== undefined && (!Array.isArray(options) || !options.every((k) => typeof k === 'string'))) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerSampler: options: expected the list of option keys the sampler accepts, got ${describeValue(options)}`,
      { argument: 'options' },
    );
  }
  samplers.register(name, { run: fn, options: options && [...options] }, ro);
}

/** The registered sampler `name` (or alias); with its option keys known, a call first rejects unknown keys. */
export function getSampler(name: unknown): SamplerFn {
  const def = samplers.get(name, 'sampler');
  const canonical = samplers.entry(name as string)!.name;
  return (o) => {
    if (def.options) checkOptions(o, def.options, `sample (sampler "${canonical}")`);
    return def.run(o);
  };
}
/** The canonical name, option keys and source of a registered sampler (or alias); undefined when unknown. */
export function samplerEntry(
  name: string,
): (Omit<RegistryEntry<SamplerDefinition>, 'value'> & { options?: readonly string[] }) | undefined {
  const e = samplers.entry(name);
  if (!e) return undefined;
  const { value, ...rest } = e;
  return { ...rest, options: value.options };
}
export const getPredictor = (name: unknown): PredictorFactory => predictors.get(name, 'predictor');
export const getCorrector = (name: unknown): CorrectorFactory => correctors.get(name, 'corrector');
export const listPredictors = (): string[] => predictors.list();
export const listCorrectors = (): string[] => correctors.list();
export const listSamplers = (): string[] => samplers.list();
export const unregisterPredictor = (name: string): boolean => predictors.unregister(name);
export const unregisterCorrector = (name: string): boolean => correctors.unregister(name);
export const unregisterSampler = (name: string): boolean => samplers.unregister(name);

const BUILT_IN = { ifAbsent: true, source: `${pkgName}@${pkgVersion}` };
// score_sde's registry names (sampling.py) as aliases: the same predictors and correctors exactly.
registerPredictor('euler-maruyama', eulerMaruyama, {
  ...BUILT_IN,
  aliases: ['euler_maruyama'],
  description: 'Euler–Maruyama on the reverse SDE (Song et al. 2021, eq. 6)',
});
registerPredictor('reverse-diffusion', reverseDiffusion, {
  ...BUILT_IN,
  aliases: ['reverse_diffusion'],
  description: 'the reverse of the SDE discretization (Song et al. 2021, eq. 46)',
});
registerPredictor('ancestral', ancestral, {
  ...BUILT_IN,
  aliases: ['ancestral_sampling'],
  description: 'ancestral sampling of the SMLD / DDPM chains',
});
registerPredictor('none', nonePredictor, { ...BUILT_IN, description: 'no predictor (corrector-only sampling)' });
registerCorrector('langevin', langevinCorrector, {
  ...BUILT_IN,
  description: 'Langevin MCMC with the snr step rule (Song et al. 2021, Algorithm 4)',
});
registerCorrector('ald', aldCorrector, { ...BUILT_IN, description: 'annealed-Langevin step rule ε = 2 α (r σ_t)²' });
registerCorrector('none', noneCorrector, { ...BUILT_IN, description: 'no corrector' });
