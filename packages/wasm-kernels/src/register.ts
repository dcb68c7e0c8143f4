import * as tf from '@tensorflow/tfjs';
// Importing the backend registers its kernels first, so ours always replace its Conv2DBackpropInput and never
// get overwritten by a later import of the backend.
import '@tensorflow/tfjs-backend-wasm';
import { batchMatMul, setOriginalBatchMatMul } from './batch_mat_mul';
import { conv2DBackpropFilter } from './conv2d_backprop_filter';
import { conv2DBackpropInput } from './conv2d_backprop_input';
import { FUSED_GROUP_NORM, groupNormKernel } from './group_norm';
import { FUSED_ADAM, adamKernel } from './adam';
import { FUSED_EMA, emaKernel } from './ema';
import { FUSED_GROUP_NORM_GRAD, groupNormGradConfig, groupNormGradKernel } from './group_norm_grad';
import { depthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropInput } from './depthwise';
import { unsortedSegmentSum } from './unsorted_segment_sum';
import { setOriginalSplitV, splitV } from './split_v';
import { concat, setOriginalConcat } from './concat';
import type { KernelArgs } from './wasm';

type Impl = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Kernels that gradients of conv nets need on wasm and that tfjs-backend-wasm 4.22 lacks (Conv2DBackpropFilter,
 * the depthwise backprops, UnsortedSegmentSum) or runs as a naive scalar loop (Conv2DBackpropInput, and
 * BatchMatMul with a transposed operand — the form every dense-layer gradient takes).
 * Everything else those gradients call (Conv2D, BatchMatMul, Transpose, Sigmoid, Softmax, Sin/Cos, Sqrt, Mean,
 * ...) is already registered for 'wasm' — checked by the package's training-step test.
 */
const KERNELS: Record<string, Impl> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dNativeBackpropFilter,
  UnsortedSegmentSum: unsortedSegmentSum,
  BatchMatMul: batchMatMul,
  // Wrapped: one pass for float32 / int32 (concat gradients); other dtypes go to the backend's SplitV.
  SplitV: splitV as unknown as Impl,
  // Wrapped: float32 / int32 joins as strided row copies on the SIMD module; the rest goes to the backend's Concat.
  Concat: concat,
  // Not tfjs kernels: @sbm/models' groupNorm / groupNormSwish call the forward where both are registered for the
  // running backend, with or without a gradient tape; the gradient (groupNormGradConfig) runs the backward.
  [FUSED_GROUP_NORM]: groupNormKernel,
  // Not tfjs kernels: one call updates every weight (several outputs) for @sbm/training's Adam and @sbm/models' EMA.
  [FUSED_ADAM]: adamKernel as unknown as Impl,
  [FUSED_EMA]: emaKernel as unknown as Impl,
  [FUSED_GROUP_NORM_GRAD]: groupNormGradKernel,
};

/** The kernels above that wrap the backend's own (which they delegate to): how each is told the original. */
const WRAPPERS: Partial<Record<string, (original: Impl) => void>> = {
  BatchMatMul: setOriginalBatchMatMul as unknown as (original: Impl) => void,
  SplitV: setOriginalSplitV as unknown as (original: Impl) => void,
  Concat: setOriginalConcat as unknown as (original: Impl) => void,
};

/** Names of the kernels `registerWasmTrainingKernels` provides for the 'wasm' backend. */
export const WASM_TRAINING_KERNELS: readonly string[] = Object.freeze(Object.keys(KERNELS));

/**
 * Registers this package's kernels for the 'wasm' backend and returns their names. Idempotent: a kernel that is
 * already ours is left alone; one registered by someone else (the backend's own Conv2DBackpropInput) is replaced.
 * Works before or after `tf.setBackend('wasm')` — the engine looks kernels up at every call.
 */
export function registerWasmTrainingKernels(): string[] {
  for (const [kernelName, impl] of Object.entries(KERNELS)) {
    const current = tf.getKernel(kernelName, 'wasm');
    if (current?.kernelFunc === (impl as unknown as tf.KernelFunc)) continue;
    const setOriginal = WRAPPERS[kernelName];
    if (current === undefined && setOriginal) continue; // a wrapper with nothing to wrap
    // A wrapped kernel keeps the backend's setupFunc: the backend's BatchMatMul binds its wasm export there, run
    // when the backend initializes, so a registration before tf.setBackend('wasm') would leave the export unbound.
    let setupFunc: tf.KernelConfig['setupFunc'];
    if (current !== undefined) {
      if (setOriginal) {
        setOriginal(current.kernelFunc as unknown as Impl);
        setupFunc = current.setupFunc;
      }
      tf.unregisterKernel(kernelName, 'wasm');
    }
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: impl as unknown as tf.KernelFunc, setupFunc });
  }
  // Gradients are registered per kernel name, not per backend; tfjs warns when one is overridden, hence the check.
  if (tf.getGradient(FUSED_GROUP_NORM)?.gradFunc !== groupNormGradConfig.gradFunc) {
    tf.registerGradient(groupNormGradConfig);
  }
  return [...WASM_TRAINING_KERNELS];
}
