export { readPth, TorchTensor, isTorchTensor, pyGet, tensorsOf } from './pth';
export type { TorchDtype, ReadPthOptions } from './pth';
export { unpickle } from './pickle';
export type { PyDict, PyKey, PyValue, PyGlobal, UnpickleOptions } from './pickle';
export {
  configFromReference,
  loadReferenceWeights,
  importScoreSde,
  exportScoreSde,
  exportScoreSdeAsync,
  referenceScoreFn,
} from './score-sde';
export type { ReferenceConfig, ScoreSdeConfigs, ImportScoreSdeOptions, ImportedScoreSde } from './score-sde';
export {
  exportSbmModel,
  exportSbmModelAsync,
  loadSbmModel,
  readSbmModelInfo,
  SBM_MODEL_FORMAT,
  SBM_MODEL_FORMAT_VERSION,
} from './sbm-safetensors';
export type {
  SbmModelDtype,
  SbmModelMetadata,
  SbmModelInfo,
  ExportSbmModelOptions,
  LoadedSbmModel,
} from './sbm-safetensors';
