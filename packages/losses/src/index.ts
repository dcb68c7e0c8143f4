export { dsmLoss, dsmLossPerSample, tutorialDsmLoss } from './dsm';
export type { DsmOptions, DsmWeighting } from './dsm';
export { smldLoss, smldLossPerSample, ddpmLoss, ddpmLossPerSample, ddpmAlphasCumprod } from './discrete';
export type { NoiseConditionalScoreModel, EpsilonModel, DiscreteLossOptions } from './discrete';
export {
  slicedScoreMatchingLoss,
  slicedScoreMatchingLossPerSample,
  implicitScoreMatchingLoss,
  implicitScoreMatchingLossPerSample,
} from './score-matching';
export type {
  Projection,
  ScoreMatchingWeighting,
  ScoreMatchingOptions,
  SlicedScoreMatchingOptions,
  ImplicitScoreMatchingOptions,
} from './score-matching';
export type { Reduction } from './internal';
export { registerLoss, unregisterLoss, getLoss, listLosses, lossEntries } from './registry';
export type { Loss, LossContext, LossFn, LossModelInterface, RegisterLossOptions } from './registry';
