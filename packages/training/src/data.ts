import type * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { Batcher, gatherBatch, type BatchPosition } from '@sbm/datasets';

/**
 * Where training batches come from. Batches are addressed by position so that a resumed run reads exactly the
 * batches the uninterrupted run would have read (the position after the last step is saved in the checkpoint).
 */
export interface BatchSource {
  /** Batches per epoch. */
  readonly stepsPerEpoch: number;
  /** Number of samples (recorded in the checkpoint; null when unknown). */
  readonly size: number | null;
  /** The batch at `pos` as a new [B, ...] float32 tensor; the trainer disposes it. */
  batch(pos: BatchPosition): tf.Tensor;
  /** The position after `pos`. */
  next(pos: BatchPosition): BatchPosition;
}

/** Shuffled batches of a [N, ...] tensor (datasets' Batcher: epoch e's order depends on (seed, e) only). */
export function tensorBatchSource(
  data: tf.Tensor,
  opts: { batchSize: number; seed: number; dropLast?: boolean },
): BatchSource {
  const batcher = new Batcher(data.shape[0], { batchSize: opts.batchSize, seed: opts.seed, dropLast: opts.dropLast });
  return {
    stepsPerEpoch: batcher.stepsPerEpoch,
    size: data.shape[0],
    batch: (pos) => gatherBatch(data, batcher.indices(pos)),
    next: (pos) => batcher.next(pos),
  };
}

export function checkBatchSource(source: unknown): BatchSource {
  const s = source as BatchSource;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.batch !== 'function' ||
    typeof s.next !== 'function' ||
    !Number.isInteger(s.stepsPerEpoch) ||
    s.stepsPerEpoch < 1
  ) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `data: expected a [N, ...] tensor or a BatchSource { stepsPerEpoch, size, batch(pos), next(pos) }, got ${describeValue(source)}`,
      { argument: 'data' },
    );
  }
  return s;
}
