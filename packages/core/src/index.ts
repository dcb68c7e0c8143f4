export { SbmError, isSbmError, describeValue } from './errors';
export type { SbmErrorCode } from './errors';
export {
  checkNumber,
  checkChoice,
  checkTensor,
  checkFinite,
  checkFiniteAsync,
  FiniteWatch,
  checkSeed,
  checkImagePixels,
  checkFnOutput,
  withGradientCleanup,
} from './validate';
export type { NumberRule } from './validate';
export { checkDataRange } from './data-range';
export type { DataRange } from './data-range';
export { SeedStream, seedStream, isSeedStream, randomNormal, randomUniform, rademacher } from './random';
export {
  broadcastBatch,
  sampleSize,
  flattenBatch,
  unflattenBatch,
  perSampleNorm,
  perSampleSum,
  perSampleMean,
  perSampleDot,
  fillTime,
  FUSED_GROUP_NORM,
  FUSED_ADAM,
  FUSED_EMA,
  FUSED_GROUP_NORM_GRAD,
} from './tensor';
export { countTensors, withLeakCheck, disposeAll } from './leak';
export { throwIfAborted, yieldToEventLoop, now } from './loop';
export { createRegistry, listRegistered, brand, hasBrand } from './registry';
export type { Registry, RegistryEntry, RegisterOptions, RegistryOptions } from './registry';
export { suggestName, didYouMean, editDistance, checkOptions, OPTION_ALIASES } from './suggest';
export {
  registerBackend,
  removeBackend,
  listBackends,
  selectBackend,
  useBackend,
  getBackend,
  makeBackend,
  backendReason,
  startCpuBackend,
  initRegisteredBackend,
} from './backend';
export type {
  Backend,
  BackendKind,
  BackendCapabilities,
  BackendFactory,
  BackendFactoryContext,
  BackendParts,
  BackendSelection,
  SelectionAttempt,
  CheckpointStorage,
  CheckpointLock,
  CheckpointLockHolder,
  CheckpointLockOptions,
  ImageOutput,
} from './backend';
