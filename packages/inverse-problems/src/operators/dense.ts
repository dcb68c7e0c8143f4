import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { checkBatchShape, type LinearOperator } from '../operator';
import { pseudoInverse } from '../linalg';

export interface DenseOperatorOptions {
  /** For messages and baselinesFor (default 'dense'). */
  name?: string;
  inShape: number[];
  outShape: number[];
  /** A [outSize × inSize]: a row-major Float64Array (or any array of numbers) of outSize·inSize, or outSize rows. */
  matrix: Float64Array | Float32Array | number[] | number[][];
}

/** The float64 matrix behind a dense operator, so materialize / withPinv read it exactly instead of through float32. */
const exactMatrices = new WeakMap<LinearOperator, Float64Array>();

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** INVALID_ARGUMENT naming `argument` unless `v` is a non-empty array of positive integers. */
export function checkShapeOption(v: unknown, argument: string, rank?: number): number[] {
  const ok =
    Array.isArray(v) &&
    v.length > 0 &&
    (rank === undefined || v.length === rank) &&
    v.every((d) => Number.isInteger(d) && d > 0);
  if (!ok) {
    const what = rank === undefined ? 'a non-empty array of positive integers' : `${rank} positive integers`;
    const got = Array.isArray(v) ? `[${v.map((d) => describeValue(d)).join(', ')}]` : describeValue(v);
    throw new SbmError('INVALID_ARGUMENT', `${argument}: expected ${what}, got ${got}`, { argument });
  }
  return [...(v as number[])];
}

function flatMatrix(matrix: unknown, rows: number, cols: number): Float64Array {
  let flat: Float64Array;
  if (Array.isArray(matrix) && matrix.length > 0 && Array.isArray(matrix[0])) {
    const rowsArr = matrix as unknown[];
    if (rowsArr.length !== rows || !rowsArr.every((r) => Array.isArray(r) && r.length === cols)) {
      throw new SbmError(
        'INVALID_SHAPE',
        `matrix: expected ${rows} rows of ${cols} numbers (outSize × inSize), got ${rowsArr.length} rows of lengths ${[
          ...new Set(rowsArr.map((r) => (Array.isArray(r) ? r.length : describeValue(r)))),
        ].join(', ')}`,
        { argument: 'matrix' },
      );
    }
    flat = new Float64Array(rows * cols);
    (rowsArr as number[][]).forEach((r, i) => flat.set(r, i * cols));
  } else if (matrix instanceof Float64Array || matrix instanceof Float32Array || Array.isArray(matrix)) {
    if (matrix.length !== rows * cols) {
      throw new SbmError(
        'INVALID_SHAPE',
        `matrix: expected ${rows} × ${cols} = ${rows * cols} row-major entries (outSize × inSize), got ${matrix.length}`,
        { argument: 'matrix' },
      );
    }
    flat = Float64Array.from(matrix as ArrayLike<number>);
  } else {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `matrix: expected a row-major Float64Array of ${rows * cols} entries or ${rows} rows of ${cols} numbers, got ${describeValue(matrix)}`,
      { argument: 'matrix' },
    );
  }
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i])) {
      throw new SbmError(
        'NON_FINITE',
        `matrix: expected finite entries, got ${flat[i]} at row ${Math.floor(i / cols)}, column ${i % cols}`,
        { argument: 'matrix' },
      );
    }
  }
  return flat;
}

/**
 * A [b, ...inShape] → [b, ...outShape] by one matMul with a held matrix W [rows × cols] (y = x Wᵀ when `transposed`).
 * Shared by the dense, Gaussian and pseudo-inverse maps.
 */
export function applyMatrix(
  x: tf.Tensor,
  w: tf.Tensor2D,
  fromShape: readonly number[],
  toShape: readonly number[],
  transposeW: boolean,
  argument: string,
  what: string,
): tf.Tensor {
  checkBatchShape(x, fromShape, argument, what);
  return tf.tidy(() => {
    const b = x.shape[0];
    const flat = tf.reshape(x, [b, shapeSize(fromShape)]);
    return tf.reshape(tf.matMul(flat, w, false, transposeW), [b, ...toShape]);
  });
}

/**
 * A user's matrix as an operator: forward x ↦ A x and adjoint y ↦ Aᵀ y on the flattened signal (row-major over
 * inShape / outShape, tf's layout). The matrix is held as float32 on the active backend; `dispose` frees it.
 */
export function denseOperator(opts: DenseOperatorOptions): LinearOperator {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `denseOperator: expected options { inShape, outShape, matrix }, got ${describeValue(opts)}`,
      { argument: 'options' },
    );
  }
  const name = opts.name ?? 'dense';
  if (typeof name !== 'string' || name === '') {
    throw new SbmError('INVALID_ARGUMENT', `name: expected a non-empty string, got ${describeValue(name)}`, {
      argument: 'name',
    });
  }
  const inShape = checkShapeOption(opts.inShape, 'inShape');
  const outShape = checkShapeOption(opts.outShape, 'outShape');
  const rows = shapeSize(outShape);
  const cols = shapeSize(inShape);
  const exact = flatMatrix(opts.matrix, rows, cols);
  return matrixOperator(name, inShape, outShape, exact);
}

