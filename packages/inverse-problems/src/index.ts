// Operators: y = A x (+ σ_y n), with adjoints that pass the dot-product test.
export { adjointTest, checkOperator, checkBatchShape, inSize, outSize } from './operator';
export { registerOperator, createOperator, listOperators, unregisterOperator } from './operator-registry';
export type { LinearOperator, DecoupledForm, AdjointTestOptions, AdjointTestResult } from './operator';
export type { OperatorFactory } from './operator-registry';
export { maskOperator } from './operators/mask';
export type { MaskOperatorOptions, MaskOperator } from './operators/mask';
export { grayscaleOperator, decoupleColors, coupleColors, COLOR_DECOUPLE_MATRIX } from './operators/grayscale';
export type { GrayscaleOperatorOptions, GrayscaleOperator } from './operators/grayscale';
export { downsampleOperator } from './operators/downsample';
export type { DownsampleOperatorOptions, DownsampleOperator } from './operators/downsample';
export { gaussianOperator } from './operators/gaussian';
export type { GaussianOperatorOptions, GaussianOperator } from './operators/gaussian';
export { denseOperator, matrixOperator, materialize, withPinv } from './operators/dense';
export type { DenseOperatorOptions } from './operators/dense';
export { radonOperator, filteredBackProjection, radonGeometry } from './operators/radon';
export type { RadonOperatorOptions, RadonGeometry, FilteredBackProjectionOptions } from './operators/radon';
export { mriOperator, zeroFilledInverse, mriColumnMask } from './operators/mri';
export type { MriOperatorOptions, MriColumnMaskOptions } from './operators/mri';
export { namedMask, namedPixelMask, MASK_NAMES } from './masks';
export type { MaskName, NamedMaskOptions } from './masks';
// Classical reconstructions the methods are compared with.
export { registerBaseline, unregisterBaseline, listBaselines, baselinesFor, runBaseline } from './baselines';
export type { BaselineFn, BaselineOptions } from './baselines';
export { pseudoInverse, symmetricEigen } from './linalg';

// Conditional sampling.
export { conditionalSample } from './conditional-sample';
export { posteriorMean } from './posterior-mean';
export type { PosteriorMeanOptions, PosteriorMeanResult, PosteriorMeanStats } from './posterior-mean';
export {
  registerMethod,
  getMethod,
  listMethods,
  unregisterMethod,
  measurementResidual,
  checkCommon,
  COMMON_KEYS,
} from './method-registry';
export type {
  ConditionalSampleOptions,
  ConditionalResult,
  ConditionalStats,
  MethodDefinition,
  TimeClassifierFn,
} from './types';
export { projectState, projectionMethod } from './methods/projection';
export type { ProjectionOptions, ProjectionStats } from './methods/projection';
export { lambdaStep, lambdaProjectionMethod } from './methods/lambda-projection';
export type { LambdaProjectionOptions, LambdaProjectionStats } from './methods/lambda-projection';
export { repaintSchedule, repaintMethod } from './methods/repaint';
export type { RepaintOptions, RepaintStats } from './methods/repaint';
export { dpsMethod } from './methods/dps';
export type { DpsOptions } from './methods/dps';
export { classifierGuidedScore, guidanceMethod } from './methods/guidance';
export type { GuidanceOptions } from './methods/guidance';
