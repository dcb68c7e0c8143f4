export { sample } from './sample';
export type { SampleOptions } from './sample';
export { pcSampler, emSampler, sdeWithSteps } from './pc';
export type { PcSamplerOptions } from './pc';
export { odeSampler } from './ode';
export type { OdeSamplerOptions } from './ode';
export { dpmSolverSampler, dpmSolverGrid } from './dpm-solver';
export type { DpmSolverOptions } from './dpm-solver';
export { edmHeunSampler, edmSigmas } from './edm-heun';
export type { EdmHeunOptions } from './edm-heun';
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
  listPredictors,
  listCorrectors,
  listSamplers,
} from './registry';
export type { SamplerFn } from './registry';
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
} from './types';
