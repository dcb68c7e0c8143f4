export { sample, DEFAULT_SAMPLER } from './sample';
// The shared loop (validation, tidy/dispose, progress, abort, NaN watch, afterStep) for samplers written elsewhere
// (@sbm/inverse-problems' DPS and RePaint, plugins).
export { Sampler, checkSdeOptions, initialState } from './loop';
export type { State as SamplerState } from './loop';
export type { SampleOptions, SamplerOptionsMap, SamplerName } from './sample';
export { pcSampler, emSampler, sdeWithSteps } from './pc';
export type { PcSamplerOptions, EmSamplerOptions } from './pc';
export { odeSampler } from './ode';
export type { OdeSamplerOptions } from './ode';
export { dpmSolverSampler, dpmSolverGrid } from './dpm-solver';
export type { DpmSolverOptions } from './dpm-solver';
export { edmHeunSampler, edmSigmas } from './edm-heun';
export type { EdmHeunOptions } from './edm-heun';
export { makeGrid, scheduleName, SCHEDULES } from './grid';
export type { Grid, Schedule, ScheduleName, ScheduleSpec } from './grid';
export { GridModel, setupGridSampler, runGrid } from './solver';
export type { GridSamplerOptions, TimePoint } from './solver';
export { eulerSampler, eulerAncestralSampler, dpm2Sampler, dpm2AncestralSampler, lmsSampler } from './k-diffusion';
export type { EulerOptions, EulerAncestralOptions, Dpm2Options, Dpm2AncestralOptions, LmsOptions } from './k-diffusion';
export {
  dpmpp2sAncestralSampler,
  dpmppSdeSampler,
  dpmpp2mSdeSampler,
  dpmpp3mSdeSampler,
  dpmFastSampler,
  dpmAdaptiveSampler,
} from './dpm-solver-pp';
export type {
  Dpmpp2sAncestralOptions,
  DpmppSdeOptions,
  DpmppMultistepSdeOptions,
  DpmFastOptions,
  DpmAdaptiveOptions,
} from './dpm-solver-pp';
export { uniPcSampler, ddimSampler } from './unipc';
export type { UniPcOptions, DdimOptions } from './unipc';
export { annealedLangevin, langevinDynamics, geometricSigmas, ncsnv2StepSize } from './langevin-dynamics';
export type { AnnealedLangevinOptions, LangevinOptions, NoiseScoreSource } from './langevin-dynamics';
export {
  registerPredictor,
  registerCorrector,
  registerSampler,
  unregisterPredictor,
  unregisterCorrector,
  unregisterSampler,
  getPredictor,
  getCorrector,
  getSampler,
  samplerEntry,
  listPredictors,
  listCorrectors,
  listSamplers,
} from './registry';
export type { SamplerFn, SamplerDefinition, RegisterComponentOptions, RegisterSamplerOptions } from './registry';
export { eulerMaruyama } from './predictors/euler-maruyama';
export { reverseDiffusion } from './predictors/reverse-diffusion';
export { ancestral } from './predictors/ancestral';
export { nonePredictor, noneCorrector } from './predictors/none';
export { langevinCorrector } from './correctors/langevin';
export { aldCorrector } from './correctors/ald';
export type {
  Predictor,
  PredictorFactory,
  PredictorOptions,
  Corrector,
  CorrectorFactory,
  CorrectorOptions,
  UpdateContext,
  UpdateResult,
} from './predictors/types';
export type {
  NoiseScoreFn,
  LoopOptions,
  SdeSamplerOptions,
  SampleProgress,
  TrajectoryPoint,
  SampleStats,
  SampleResult,
  AfterStepFn,
} from './types';

// What a samplers-only user needs, so that `npm i @sbm/samplers @tensorflow/tfjs` is enough: the SDEs, the
// denoiser and the error type (the same objects as @sbm/sde's and @sbm/core's, not copies).
export {
  Sde,
  ReverseSde,
  VeSde,
  VpSde,
  SubVpSde,
  TutorialVeSde,
  createSde,
  registerSde,
  unregisterSde,
  listSdes,
  isSde,
  isVeSde,
  isVpSde,
  isSubVpSde,
  isTutorialVeSde,
  dataPrediction,
  denoiser,
} from '@sbm/sde';
export type {
  ScoreFn,
  SdeConfig,
  SdeFactory,
  SdeCoefficients,
  DiscreteCoefficients,
  MarginalProb,
  MarginalScale,
  VeSdeOptions,
  VpSdeOptions,
  TutorialVeSdeOptions,
} from '@sbm/sde';
export { SbmError, isSbmError, SeedStream } from '@sbm/core';
export type { SbmErrorCode } from '@sbm/core';

// Model-output adapters (ε / x₀ / v / EDM denoiser / score networks → ScoreFn and back), classifier-free guidance
// and x̂₀ thresholding, all as ScoreFn wrappers.
export {
  fromEpsilon,
  fromX0,
  fromV,
  fromDenoiser,
  fromScore,
  toEpsilon,
  toX0,
  toV,
  cfg,
  thresholdX0,
  dynamicThresholding,
  clipX0,
  TIME_INPUTS,
} from './adapters';
export type {
  NetworkFn,
  TimeInput,
  AdapterOptions,
  ConditionalScoreFn,
  CfgOptions,
  DynamicThresholdingOptions,
} from './adapters';
