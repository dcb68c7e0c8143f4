export { logLikelihood } from './likelihood';
export type { LikelihoodOptions, LikelihoodResult } from './likelihood';
export { bitsPerDim, bpdOffset, dequantize } from './bits-per-dim';
export type { DataRange } from './bits-per-dim';
export { DIVERGENCE_METHODS } from './divergence';
export type { DivergenceMethod } from './divergence';
