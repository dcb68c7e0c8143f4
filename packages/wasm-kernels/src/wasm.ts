import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';

/**
 * The part of tfjs-backend-wasm's `BackendWasm` these kernels use. Typed structurally so that the package does
 * not depend on the backend's internal module layout; every member is public API of `BackendWasm` 4.x.
 */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: WasmBackendLike;
  attrs?: Record<string, unknown>;
}

/**
 * Runs another kernel registered for 'wasm' (the backend's XNNPACK-backed Conv2D, BatchMatMul, Transpose, ...)
 * from inside one of ours. The result is a raw TensorInfo: the caller frees it with `free` unless it is returned.
 */
export function runWasm(
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  backend: WasmBackendLike,
  attrs: Record<string, unknown> = {},
): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (kernel === undefined) {
    throw new SbmError(
      'BACKEND_NOT_READY',
      `wasm kernel '${name}' is not registered; import @tensorflow/tfjs-backend-wasm`,
    );
  }
  const out = kernel.kernelFunc({ inputs, backend: backend as unknown as tf.KernelBackend, attrs } as never);
  if (Array.isArray(out)) throw new SbmError('UNSUPPORTED', `wasm kernel '${name}' returned several outputs`);
  return out as tf.TensorInfo;
}

export function free(backend: WasmBackendLike, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * Runs `fn` and returns `outputs`; frees `temps` in every case and `outputs` too when `fn` throws, so that a failed
 * kernel leaves nothing allocated.
 */
export function guarded<T extends tf.TensorInfo | tf.TensorInfo[]>(
  backend: WasmBackendLike,
  outputs: T,
  temps: tf.TensorInfo[],
  fn: () => void,
): T {
  try {
    fn();
  } catch (e) {
    free(backend, ...(Array.isArray(outputs) ? outputs : [outputs]));
    throw e;
  } finally {
    free(backend, ...temps);
  }
  return outputs;
}

/** A float32 view of a tensor's data on the wasm heap. Take views only after the last allocation (the heap may grow). */
export function f32(backend: WasmBackendLike, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') {
    throw new SbmError('UNSUPPORTED', `wasm training kernels expect float32 tensors, got ${info.dtype}`, {
      shape: info.shape,
    });
  }
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The same buffer seen under another shape, for passing to a kernel (not to be freed separately). */
export function view(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

export function channelsLastOnly(dataFormat: unknown, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new SbmError('UNSUPPORTED', `${kernel} on wasm supports dataFormat 'NHWC' only, got '${String(dataFormat)}'`);
  }
}
