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
import {
  EULER_ANCESTRAL_KEYS,
  EULER_KEYS,
  DPM2_ANCESTRAL_KEYS,
  DPM2_KEYS,
  LMS_KEYS,
  dpm2AncestralSampler,
  dpm2Sampler,
  eulerAncestralSampler,
  eulerSampler,
  lmsSampler,
  type Dpm2AncestralOptions,
  type Dpm2Options,
  type EulerAncestralOptions,
  type EulerOptions,
  type LmsOptions,
} from './k-diffusion';
import {
  DPMPP_2S_ANCESTRAL_KEYS,
  DPMPP_MSDE_KEYS,
  DPMPP_SDE_KEYS,
  DPM_ADAPTIVE_KEYS,
  DPM_FAST_KEYS,
  dpmAdaptiveSampler,
  dpmFastSampler,
  dpmpp2mSdeSampler,
  dpmpp2sAncestralSampler,
  dpmpp3mSdeSampler,
  dpmppSdeSampler,
  type DpmAdaptiveOptions,
  type DpmFastOptions,
  type Dpmpp2sAncestralOptions,
  type DpmppMultistepSdeOptions,
  type DpmppSdeOptions,
} from './dpm-solver-pp';
import { DDIM_KEYS, UNIPC_KEYS, ddimSampler, uniPcSampler, type DdimOptions, type UniPcOptions } from './unipc';
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
  /** DPM-Solver++(3M): 'dpm-solver' with order 3 (alias dpmpp_3m). */
  'dpmpp-3m': DpmSolverOptions;
  dpmpp_3m: DpmSolverOptions;
  heun: EdmHeunOptions;
  euler: EulerOptions;
  'euler-ancestral': EulerAncestralOptions;
  euler_ancestral: EulerAncestralOptions;
  dpm2: Dpm2Options;
  dpm_2: Dpm2Options;
  'dpm2-ancestral': Dpm2AncestralOptions;
  dpm_2_ancestral: Dpm2AncestralOptions;
  lms: LmsOptions;
  'dpmpp-2s-ancestral': Dpmpp2sAncestralOptions;
  dpmpp_2s_ancestral: Dpmpp2sAncestralOptions;
  'dpmpp-sde': DpmppSdeOptions;
  dpmpp_sde: DpmppSdeOptions;
  'dpmpp-2m-sde': DpmppMultistepSdeOptions;
  dpmpp_2m_sde: DpmppMultistepSdeOptions;
  'dpmpp-3m-sde': DpmppMultistepSdeOptions;
  dpmpp_3m_sde: DpmppMultistepSdeOptions;
  'dpm-fast': DpmFastOptions;
  dpm_fast: DpmFastOptions;
  'dpm-adaptive': DpmAdaptiveOptions;
  dpm_adaptive: DpmAdaptiveOptions;
  unipc: UniPcOptions;
  ddim: DdimOptions;
  ald: AnnealedLangevinOptions;
  langevin: LangevinOptions;
}

export type SamplerName = keyof SamplerOptionsMap;

/**
 * The sampler `sample()` uses without a `sampler` name (and `sbm sample` without `--sampler`), from the measurements
 * at 20 NFE in BENCHMARKS.md: DPM-Solver++(3M) SDE (η = 1, logsnr-uniform, 20 steps = 20 NFE). On the MNIST ScoreNet
 * it had the best MNIST-FD of every solver at 20 NFE (41.6 against 56.2–57.6 for the ODE solvers unipc, dpmpp-3m and
 * lms, and 35.2 for PC with 1000 steps), and on the Gaussian-mixture oracle its samples are at the sliced-W2 floor at
 * 20 NFE (0.88–1.20 × floor). The ODE solvers follow the probability-flow map; a learned score's errors accumulate
 * along it, which the SDE's noise partly corrects. For the most accurate deterministic map (exact scores,
 * encode / decode, likelihood-consistent samples) use 'unipc' (max error 7.4e-4 at 20 NFE on the 2-D Gaussian).
 * It was 'pc' (1000 steps of predictor–corrector) before; pass `sampler: 'pc'` for score_sde's sampler.
 */
export const DEFAULT_SAMPLER = 'dpmpp-3m-sde' as const;

/**
 * Options of `sample`: `sampler` picks the sampler (default DEFAULT_SAMPLER, 'dpmpp-3m-sde'); the rest are exactly that
 * sampler's options, so a misspelt key (`stpes`), another library's name (`num_inference_steps`) or an unknown
 * sampler fails to compile.
 */
export type SampleOptions =
  | ({ sampler?: typeof DEFAULT_SAMPLER } & SamplerOptionsMap[typeof DEFAULT_SAMPLER])
  | {
      [N in Exclude<SamplerName, typeof DEFAULT_SAMPLER>]: { sampler: N } & SamplerOptionsMap[N];
    }[Exclude<SamplerName, typeof DEFAULT_SAMPLER>];

/**
 * One entry point for every registered sampler: `sample({ sampler: 'pc', sde, score, shape, seed, ... })` resolves to
 * `{ samples, stats: { sampler, nfe, steps, ms } }`. Default sampler: DEFAULT_SAMPLER ('dpmpp-3m-sde'). Unknown option keys are rejected at run
 * time too (INVALID_ARGUMENT with a did-you-mean), and an unknown sampler name with UNKNOWN_NAME.
 */
