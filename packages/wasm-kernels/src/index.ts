export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './register';
export { prepareSimdKernels as prepareWasmKernels, type PrepareOptions as PrepareWasmKernelsOptions } from './simd';
import { instantiateSimd, setPoolEnabled, setSimdEnabled, simdActive, simdModuleBytes, simdThreads } from './simd';
import { createPool } from './pool';
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
  setPoolEnabled,
  simdThreads,
  createPool,
};
