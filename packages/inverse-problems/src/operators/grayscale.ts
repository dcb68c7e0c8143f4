import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';

/**
 * score_sde's colour decoupling matrix M (controllable_generation.py, get_pc_colorizer), exactly its float32 digits:
 * decouple(x) = x·M per pixel (channels last), column 0 = (1, 1, 1)/√3, so channel 0 of the decoupled image is
 * (R+G+B)/√3; columns 1, 2 span the chroma plane. Orthonormal up to ~1e-7 (it is a rounded orthogonal matrix).
 */
export const COLOR_DECOUPLE_MATRIX: readonly (readonly number[])[] = Object.freeze([
  Object.freeze([5.7735014e-1, -8.1649649e-1, 4.7008697e-8]),
  Object.freeze([5.7735026e-1, 4.0824834e-1, 7.0710671e-1]),
  Object.freeze([5.7735026e-1, 4.0824822e-1, -7.0710683e-1]),
]);

/** M⁻¹ in float64 (score_sde takes torch.inverse(M) / jnp.linalg.inv(M), not Mᵀ; they differ by ~1e-7). */
function inverse3(m: readonly (readonly number[])[]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}
const COLOR_COUPLE_MATRIX = inverse3(COLOR_DECOUPLE_MATRIX);

function perPixel(x: tf.Tensor, m: readonly (readonly number[])[], fn: string): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.rank < 1 || x.shape[x.rank - 1] !== 3) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${fn}: x: expected a tensor with 3 channels last ([..., 3]), got ${describeValue(x)}`,
      { argument: 'x' },
    );
  }
  return tf.tidy(() =>
    tf.reshape(
      tf.matMul(
        tf.reshape(x, [-1, 3]),
        tf.tensor2d(
          m.map((r) => [...r]),
          [3, 3],
        ),
      ),
      x.shape,
    ),
  );
}

/** x·M per pixel ([..., 3] → [..., 3]): channel 0 = (R+G+B)/√3 (score_sde's `decouple`). */
export function decoupleColors(x: tf.Tensor): tf.Tensor {
  return perPixel(x, COLOR_DECOUPLE_MATRIX, 'decoupleColors');
}

/** x·M⁻¹ per pixel, the inverse of decoupleColors (score_sde's `couple`). */
export function coupleColors(x: tf.Tensor): tf.Tensor {
  return perPixel(x, COLOR_COUPLE_MATRIX, 'coupleColors');
}

export interface GrayscaleOperatorOptions {
  height: number;
  width: number;
}

/** A colorization operator [H, W, 3] → [H, W, 1]. */
export interface GrayscaleOperator extends LinearOperator {
  readonly name: 'grayscale';
  readonly height: number;
  readonly width: number;
}

function checkDim(v: unknown, argument: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new SbmError('INVALID_ARGUMENT', `${argument}: expected a positive integer, got ${describeValue(v)}`, {
      argument,
    });
  }
  return v;
}

/**
 * Colorization: y = decouple(x)[..., 0] = x·M[:, 0] = (R+G+B)/√3 per pixel, [H, W, 3] → [H, W, 1]. A gray image g
 * (the mean of RGB, score_sde's input replicated to 3 channels) is the measurement y = √3·g. Aᵀ y puts y·M[:, 0]ᵀ in
 * the three channels; A Aᵀ = ‖M[:, 0]‖² = 1 up to M's rounding, so pinv divides by that float64 norm (= Aᵀ to 1e-7).
 * decoupled = { decoupleColors, coupleColors, mask [H, W, 3] = [1, 0, 0] per pixel } (score_sde's get_mask).
 */
export function grayscaleOperator(opts: GrayscaleOperatorOptions): GrayscaleOperator {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `grayscaleOperator: expected options { height, width }, got ${describeValue(opts)}`,
      {
        argument: 'options',
      },
    );
  }
  const height = checkDim(opts.height, 'height');
  const width = checkDim(opts.width, 'width');
  const inShape = [height, width, 3];
  const outShape = [height, width, 1];
  const col = COLOR_DECOUPLE_MATRIX.map((r) => r[0]);
  const norm2 = col.reduce((s, v) => s + v * v, 0);
  const a = tf.tensor2d(col, [3, 1]);
  const at = tf.tensor2d([col], [1, 3]);
  const pinvRow = tf.tensor2d([col.map((v) => v / norm2)], [1, 3]);
  const maskValues = new Float32Array(height * width * 3);
  for (let p = 0; p < height * width; p++) maskValues[p * 3] = 1;
  const mask = tf.tensor(maskValues, inShape);
  const apply = (v: tf.Tensor, w: tf.Tensor2D, from: number[], to: number[], argument: string, what: string) => {
    checkBatchShape(v, from, argument, what);
    return tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(v, [-1, from[2]]), w), [v.shape[0], ...to]));
  };
  const checked = (fn: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) =>
    fn(checkBatchShape(x, inShape, 'x', 'an image [batch, H, W, 3]'));
  let disposed = false;
  return {
    name: 'grayscale',
    inShape,
    outShape,
    height,
    width,
    forward: (x) => apply(x, a, inShape, outShape, 'x', 'an RGB image for the grayscale operator'),
    adjoint: (y) => apply(y, at, outShape, inShape, 'y', 'a gray measurement of the grayscale operator'),
    pinv: (y) => apply(y, pinvRow, outShape, inShape, 'y', 'a gray measurement of the grayscale operator'),
    decoupled: { transform: checked(decoupleColors), inverse: checked(coupleColors), mask },
    dispose() {
      if (disposed) return;
      disposed = true;
      tf.dispose([a, at, pinvRow, mask]);
    },
  };
}
