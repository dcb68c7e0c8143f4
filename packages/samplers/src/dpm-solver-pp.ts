import { GRID, optionKeys } from './options';
import type { GridSamplerOptions } from './solver';
import type { SampleResult } from './types';

// ---- pending (issue 13 helpers): each replaces its placeholder body -------------------------------------------------

export interface Dpmpp2sAncestralOptions extends GridSamplerOptions {
  eta?: number;
  sNoise?: number;
}
export const DPMPP_2S_ANCESTRAL_KEYS = optionKeys<Dpmpp2sAncestralOptions>()([...GRID, 'eta', 'sNoise']);
export async function dpmpp2sAncestralSampler(
  opts: Dpmpp2sAncestralOptions,
  name = 'dpmpp-2s-ancestral',
): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface DpmppSdeOptions extends GridSamplerOptions {
  eta?: number;
  sNoise?: number;
  /** Midpoint position r of the 2-stage step (k-diffusion r = 1/2). */
  r?: number;
}
export const DPMPP_SDE_KEYS = optionKeys<DpmppSdeOptions>()([...GRID, 'eta', 'sNoise', 'r']);
export async function dpmppSdeSampler(opts: DpmppSdeOptions, name = 'dpmpp-sde'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface DpmppMultistepSdeOptions extends GridSamplerOptions {
  eta?: number;
  sNoise?: number;
}
export const DPMPP_MSDE_KEYS = optionKeys<DpmppMultistepSdeOptions>()([...GRID, 'eta', 'sNoise']);
export async function dpmpp2mSdeSampler(opts: DpmppMultistepSdeOptions, name = 'dpmpp-2m-sde'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}
export async function dpmpp3mSdeSampler(opts: DpmppMultistepSdeOptions, name = 'dpmpp-3m-sde'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface DpmFastOptions extends GridSamplerOptions {
  /** Stochasticity η of k-diffusion's dpm_fast (default 0). */
  eta?: number;
  sNoise?: number;
}
export const DPM_FAST_KEYS = optionKeys<DpmFastOptions>()([...GRID, 'eta', 'sNoise']);
export async function dpmFastSampler(opts: DpmFastOptions, name = 'dpm-fast'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface DpmAdaptiveOptions extends GridSamplerOptions {
  order?: 2 | 3;
  rtol?: number;
  atol?: number;
}
export const DPM_ADAPTIVE_KEYS = optionKeys<DpmAdaptiveOptions>()([...GRID, 'order', 'rtol', 'atol']);
export async function dpmAdaptiveSampler(opts: DpmAdaptiveOptions, name = 'dpm-adaptive'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}
