export { train, stepSeed } from './train';
export type { TrainOptions, TrainResult, TrainProgress, CheckpointOptions, LossFn, LossContext } from './train';
export { Adam, globalNorm, clipCoefficient, warmupLr } from './adam';
export type { AdamOptions, AdamState } from './adam';
export {
  loadCheckpoint,
  readCheckpoint,
  saveCheckpoint,
  readPointer,
  configChecksum,
  canonicalJson,
  otherSlot,
  CHECKPOINT_FORMAT_VERSION,
  POINTER_FILE,
  CONFIG_FILE,
  SLOTS,
  ARTIFACT_SETS,
} from './checkpoint';
export type {
  CheckpointConfig,
  CheckpointContents,
  CheckpointData,
  CheckpointPointer,
  LoadedCheckpoint,
  LossHistory,
  ArtifactInfo,
  Slot,
  SlotRecord,
  SlotFallback,
  ReadCheckpointOptions,
  SaveCheckpointOptions,
} from './checkpoint';
export { tensorBatchSource } from './data';
export type { BatchSource } from './data';
export { exportSafetensors, importSafetensors } from './safetensors';
export type { SafetensorsLayout, SafetensorsExportOptions, SafetensorsImportOptions } from './safetensors';
export { crc32 } from './crc32';
