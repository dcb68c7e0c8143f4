import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';

export interface MaskOperatorOptions {
  /** 0/1 values (1 = known pixel), a tensor or nested array of shape inShape (e.g. [H, W, C]); namedMask makes some. */
  mask: unknown;
  /**
   * The signal shape, when it differs from the mask's: a mask [H, W] for images [H, W, C] is broadcast over the
   * channels. Default: the mask's shape.
   */
  inShape?: number[];
}

/** An inpainting operator; `mask` is its own copy (freed by dispose). */
export interface MaskOperator extends LinearOperator {
  readonly name: 'mask';
  /** [...inShape] of 0/1, 1 = known. */
  readonly mask: tf.Tensor;
}

function readMask(v: unknown): { values: Float32Array; shape: number[] } {
  if (v instanceof tf.Tensor) {
    if (v.isDisposed) {
      throw new SbmError('INVALID_ARGUMENT', 'mask: expected a live tensor, got a disposed one', { argument: 'mask' });
    }
    // Construction only, not a per-step path: one synchronous readback of the user's mask.
    return { values: Float32Array.from(v.dataSync() as ArrayLike<number>), shape: [...v.shape] };
  }
  if (Array.isArray(v)) {
    let t: tf.Tensor;
    try {
      t = tf.tensor(v as number[]);
    } catch (e) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `mask: expected a rectangular nested array of 0/1 numbers, got an array tf cannot read (${(e as Error).message})`,
        { argument: 'mask' },
        { cause: e },
      );
    }
    try {
      return { values: Float32Array.from(t.dataSync() as ArrayLike<number>), shape: [...t.shape] };
    } finally {
      t.dispose();
    }
  }
  throw new SbmError(
    'INVALID_ARGUMENT',
    `mask: expected a tensor or nested array of 0/1 values (1 = known), got ${describeValue(v)}`,
    { argument: 'mask' },
  );
}

/**
 * Inpainting: y = m ⊙ x with a 0/1 mask m (1 = known), unknown entries 0 in y as in score_sde's inpainter (its
 * measurement is `data * mask`). outShape = inShape. m is a diagonal 0/1 matrix, so Aᵀ = A and A⁺ = A (A A = A).
 * decoupled = { T = identity, mask m }: projection works directly in pixel space.
 */
export function maskOperator(opts: MaskOperatorOptions): MaskOperator {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `maskOperator: expected options { mask }, got ${describeValue(opts)}`, {
      argument: 'options',
    });
  }
  const { values, shape } = readMask(opts.mask);
  if (shape.length === 0) {
    throw new SbmError(
      'INVALID_SHAPE',
      'mask: expected a mask of rank ≥ 1 with the shape of one signal (e.g. [H, W, C]), got a scalar',
      { argument: 'mask' },
    );
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== 0 && v !== 1) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `mask: expected values exactly 0 or 1 (1 = known), got ${describeValue(v)} at flat index ${i}`,
        { argument: 'mask', index: i },
      );
    }
  }
  let inShape = shape;
  let full = values;
  if (opts.inShape !== undefined) {
    const want = opts.inShape;
    if (!Array.isArray(want) || want.length === 0 || !want.every((d) => Number.isInteger(d) && d > 0)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `inShape: expected a non-empty array of positive integers, got ${describeValue(want)}`,
        {
          argument: 'inShape',
        },
      );
    }
    const same = want.length === shape.length && want.every((d, i) => d === shape[i]);
    const perPixel = want.length === shape.length + 1 && shape.every((d, i) => d === want[i]);
    if (!same && !perPixel) {
      throw new SbmError(
        'INVALID_SHAPE',
        `mask: expected shape [${want.join(', ')}] or [${want.slice(0, -1).join(', ')}] (broadcast over the last axis) for inShape [${want.join(', ')}], got [${shape.join(', ')}]`,
        { argument: 'mask' },
      );
    }
    if (perPixel) {
      const c = want[want.length - 1];
      full = new Float32Array(values.length * c);
      for (let p = 0; p < values.length; p++) full.fill(values[p], p * c, p * c + c);
    }
    inShape = [...want];
  }
  const mask = tf.tensor(full, inShape);
  const apply = (v: tf.Tensor, argument: string, what: string): tf.Tensor => {
    checkBatchShape(v, inShape, argument, what);
    return tf.mul(v, mask);
  };
  // The decoupled transform is the identity; a clone (shared data, no copy) so a caller may dispose what it gets.
  const identity = (v: tf.Tensor): tf.Tensor => tf.clone(checkBatchShape(v, inShape, 'x', 'a signal'));
  let disposed = false;
  return {
    name: 'mask',
    inShape,
    outShape: inShape,
    mask,
    forward: (x) => apply(x, 'x', 'a signal for the mask operator'),
    adjoint: (y) => apply(y, 'y', 'a measurement of the mask operator'),
    pinv: (y) => apply(y, 'y', 'a measurement of the mask operator'),
    decoupled: { transform: identity, inverse: identity, mask },
    dispose() {
      if (disposed) return;
      disposed = true;
      mask.dispose();
    },
  };
}