export async function sample(opts: SampleOptions): Promise<SampleResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `sample: options: expected an object, got ${describeValue(opts)}`);
  }
  const { sampler, ...rest } = opts as { sampler?: string };
  return getSampler(sampler ?? DEFAULT_SAMPLER)(rest);
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
registerSampler('dpmpp-3m', (o: DpmSolverOptions) => dpmSolverSampler({ order: 3, ...o }, 'dpmpp-3m'), {
  ...BUILT_IN,
  options: DPM_KEYS,
  aliases: ['dpmpp_3m'],
  description: 'DPM-Solver++(3M) (Lu et al. 2022b): dpm-solver with order 3',
});

// The k-diffusion family (Crowson's k-diffusion sampling.py names as aliases).
registerSampler('euler', (o: EulerOptions) => eulerSampler(o, 'euler'), {
  ...BUILT_IN,
  options: EULER_KEYS,
  description: 'Euler in σ (k-diffusion sample_euler; EDM churn optional)',
});
registerSampler('euler-ancestral', (o: EulerAncestralOptions) => eulerAncestralSampler(o, 'euler-ancestral'), {
  ...BUILT_IN,
  options: EULER_ANCESTRAL_KEYS,
  aliases: ['euler_ancestral'],
  description: 'Euler ancestral with η (k-diffusion sample_euler_ancestral)',
});
registerSampler('dpm2', (o: Dpm2Options) => dpm2Sampler(o, 'dpm2'), {
  ...BUILT_IN,
  options: DPM2_KEYS,
  aliases: ['dpm_2'],
  description: 'DPM-Solver-2 in σ (k-diffusion sample_dpm_2)',
});
registerSampler('dpm2-ancestral', (o: Dpm2AncestralOptions) => dpm2AncestralSampler(o, 'dpm2-ancestral'), {
  ...BUILT_IN,
  options: DPM2_ANCESTRAL_KEYS,
  aliases: ['dpm_2_ancestral'],
  description: 'DPM-Solver-2 ancestral (k-diffusion sample_dpm_2_ancestral)',
});
registerSampler('lms', (o: LmsOptions) => lmsSampler(o, 'lms'), {
  ...BUILT_IN,
  options: LMS_KEYS,
  description: 'linear multistep in σ, order 4 (k-diffusion sample_lms)',
});

// The DPM-Solver family.
registerSampler(
  'dpmpp-2s-ancestral',
  (o: Dpmpp2sAncestralOptions) => dpmpp2sAncestralSampler(o, 'dpmpp-2s-ancestral'),
  {
    ...BUILT_IN,
    options: DPMPP_2S_ANCESTRAL_KEYS,
    aliases: ['dpmpp_2s_ancestral'],
    description: 'DPM-Solver++(2S) ancestral (k-diffusion sample_dpmpp_2s_ancestral)',
  },
);
registerSampler('dpmpp-sde', (o: DpmppSdeOptions) => dpmppSdeSampler(o, 'dpmpp-sde'), {
  ...BUILT_IN,
  options: DPMPP_SDE_KEYS,
  aliases: ['dpmpp_sde'],
  description: 'DPM-Solver++ SDE, 2 stages (k-diffusion sample_dpmpp_sde)',
});
registerSampler('dpmpp-2m-sde', (o: DpmppMultistepSdeOptions) => dpmpp2mSdeSampler(o, 'dpmpp-2m-sde'), {
  ...BUILT_IN,
  options: DPMPP_MSDE_KEYS,
  aliases: ['dpmpp_2m_sde'],
  description: 'DPM-Solver++(2M) SDE (k-diffusion sample_dpmpp_2m_sde)',
});
registerSampler('dpmpp-3m-sde', (o: DpmppMultistepSdeOptions) => dpmpp3mSdeSampler(o, 'dpmpp-3m-sde'), {
  ...BUILT_IN,
  options: DPMPP_MSDE_KEYS,
  aliases: ['dpmpp_3m_sde'],
  description: 'DPM-Solver++(3M) SDE (k-diffusion sample_dpmpp_3m_sde)',
});
registerSampler('dpm-fast', (o: DpmFastOptions) => dpmFastSampler(o, 'dpm-fast'), {
  ...BUILT_IN,
  options: DPM_FAST_KEYS,
  aliases: ['dpm_fast'],
  description:
    'DPM-Solver fast: singlestep orders 3/2/1 for an NFE budget (Lu et al. 2022a; k-diffusion sample_dpm_fast)',
});
registerSampler('dpm-adaptive', (o: DpmAdaptiveOptions) => dpmAdaptiveSampler(o, 'dpm-adaptive'), {
  ...BUILT_IN,
  options: DPM_ADAPTIVE_KEYS,
  aliases: ['dpm_adaptive'],
  description: 'DPM-Solver adaptive step size, rtol / atol (Lu et al. 2022a; k-diffusion sample_dpm_adaptive)',
});
registerSampler('unipc', (o: UniPcOptions) => uniPcSampler(o, 'unipc'), {
  ...BUILT_IN,
  options: UNIPC_KEYS,
  description: 'UniPC, bh1 / bh2, orders 1–3 (Zhao et al. 2023)',
});
registerSampler('ddim', (o: DdimOptions) => ddimSampler(o, 'ddim'), {
  ...BUILT_IN,
  options: DDIM_KEYS,
  description: 'DDIM with η (Song, Meng & Ermon 2021)',
});
