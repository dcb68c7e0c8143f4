import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';
import { checkShapeOption } from './dense';

export interface DownsampleOperatorOptions {
  /** [H, W, C], H and W divisible by factor. */
  inShape: number[];
  /** k ≥ 1: k×k blocks. */
  factor: number;
}

/** A super-resolution operator [H, W, C] → [H/k, W/k, C]. */
export interface DownsampleOperator extends LinearOperator {
  readonly name: 'downsample';
  readonly factor: number;
}

/**
 * Super-resolution: y = k×k average pooling of x (non-overlapping blocks), [H, W, C] → [H/k, W/k, C]. Each output is
 * the mean of k² inputs, so Aᵀ spreads y/k² over its block (nearest upsampling / k²), A Aᵀ = I/k², and
 * A⁺ = Aᵀ (A Aᵀ)⁻¹ = k² Aᵀ = nearest upsampling. Pooling is a reshape and a mean (the same kernels on every backend;
 * differentiable for DPS).
 */
export function downsampleOperator(opts: DownsampleOperatorOptions): DownsampleOperator {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `downsampleOperator: expected options { inShape: [H, W, C], factor }, got ${describeValue(opts)}`,
      { argument: 'options' },
    );
  }
  const inShape = checkShapeOption(opts.inShape, 'inShape', 3);
  const k = opts.factor;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
    throw new SbmError('INVALID_ARGUMENT', `factor: expected a positive integer, got ${describeValue(k)}`, {
      argument: 'factor',
    });
  }
  const [H, W, C] = inShape;
  if (H % k !== 0 || W % k !== 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `factor: expected a divisor of both the height ${H} and the width ${W} of inShape [${inShape.join(', ')}], got ${k}`,
      { argument: 'factor' },
    );
  }
  const h = H / k;
  const w = W / k;
  const outShape = [h, w, C];
  const upsample = (y: tf.Tensor, scale: number): tf.Tensor => {
    checkBatchShape(y, outShape, 'y', 'a low-resolution measurement of the downsample operator');
    return tf.tidy(() => {
      const b = y.shape[0];
      const blocks = tf.tile(tf.reshape(y, [b, h, 1, w, 1, C]), [1, 1, k, 1, k, 1]);
      const up = tf.reshape(blocks, [b, H, W, C]);
      return scale === 1 ? up : tf.mul(up, scale);
    });
  };
  return {
    name: 'downsample',
    inShape,
    outShape,
    factor: k,
    forward(x) {
      checkBatchShape(x, inShape, 'x', 'an image for the downsample operator');
      return tf.tidy(() => tf.mean(tf.reshape(x, [x.shape[0], h, k, w, k, C]), [2, 4]));
    },
    adjoint: (y) => upsample(y, 1 / (k * k)),
    pinv: (y) => upsample(y, 1),
    // Holds no tensors.
    dispose() {},
  };
}
