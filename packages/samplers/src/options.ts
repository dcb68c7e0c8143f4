/**
 * The option keys each built-in sampler accepts, for the run-time strict check (core's checkOptions): the types stop
 * a misspelt key at compile time, these lists stop it from JavaScript, JSON configs and `as` casts. `optionKeys<T>()`
 * makes the compiler prove each list names every key of its options type and nothing else, so a new option cannot be
 * added to an interface and forgotten here (it would be rejected at run time).
 */
import type { LoopOptions, SdeSamplerOptions } from './types';
import type { EmSamplerOptions, PcSamplerOptions } from './pc';
import type { OdeSamplerOptions } from './ode';
import type { DpmSolverOptions } from './dpm-solver';
import type { EdmHeunOptions } from './edm-heun';
import type { GridSamplerOptions } from './solver';
import type { AnnealedLangevinOptions, LangevinOptions } from './langevin-dynamics';

type Missing<T, K extends readonly PropertyKey[]> = Exclude<keyof T, K[number]>;

/** `optionKeys<T>()([...])`: a compile error unless the list holds exactly the keys of T. */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    keys: K & ([Missing<T, K>] extends [never] ? unknown : { missingKeys: Missing<T, K> }),
  ): readonly string[] => keys;
}

const LOOP = ['seed', 'signal', 'onProgress', 'onTrajectory', 'trajectoryEvery', 'yieldEvery', 'afterStep'] as const;
const SDE = [...LOOP, 'sde', 'score', 'shape', 'steps', 'eps', 'init'] as const;

/** The keys of every fixed-grid solver; each adds its own. */
export const GRID = [...SDE, 'schedule', 'denoiseToZero'] as const;

export const LOOP_KEYS = optionKeys<LoopOptions>()(LOOP);
export const SDE_KEYS = optionKeys<SdeSamplerOptions>()(SDE);
export const GRID_KEYS = optionKeys<GridSamplerOptions>()(GRID);
export const PC_KEYS = optionKeys<PcSamplerOptions>()([
  ...SDE,
  'predictor',
  'corrector',
  'snr',
  'correctorSteps',
  'probabilityFlow',
  'denoise',
  'denoiseToZero',
  'project',
]);
export const EM_KEYS = optionKeys<EmSamplerOptions>()([...SDE, 'probabilityFlow', 'denoise', 'denoiseToZero']);
export const ODE_KEYS = optionKeys<OdeSamplerOptions>()([...SDE, 'method', 'rtol', 'atol', 'denoise']);
export const DPM_KEYS = optionKeys<DpmSolverOptions>()([...GRID, 'order', 'skipType', 'lowerOrderFinal']);
export const HEUN_KEYS = optionKeys<EdmHeunOptions>()([
  ...SDE,
  'rho',
  'sigmaMin',
  'sigmaMax',
  'schedule',
  'sChurn',
  'sTmin',
  'sTmax',
  'sNoise',
]);
export const ALD_KEYS = optionKeys<AnnealedLangevinOptions>()([
  ...LOOP,
  'score',
  'sde',
  'shape',
  'sigmas',
  'sigmaMax',
  'sigmaMin',
  'levels',
  'stepsPerLevel',
  'stepSize',
  'stepRule',
  'denoise',
  'init',
]);
export const LANGEVIN_KEYS = optionKeys<LangevinOptions>()([
  ...LOOP,
  'score',
  'sde',
  'shape',
  'sigma',
  'steps',
  'stepSize',
  'snr',
  'init',
  'initStd',
]);
