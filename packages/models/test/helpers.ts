import * as tf from '@tensorflow/tfjs';
import type { NcsnppConfig } from '@sbm/models';

/** max |a − b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Runs fn and asserts it leaves tf.memory().numTensors unchanged (its returned tensors are disposed first). */
export function countLeaks(fn: () => tf.TensorContainer | void): number {
  const before = tf.memory().numTensors;
  const out = fn();
  if (out) tf.dispose(out);
  return tf.memory().numTensors - before;
}

/** A tiny NCSN++ (8×8×1, nf 8, two resolutions, attention at 4) that keeps the U-Net suites fast on wasm. */
export const TINY_NCSNPP: NcsnppConfig = {
  name: 'ncsnpp',
  imageSize: 8,
  imageChannels: 1,
  nf: 8,
  chMult: [1, 2],
  numResBlocks: 1,
  attnResolutions: [4],
};
