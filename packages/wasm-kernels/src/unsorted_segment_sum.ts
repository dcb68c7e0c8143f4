import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';
import type { KernelArgs } from './wasm';

/**
 * out[s, ...] = Σ_{i : ids[i] = s} x[i, ...] — the gradient of gather (tf.gather's backward pass scatters dy rows
 * back to the gathered indices). Ids outside [0, numSegments) are dropped, as TensorFlow does.
 */
export function unsortedSegmentSum({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = attrs.numSegments as number;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new SbmError('UNSUPPORTED', `UnsortedSegmentSum on wasm supports float32 and int32 x, got ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  const outShape = [numSegments, ...x.shape.slice(idRank)];
  const inner = tf.util.sizeFromShape(x.shape.slice(idRank));
  const n = tf.util.sizeFromShape(segmentIds.shape);
  const out = backend.makeOutput(outShape, x.dtype);
  const o = backend.typedArrayFromHeap(out);
  const xv = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  o.fill(0);
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const to = s * inner;
    const from = i * inner;
    for (let j = 0; j < inner; j++) o[to + j] += xv[from + j];
  }
  return out;
}
