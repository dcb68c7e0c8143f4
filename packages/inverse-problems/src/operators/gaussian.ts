import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkSeed, describeValue } from '@sbm/core';
import { cholesky, choleskySolveInPlace, gramRows, seededNormals } from '../linalg';
import { applyMatrix, checkShapeOption, shapeSize } from './dense';
import type { LinearOperator } from '../operator';

export interface GaussianOperatorOptions {
  /** One signal, e.g. [28, 28, 1]; A acts on its row-major flattening. */
  inShape: number[];
  /** Measurements m (1 ≤ m ≤ n). Give m or ratio, not both. */
  m?: number;
  /** m = round(ratio · n), 0 < ratio ≤ 1. */
  ratio?: number;
  /** Seeds A: the same seed gives the same matrix on every backend. */
  seed: number;
}

/** A compressed-sensing operator R^n → R^m. */
export interface GaussianOperator extends LinearOperator {
  readonly name: 'gaussian';
  /** The number of measurements m (outShape [m]). */
  readonly m: number;
  /** A [m × n] row-major, float64, exactly as drawn (the tf copy is its float32 rounding). */
  readonly matrix: Float64Array;
}

/**
 * Compressed sensing: y = A x with A ∈ R^{m×n} of i.i.d. N(0, 1/m) entries (E‖A x‖² = ‖x‖², the usual RIP scaling),
 * drawn in float64 JS from a SeedStream so cpu, wasm and GPU backends share one A (tf.randomNormal's kernels differ).
 * A⁺ = Aᵀ (A Aᵀ)⁻¹ with the m×m Cholesky solve done in float64 at construction; A has full row rank m ≤ n with
 * probability 1, and a (numerically) singular draw is reported rather than silently regularised.
 */
export function gaussianOperator(opts: GaussianOperatorOptions): GaussianOperator {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `gaussianOperator: expected options { inShape, m | ratio, seed }, got ${describeValue(opts)}`,
      { argument: 'options' },
    );
  }
  const inShape = checkShapeOption(opts.inShape, 'inShape');
  const n = shapeSize(inShape);
  const seed = checkSeed(opts.seed, 'seed');
  let m: number;
  if (opts.m !== undefined && opts.ratio !== undefined) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `m: expected either m or ratio, got both (m ${describeValue(opts.m)}, ratio ${describeValue(opts.ratio)})`,
      { argument: 'm' },
    );
  } else if (opts.m !== undefined) {
    if (typeof opts.m !== 'number' || !Number.isInteger(opts.m) || opts.m < 1 || opts.m > n) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `m: expected an integer in [1, ${n}] (the signal size), got ${describeValue(opts.m)}`,
        { argument: 'm' },
      );
    }
    m = opts.m;
  } else if (opts.ratio !== undefined) {
    const r = opts.ratio;
    if (typeof r !== 'number' || !(r > 0 && r <= 1)) {
      throw new SbmError('INVALID_ARGUMENT', `ratio: expected a number in (0, 1], got ${describeValue(r)}`, {
        argument: 'ratio',
      });
    }
    m = Math.max(1, Math.round(r * n));
  } else {
    throw new SbmError('INVALID_ARGUMENT', 'm: expected the number of measurements m or a ratio m/n, got neither', {
      argument: 'm',
    });
  }
  const matrix = seededNormals(new SeedStream(seed), m * n);
  const scale = 1 / Math.sqrt(m);
  for (let i = 0; i < matrix.length; i++) matrix[i] *= scale;
  // (A⁺)ᵀ = (A Aᵀ)⁻¹ A [m × n]: Cholesky of the Gram, then one solve with A's rows as right-hand sides.
  const l = cholesky(gramRows(matrix, m, n), m, 'seed (the Gaussian matrix A Aᵀ)');
  const pinvT = choleskySolveInPlace(l, m, Float64Array.from(matrix), n);
  const a = tf.tensor2d(Float32Array.from(matrix), [m, n]);
  const p = tf.tensor2d(Float32Array.from(pinvT), [m, n]);
  const outShape = [m];
  let disposed = false;
  return {
    name: 'gaussian',
    inShape,
    outShape,
    m,
    matrix,
    forward: (x) => applyMatrix(x, a, inShape, outShape, true, 'x', 'a signal for the gaussian operator'),
    adjoint: (y) => applyMatrix(y, a, outShape, inShape, false, 'y', 'a measurement of the gaussian operator'),
    pinv: (y) => applyMatrix(y, p, outShape, inShape, false, 'y', 'a measurement of the gaussian operator'),
    dispose() {
      if (disposed) return;
      disposed = true;
      a.dispose();
      p.dispose();
    },
  };
}
