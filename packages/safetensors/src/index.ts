export {
  encodeSafetensors,
  encodeSafetensorsAsync,
  encodeSafetensorsRaw,
  decodeSafetensors,
  decodeSafetensorsRaw,
  readSafetensorsHeader,
  tfDtypeOf,
  SAFETENSORS_DTYPES,
  MAX_HEADER_BYTES,
} from './safetensors';
export type {
  SafetensorsDtype,
  TfDtype,
  RawTensor,
  RawEntry,
  TensorEntry,
  TensorInput,
  EncodeOptions,
  Decoded,
  DecodedRaw,
} from './safetensors';
export { float32ToFloat16Bits, float16BitsToFloat32, float32ToBfloat16Bits, bfloat16BitsToFloat32 } from './float16';
