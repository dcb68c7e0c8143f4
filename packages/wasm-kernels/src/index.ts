export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './register';
export { prepareSimdKernels as prepareWasmKernels } from './simd';
import { instantiateSimd, setSimdEnabled, simdActive, simdModuleBytes } from './simd';
import { setMaxColFloats } from './conv2d_backprop_filter';
import { setBackpropInputStrategy } from './conv2d_backprop_input';

/** Internal switches for tests and benchmarks (not part of the supported API). */
export const _internals = {
  setMaxColFloats,
  setBackpropInputStrategy,
  setSimdEnabled,
  simdActive,
  instantiateSimd,
  simdModuleBytes,
};
