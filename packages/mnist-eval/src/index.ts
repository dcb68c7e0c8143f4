export { MnistClassifier, loadClassifier } from './classifier';
export type { ImageOptions, ImageRange, ClassifierOptions, Extracted } from './classifier';
// The Fréchet distance and its linear algebra live in @sbm/metrics; re-exported for code that imported them here.
export { frechetDistance, sqrtPsd, jacobiEigen, sampleMoments as moments } from '@sbm/metrics';
export type { VectorLike, MatrixLike } from '@sbm/metrics';
export { mnistQuality, featureStatistics } from './quality';
export type { FeatureStatistics, MnistQuality, MnistQualityOptions } from './quality';
export { trainClassifier } from './train';
export type { TrainClassifierOptions, TrainClassifierResult } from './train';
export { FEATURE_DIM, NUM_CLASSES, PARAM_SHAPES, PARAM_NAMES, initParams, forward } from './model';
export type { ClassifierParams } from './model';
export {
  NoisyMnistClassifier,
  loadNoisyClassifier,
  initNoisyParams,
  noisyForward,
  tutorialVeStd,
  checkNoisyParams,
  NOISY_PARAM_SHAPES,
  NOISY_PARAM_NAMES,
  NOISY_SIGMA_FLOOR,
  NOISY_FORMAT,
} from './noisy-classifier';
export type {
  NoisyClassifierParams,
  NoisyClassifierOptions,
  NoisyClassifierSde,
  NoisyAccuracyOptions,
} from './noisy-classifier';
export { trainNoisyClassifier, noisyAccuracyTable } from './train-noisy';
export type { TrainNoisyClassifierOptions, TrainNoisyClassifierResult, NoisyAccuracyRow } from './train-noisy';
