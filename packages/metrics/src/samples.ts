import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFinite, checkNumber, describeValue, sampleSize } from '@sbm/core';

/** A set of n samples in D dimensions: a tensor [n, D] (or [n, ...dims], flattened) or plain rows. */
export type SampleSet = tf.Tensor | number[][];

/** Rows of a sample set as one float64 array, row-major [n, D]. */
export interface Rows {
  data: Float64Array;
  n: number;
  D: number;
}

/** Reads and validates a sample set (rank ≥ 2, at least `minRows` rows, finite values). */
export function readRows(x: SampleSet, name: string, minRows = 1): Rows {
  let rows: Rows;
  if (x instanceof tf.Tensor) {
    if (x.isDisposed) {
      throw new SbmError('INVALID_ARGUMENT', `${name}: the tensor has already been disposed`, { argument: name });
    }
    if (x.rank < 2) {
      throw new SbmError(
        'INVALID_SHAPE',
        `${name}: expected samples of shape [n, D] (or [n, ...dims]), got [${x.shape.join(', ')}]`,
        { argument: name, received: x.shape },
      );
    }
    checkFinite(x, name);
    rows = { data: Float64Array.from(x.dataSync()), n: x.shape[0], D: sampleSize(x.shape) };
  } else if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0])) {
    const D = x[0].length;
    const data = new Float64Array(x.length * D);
    x.forEach((row, i) => {
      if (!Array.isArray(row) || row.length !== D) {
        throw new SbmError(
          'INVALID_SHAPE',
          `${name}[${i}]: expected a row of ${D} numbers (the length of ${name}[0]), got ${describeValue(row)}`,
          { argument: name },
        );
      }
      row.forEach((v, j) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new SbmError('NON_FINITE', `${name}[${i}][${j}]: expected a finite number, got ${describeValue(v)}`, {
            argument: name,
          });
        }
        data[i * D + j] = v;
      });
    });
    rows = { data, n: x.length, D };
  } else {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected a tf.Tensor of shape [n, D] or an array of rows, got ${describeValue(x)}`,
      { argument: name },
    );
  }
  if (rows.n < minRows || rows.D < 1) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected at least ${minRows} sample(s) of dimension >= 1, got ${rows.n}x${rows.D}`,
      {
        argument: name,
      },
    );
  }
  return rows;
}

/** Checks that two sample sets live in the same dimension. */
export function checkSameDim(a: Rows, b: Rows, names: [string, string]): void {
  if (a.D !== b.D) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${names[1]}: expected samples of dimension ${a.D} (that of ${names[0]}), got dimension ${b.D}`,
      { argument: names[1], expected: a.D, received: b.D },
    );
  }
}

/** Per-dimension sample mean (float64). */
export function sampleMean(x: SampleSet): number[] {
  const { data, n, D } = readRows(x, 'x');
  const m = new Array(D).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) m[j] += data[i * D + j];
  return m.map((v) => v / n);
}

/**
 * Mean and covariance of n rows of D values (row-major `data`), accumulated in float64 in two passes (centred
 * first, so no cancellation between E[xxᵀ] and μμᵀ). `unbiased` (default) divides by n − 1, otherwise by n. The
 * one covariance in sbm: sampleCovariance and the MNIST Fréchet distance's feature statistics both come from here.
 */
export function sampleMoments(
  data: ArrayLike<number>,
  n: number,
  D: number,
  opts: { unbiased?: boolean } = {},
): { mean: number[]; cov: number[][] } {
  const unbiased = opts.unbiased ?? true;
  checkNumber(n, 'sampleMoments: n', { integer: true, min: unbiased ? 2 : 1 });
  checkNumber(D, 'sampleMoments: D', { integer: true, min: 1 });
  if (data === null || typeof data !== 'object' || typeof data.length !== 'number' || data.length < n * D) {
    throw new SbmError(
      'INVALID_SHAPE',
      `sampleMoments: data: expected at least n × D = ${n * D} values, got ${describeValue(data)}`,
      { argument: 'data' },
    );
  }
  const mean = new Float64Array(D);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) mean[j] += data[i * D + j];
  for (let j = 0; j < D; j++) mean[j] /= n;
  const acc = new Float64Array(D * D);
  const r = new Float64Array(D);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < D; j++) r[j] = data[i * D + j] - mean[j];
    for (let j = 0; j < D; j++) {
      const rj = r[j];
      if (rj === 0) continue; // a coordinate at its mean (e.g. a dead ReLU unit) adds nothing
      const base = j * D;
      for (let k = 0; k <= j; k++) acc[base + k] += rj * r[k];
    }
  }
  const div = unbiased ? n - 1 : n;
  const cov: number[][] = Array.from({ length: D }, () => new Array<number>(D).fill(0));
  for (let j = 0; j < D; j++) {
    for (let k = 0; k <= j; k++) {
      const v = acc[j * D + k] / div;
      cov[j][k] = v;
      cov[k][j] = v;
    }
  }
  return { mean: Array.from(mean), cov };
}

/** Sample covariance (float64, two-pass; see sampleMoments). `unbiased` (default) divides by n − 1, otherwise by n. */
export function sampleCovariance(x: SampleSet, opts: { unbiased?: boolean } = {}): number[][] {
  const unbiased = opts.unbiased ?? true;
  const { data, n, D } = readRows(x, 'x', unbiased ? 2 : 1);
  return sampleMoments(data, n, D, { unbiased }).cov;
}
