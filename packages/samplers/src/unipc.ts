import { GRID, optionKeys } from './options';
import type { GridSamplerOptions } from './solver';
import type { SampleResult } from './types';

// ---- pending (issue 13 helpers): each replaces its placeholder body -------------------------------------------------

export interface UniPcOptions extends GridSamplerOptions {
  /** Order p of the predictor (default 2; UniC raises the convergence order to p + 1). */
  order?: 1 | 2 | 3;
  /** B(h) of Zhao et al. 2023: 'bh1' or 'bh2' (default). */
  variant?: 'bh1' | 'bh2';
}
export const UNIPC_KEYS = optionKeys<UniPcOptions>()([...GRID, 'order', 'variant']);
export async function uniPcSampler(opts: UniPcOptions, name = 'unipc'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}

export interface DdimOptions extends GridSamplerOptions {
  /** η of Song, Meng & Ermon 2021 (0: deterministic DDIM, 1: DDPM-like ancestral; default 0). */
  eta?: number;
}
export const DDIM_KEYS = optionKeys<DdimOptions>()([...GRID, 'eta']);
export async function ddimSampler(opts: DdimOptions, name = 'ddim'): Promise<SampleResult> {
  void opts;
  throw new Error(`${name}: pending`);
}
