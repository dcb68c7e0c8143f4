import * as tf from '@tensorflow/tfjs';
import { SbmError } from './errors';

/** Number of live tensors in the engine. */
export function countTensors(): number {
  return tf.memory().numTensors;
}

/**
 * Runs `fn` and throws TENSOR_LEAK if it leaves a different number of live tensors behind than it found.
 * Tensors that `fn` returns are allowed when `allowReturned` is true (they are counted and excluded).
 */
export async function withLeakCheck<T>(fn: () => T | Promise<T>, label = 'function'): Promise<T> {
  const before = countTensors();
  const result = await fn();
  const returned = countReturned(result);
  const after = countTensors() - returned;
  if (after !== before) {
    throw new SbmError(
      'TENSOR_LEAK',
      `${label}: ${after - before} tensor(s) leaked (numTensors ${before} before, ${after} after, ${returned} returned)`,
      { before, after, returned },
    );
  }
  return result;
}

function countReturned(v: unknown, seen = new Set<unknown>()): number {
  if (v === null || typeof v !== 'object' || seen.has(v)) return 0;
  seen.add(v);
  if (v instanceof tf.Tensor) return v.isDisposed ? 0 : 1;
  let n = 0;
  const values = Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : Object.values(v as object);
  for (const item of values) n += countReturned(item, seen);
  return n;
}

/** Disposes every tensor found in a (nested) result object. */
export function disposeAll(v: unknown): void {
  const found: tf.Tensor[] = [];
  collect(v, found, new Set());
  tf.dispose(found);
}

function collect(v: unknown, out: tf.Tensor[], seen: Set<unknown>): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (v instanceof tf.Tensor) {
    if (!v.isDisposed) out.push(v);
    return;
  }
  const values = Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : Object.values(v as object);
  for (const item of values) collect(item, out, seen);
}
