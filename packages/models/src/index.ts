export { gaussianFourierProjection, sinusoidalEmbedding } from './embeddings';
export type { EmbeddingConfig } from './embeddings';
export {
  swish,
  groupNorm,
  groupNormSwish,
  dense,
  conv2d,
  conv2dTranspose,
  upsampleNearest2x,
  avgPool2x,
  dropout,
} from './layers';
export { ScoreModel } from './model';
export type { ModelConfig, ApplyOptions, ForwardContext } from './model';
export { ParamStore, torchDefaultInit, varianceScalingInit } from './params';
export type { NamedWeight, Init } from './params';
export { MlpScoreModel } from './mlp';
export type { MlpConfig } from './mlp';
export { ScoreNet } from './scorenet';
export type { ScoreNetConfig } from './scorenet';
export { NcsnppModel } from './ncsnpp';
export type { NcsnppConfig } from './ncsnpp';
export { ScoreSdeNcsnpp } from './score-sde-ncsnpp';
export type { ScoreSdeNcsnppConfig } from './score-sde-ncsnpp';
export {
  upfirdn2d,
  setupFirKernel,
  firUpsample2d,
  firDownsample2d,
  convDownsample2d,
  upsampleConv2d,
} from './up-or-down-sampling';
export { registerModel, unregisterModel, listModels, modelFromConfig } from './registry';
export type { ModelFactory } from './registry';
export { createScoreFn, defaultParameterization } from './score-fn';
export type { Parameterization, ScoreFnOptions } from './score-fn';
export { ExponentialMovingAverage } from './ema';
export type { EmaOptions } from './ema';
