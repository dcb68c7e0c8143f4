export { slicedWasserstein, mmd, mmd2, medianHeuristic, w2Squared1d } from './distances';
export type { SlicedWassersteinOptions, MmdOptions } from './distances';
export { sampleMean, sampleCovariance, sampleMoments } from './samples';
export type { SampleSet } from './samples';
export { jacobiEigen, symmetricEigen, fromEigen, cholesky } from './linalg';
export type { Matrix } from './linalg';
export { frechetDistance, sqrtPsd } from './frechet';
export type { VectorLike, MatrixLike } from './frechet';
export {
  psnr,
  psnrPerImage,
  psnrSummary,
  ssim,
  ssimPerImage,
  ssimSummary,
  summarizeValues,
  gaussianWindow1d,
} from './image';
export type { ImageInput, PsnrOptions, SsimOptions, ImageMetricSummary } from './image';
