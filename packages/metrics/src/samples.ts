import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFinite, describeValue, sampleSize } from '@sbm/core';

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
 * Sample covariance (float64, two-pass: centered first, so no cancellation). `unbiased` (default) divides by n − 1,
 * otherwise by n.
 */
export function sampleCovariance(x: SampleSet, opts: { unbiased?: boolean } = {}): number[][] {
  const unbiased = opts.unbiased ?? true;
  const rows = readRows(x, 'x', unbiased ? 2 : 1);
  const { data, n, D } = rows;
  const m = new Array(D).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) m[j] += data[i * D + j] / n;
  const c: number[][] = Array.from({ length: D }, () => new Array(D).fill(0));
  const r = new Array(D);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < D; j++) r[j] = data[i * D + j] - m[j];
    for (let j = 0; j < D; j++) for (let k = 0; k <= j; k++) c[j][k] += r[j] * r[k];
  }
  const div = unbiased ? n - 1 : n;
  for (let j = 0; j < D; j++) {
    for (let k = 0; k <= j; k++) {
      c[j][k] /= div;
      c[k][j] = c[j][k];
    }
  }
  return c;
}