/** The operator of a checked float64 matrix [outSize × inSize]; registers it for materialize. */
export function matrixOperator(
  name: string,
  inShape: number[],
  outShape: number[],
  exact: Float64Array,
  extra: { pinv?: Float64Array } = {},
): LinearOperator {
  const rows = shapeSize(outShape);
  const cols = shapeSize(inShape);
  const a = tf.tensor2d(Float32Array.from(exact), [rows, cols]);
  // A⁺ is [cols × rows]; pinv(y) = y (A⁺)ᵀ on the flattened batch.
  const p = extra.pinv ? tf.tensor2d(Float32Array.from(extra.pinv), [cols, rows]) : undefined;
  let disposed = false;
  const op: LinearOperator = {
    name,
    inShape,
    outShape,
    forward: (x) => applyMatrix(x, a, inShape, outShape, true, 'x', `a signal for the ${name} operator`),
    adjoint: (y) => applyMatrix(y, a, outShape, inShape, false, 'y', `a measurement of the ${name} operator`),
    ...(p
      ? {
          pinv: (y: tf.Tensor) =>
            applyMatrix(y, p, outShape, inShape, true, 'y', `a measurement of the ${name} operator`),
        }
      : {}),
    dispose() {
      if (disposed) return;
      disposed = true;
      a.dispose();
      p?.dispose();
    },
  };
  exactMatrices.set(op, exact);
  return op;
}

/**
 * The matrix of any operator, A [outSize × inSize] row-major in float64: forward on chunks of identity columns (each
 * output row of a chunk is one column of A), one awaited readback per chunk. For a denseOperator, its exact matrix.
 */
export async function materialize(op: LinearOperator): Promise<{ rows: number; cols: number; data: Float64Array }> {
  if (op === null || typeof op !== 'object' || typeof (op as Partial<LinearOperator>).forward !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: expected a LinearOperator { inShape, outShape, forward, adjoint }, got ${describeValue(op)}`,
      { argument: 'operator' },
    );
  }
  const inShape = checkShapeOption(op.inShape, 'operator.inShape');
  const outShape = checkShapeOption(op.outShape, 'operator.outShape');
  const rows = shapeSize(outShape);
  const cols = shapeSize(inShape);
  const known = exactMatrices.get(op);
  if (known) return { rows, cols, data: Float64Array.from(known) };
  const data = new Float64Array(rows * cols);
  // About 4M floats per chunk (in + out): large enough to amortise the dispatch, small enough for any backend.
  const chunk = Math.max(1, Math.min(cols, Math.floor(2 ** 22 / (rows + cols))));
  for (let start = 0; start < cols; start += chunk) {
    const c = Math.min(chunk, cols - start);
    const eye = new Float32Array(c * cols);
    for (let j = 0; j < c; j++) eye[j * cols + start + j] = 1;
    const out = tf.tidy(() => {
      const e = tf.tensor(eye, [c, ...inShape]);
      const ax = checkBatchShape(op.forward(e), outShape, 'operator.forward(x)', 'A x');
      return tf.reshape(ax, [c, rows]);
    });
    const v = await out.data();
    out.dispose();
    for (let j = 0; j < c; j++) {
      const col = start + j;
      for (let i = 0; i < rows; i++) data[i * cols + col] = v[j * rows + i];
    }
  }
  return { rows, cols, data };
}

/**
 * A copy of `op` with the exact Moore–Penrose pseudo-inverse (float64 eigen-decomposition of the smaller Gram matrix,
 * see linalg.pseudoInverse; singular values below rcond · σ_max dropped, default 1e-6). forward, adjoint and decoupled
 * are op's own; pinv applies the float64 A⁺ stored as float32. The copy owns `op`: its dispose() frees A⁺ and calls
 * op.dispose().
 */
export async function withPinv(op: LinearOperator, opts: { rcond?: number } = {}): Promise<LinearOperator> {
  const { rows, cols, data } = await materialize(op);
  const rcond = opts.rcond ?? 1e-6;
  if (typeof rcond !== 'number' || !(rcond >= 0 && rcond < 1)) {
    throw new SbmError('INVALID_ARGUMENT', `rcond: expected a number in [0, 1), got ${describeValue(rcond)}`, {
      argument: 'rcond',
    });
  }
  const { pinv } = pseudoInverse(data, rows, cols, rcond);
  const p = tf.tensor2d(Float32Array.from(pinv), [cols, rows]);
  const inShape = [...op.inShape];
  const outShape = [...op.outShape];
  let disposed = false;
  const copy: LinearOperator = {
    // Own data members (a downsample's factor, ...) carry over; the members below are the copy's.
    ...op,
    name: op.name,
    inShape,
    outShape,
    forward: (x) => op.forward(x),
    adjoint: (y) => op.adjoint(y),
    pinv: (y) => applyMatrix(y, p, outShape, inShape, true, 'y', `a measurement of the ${op.name} operator`),
    ...(op.decoupled ? { decoupled: op.decoupled } : {}),
    dispose() {
      if (disposed) return;
      disposed = true;
      p.dispose();
      op.dispose?.();
    },
  };
  const known = exactMatrices.get(op);
  if (known) exactMatrices.set(copy, known);
  return copy;
}
