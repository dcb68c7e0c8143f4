import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkNumber, checkSeed, describeValue } from '@sbm/core';
import { Rng } from './rng';

/** Where an epoch iterator stands: the batch about to be taken. A trainer saves it to resume exactly. */
export interface BatchPosition {
  epoch: number;
  step: number;
}

export interface BatcherOptions {
  batchSize: number;
  seed: number;
  /** Drop the last, smaller batch of each epoch (default true: every batch has batchSize samples). */
  dropLast?: boolean;
  /** Shuffle each epoch (default true); false visits 0..N−1 in order. */
  shuffle?: boolean;
}

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Index plans for epochs over a data set of `size` samples. Epoch e's order is a Fisher–Yates permutation drawn
 * from a stream keyed by (seed, e) alone, so any (epoch, step) can be reached directly, without replaying earlier
 * epochs: resuming from a saved position gives exactly the batches an uninterrupted run would have seen.
 */
export class Batcher {
  readonly size: number;
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly shuffle: boolean;
  /** Batches per epoch: ⌊N/B⌋ with dropLast, ⌈N/B⌉ without. */
  readonly stepsPerEpoch: number;
  private readonly key: number;
  private cached: { epoch: number; order: Int32Array } | undefined;

  constructor(size: number, opts: BatcherOptions) {
    this.size = checkNumber(size, 'Batcher: size', { integer: true, min: 1 });
    if (opts === null || typeof opts !== 'object') {
      throw new SbmError('INVALID_ARGUMENT', `Batcher: opts: expected {batchSize, seed}, got ${describeValue(opts)}`);
    }
    this.batchSize = checkNumber(opts.batchSize, 'Batcher: batchSize', { integer: true, min: 1 });
    this.dropLast = opts.dropLast ?? true;
    this.shuffle = opts.shuffle ?? true;
    this.key = new SeedStream(checkSeed(opts.seed, 'Batcher: seed')).next();
    this.stepsPerEpoch = this.dropLast ? Math.floor(size / this.batchSize) : Math.ceil(size / this.batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `Batcher: batchSize: expected at most the data set size ${size} when dropLast is true, got ${this.batchSize}`,
      );
    }
  }

  private checkPosition(pos: BatchPosition, name: string): void {
    if (pos === null || typeof pos !== 'object') {
      throw new SbmError('INVALID_ARGUMENT', `${name}: expected {epoch, step}, got ${describeValue(pos)}`);
    }
    checkNumber(pos.epoch, `${name}.epoch`, { integer: true, min: 0 });
    checkNumber(pos.step, `${name}.step`, { integer: true, min: 0, max: this.stepsPerEpoch - 1 });
  }

  /** The order in which epoch `epoch` visits the samples (a permutation of 0..N−1). Do not modify it. */
  order(epoch: number): Int32Array {
    checkNumber(epoch, 'Batcher.order: epoch', { integer: true, min: 0 });
    if (this.cached?.epoch === epoch) return this.cached.order;
    const order = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) order[i] = i;
    if (this.shuffle) {
      const lo = epoch % 0x100000000;
      const hi = Math.floor(epoch / 0x100000000);
      const rng = new Rng(fmix32(this.key ^ fmix32(lo ^ fmix32(hi + 0x9e3779b9))) & 0x7fffffff);
      for (let i = this.size - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    this.cached = { epoch, order };
    return order;
  }

  /** Sample indices of the batch at `pos` (a fresh array). */
  indices(pos: BatchPosition): Int32Array {
    this.checkPosition(pos, 'Batcher.indices: position');
    const start = pos.step * this.batchSize;
    return this.order(pos.epoch).slice(start, Math.min(start + this.batchSize, this.size));
  }

  /** The position after `pos`. */
  next(pos: BatchPosition): BatchPosition {
    this.checkPosition(pos, 'Batcher.next: position');
    return pos.step + 1 < this.stepsPerEpoch
      ? { epoch: pos.epoch, step: pos.step + 1 }
      : { epoch: pos.epoch + 1, step: 0 };
  }

  /** Positions from `from` (default {0, 0}) up to, not including, the start of epoch `untilEpoch` (default: forever). */
  positions(from: BatchPosition = { epoch: 0, step: 0 }, untilEpoch = Infinity): Generator<BatchPosition> {
    this.checkPosition(from, 'Batcher.positions: from');
    const start = { epoch: from.epoch, step: from.step };
    return function* (this: Batcher) {
      for (let pos = start; pos.epoch < untilEpoch; pos = this.next(pos)) yield pos;
    }.call(this);
  }
}

/** A data set to batch: one tensor or named tensors, all with the sample index first and the same length. */
export type BatchData = tf.Tensor | Record<string, tf.Tensor>;

function dataSize(data: BatchData): number {
  if (data instanceof tf.Tensor) {
    if (data.rank < 1 || data.isDisposed) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `batches: data: expected a live tensor of rank >= 1, got ${describeValue(data)}`,
      );
    }
    return data.shape[0];
  }
  if (data === null || typeof data !== 'object' || Object.keys(data).length === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `batches: data: expected a tensor or a non-empty record of tensors, got ${describeValue(data)}`,
    );
  }
  let n: number | undefined;
  for (const [k, t] of Object.entries(data)) {
    if (!(t instanceof tf.Tensor) || t.rank < 1 || t.isDisposed) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `batches: data.${k}: expected a live tensor of rank >= 1, got ${describeValue(t)}`,
      );
    }
    if (n !== undefined && t.shape[0] !== n) {
      throw new SbmError(
        'INVALID_SHAPE',
        `batches: data.${k}: expected ${n} samples like the other entries, got ${t.shape[0]}`,
      );
    }
    n = t.shape[0];
  }
  return n as number;
}

/** Gathers the rows `indices` of each tensor (new tensors, owned by the caller). */
export function gatherBatch<T extends BatchData>(data: T, indices: Int32Array): T {
  return tf.tidy(() => {
    const idx = tf.tensor1d(indices, 'int32');
    if (data instanceof tf.Tensor) return tf.gather(data, idx) as T;
    const out: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(data)) out[k] = tf.gather(t, idx);
    return out as T;
  });
}

export interface Batch<T extends BatchData> {
  /** Position of this batch. */
  epoch: number;
  step: number;
  /** Position of the batch after this one: save it to resume after this batch. */
  next: BatchPosition;
  indices: Int32Array;
  /** [B, ...] tensors; the consumer owns and disposes them. */
  batch: T;
}

/**
 * Iterates shuffled batches of `data` from `from` (default the start) for `epochs` epochs counted from epoch 0
 * (default: forever). Each yielded batch is created when it is reached, so stopping early leaks nothing.
 */
export function batches<T extends BatchData>(
  data: T,
  opts: BatcherOptions & { from?: BatchPosition; epochs?: number },
): Generator<Batch<T>> {
  // Validated here, at the call, rather than at the first next() of the generator.
  const batcher = new Batcher(dataSize(data), opts);
  const until =
    opts.epochs === undefined ? Infinity : checkNumber(opts.epochs, 'batches: epochs', { integer: true, min: 0 });
  const positions = batcher.positions(opts.from, until);
  return (function* () {
    for (const pos of positions) {
      const indices = batcher.indices(pos);
      yield { epoch: pos.epoch, step: pos.step, next: batcher.next(pos), indices, batch: gatherBatch(data, indices) };
    }
  })();
}
