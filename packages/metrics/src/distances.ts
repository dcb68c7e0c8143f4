import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber, randomNormal, seedStream, type SeedStream } from '@sbm/core';
import { checkSameDim, readRows, type Rows, type SampleSet } from './samples';

export interface SlicedWassersteinOptions {
  /** Number of random directions (default 256). */
  projections?: number;
  /** Seed of the directions (required: the estimate depends on them). */
  seed: number | SeedStream;
}

/**
 * Sliced 2-Wasserstein distance SW₂(a, b) = (E_θ W₂²(θᵀa, θᵀb))^{1/2} over directions θ uniform on the unit sphere
 * (Rabin et al. 2011; Bonneel et al. 2015), estimated with `projections` seeded directions.
 *
 * Per direction, W₂² between the two 1-D empirical measures is computed exactly as ∫₀¹ (F⁻¹(u) − G⁻¹(u))² du over
 * the sorted projections — a mean of squared differences when n = m, and for n ≠ m the same integral over the merged
 * quantile breakpoints {i/n} ∪ {j/m} (both empirical quantile functions are constant between them), so sets of
 * unequal size need no resampling. For two Gaussians N(0, I) and N(m, I) the population value is ‖m‖/√D, since
 * E_θ (θᵀm)² = ‖m‖²/D.
 */
export function slicedWasserstein(a: SampleSet, b: SampleSet, options: SlicedWassersteinOptions): number {
  if (options === null || typeof options !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', 'slicedWasserstein: options: expected { projections?, seed }', {
      argument: 'options',
    });
  }
  const P = checkNumber(options.projections ?? 256, 'projections', { integer: true, min: 1 });
  const stream = seedStream(options.seed);
  const A = readRows(a, 'a');
  const B = readRows(b, 'b');
  checkSameDim(A, B, ['a', 'b']);
  const D = A.D;
  // Uniform directions on the sphere: normalized standard normals (drawn by tfjs from the seed: same on every backend).
  const normals = randomNormal([P, D], stream);
  const theta = Float64Array.from(normals.dataSync());
  normals.dispose();
  for (let p = 0; p < P; p++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += theta[p * D + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < D; j++) theta[p * D + j] *= inv;
  }
  const pa = project(A, theta, P);
  const pb = project(B, theta, P);
  let total = 0;
  for (let p = 0; p < P; p++) {
    const u = pa.subarray(p * A.n, (p + 1) * A.n).sort();
    const v = pb.subarray(p * B.n, (p + 1) * B.n).sort();
    total += w2Squared1d(u, v);
  }
  return Math.sqrt(total / P);
}

/** θ Xᵀ as a [P, n] float64 array (projected in float64 JS: exact enough that SW of a set with itself is 0). */
function project(X: Rows, theta: Float64Array, P: number): Float64Array {
  const { data, n, D } = X;
  const out = new Float64Array(P * n);
  for (let p = 0; p < P; p++) {
    const off = p * D;
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * D;
      for (let j = 0; j < D; j++) s += theta[off + j] * data[row + j];
      out[p * n + i] = s;
    }
  }
  return out;
}

/**
 * Exact W₂² between the empirical measures of sorted u (n points) and sorted v (m points). Breakpoints are compared
 * as integers in units of 1/(n m) so that equal quantile levels are recognized exactly.
 */
export function w2Squared1d(u: ArrayLike<number>, v: ArrayLike<number>): number {
  const n = u.length;
  const m = v.length;
  let i = 0;
  let j = 0;
  let pos = 0;
  let acc = 0;
  while (i < n && j < m) {
    const ei = (i + 1) * m;
    const ej = (j + 1) * n;
    const next = Math.min(ei, ej);
    const d = u[i] - v[j];
    acc += (next - pos) * d * d;
    pos = next;
    if (ei === next) i++;
    if (ej === next) j++;
  }
  return acc / (n * m);
}

export interface MmdOptions {
  /** RBF bandwidth h in k(x, y) = exp(−‖x − y‖² / (2 h²)); 'median' (default) uses the median heuristic. */
  bandwidth?: number | 'median';
  /**
   * 'biased' (default): the V-statistic MMD²_b = mean K_aa + mean K_bb − 2 mean K_ab (≥ 0, exactly 0 for identical
   * sets); 'unbiased': the U-statistic MMD²_u with the diagonals of K_aa, K_bb left out (unbiased, may be < 0).
   * Gretton et al. (2012), eqs. 3 and 5.
   */
  estimator?: 'biased' | 'unbiased';
}

const MEDIAN_MAX_POINTS = 1000;

/**
 * Median heuristic bandwidth (Gretton et al. 2012): the median Euclidean distance between distinct points of the
 * pooled sample (on at most 1000 evenly strided points of each set, so it stays O(1e6) distances).
 */
export function medianHeuristic(a: SampleSet, b: SampleSet): number {
  const A = readRows(a, 'a');
  const B = readRows(b, 'b');
  checkSameDim(A, B, ['a', 'b']);
  return medianOfRows(A, B);
}

function medianOfRows(A: Rows, B: Rows): number {
  const D = A.D;
  const pts: Float64Array[] = [];
  for (const X of [A, B]) {
    const stride = Math.max(1, Math.ceil(X.n / MEDIAN_MAX_POINTS));
    for (let i = 0; i < X.n; i += stride) pts.push(X.data.subarray(i * D, (i + 1) * D));
  }
  const N = pts.length;
  const d = new Float64Array((N * (N - 1)) / 2);
  let k = 0;
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let s = 0;
      for (let l = 0; l < D; l++) s += (pts[i][l] - pts[j][l]) ** 2;
      d[k++] = Math.sqrt(s);
    }
  }
  d.sort();
  const mid = d.length >> 1;
  return d.length % 2 ? d[mid] : 0.5 * (d[mid - 1] + d[mid]);
}

/** Squared maximum mean discrepancy with an RBF kernel (see MmdOptions for the estimators). */
export function mmd2(a: SampleSet, b: SampleSet, options: MmdOptions = {}): number {
  const estimator = checkChoice(options.estimator ?? 'biased', 'estimator', ['biased', 'unbiased'] as const);
  const minRows = estimator === 'unbiased' ? 2 : 1;
  const A = readRows(a, 'a', minRows);
  const B = readRows(b, 'b', minRows);
  checkSameDim(A, B, ['a', 'b']);
  let h: number;
  if (options.bandwidth === undefined || options.bandwidth === 'median') {
    h = medianOfRows(A, B);
    if (!(h > 0)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        'bandwidth: the median heuristic gave 0 (more than half the pooled points coincide); pass a number > 0',
        { argument: 'bandwidth' },
      );
    }
  } else {
    h = checkNumber(options.bandwidth, 'bandwidth', { gt: 0 });
  }
  // Center on the pooled mean so that the float32 expansion ‖x‖² + ‖y‖² − 2xᵀy loses little to cancellation.
  const D = A.D;
  const center = new Float64Array(D);
  for (const X of [A, B]) for (let i = 0; i < X.n; i++) for (let j = 0; j < D; j++) center[j] += X.data[i * D + j];
  for (let j = 0; j < D; j++) center[j] /= A.n + B.n;
  const gamma = 1 / (2 * h * h);
  return tf.tidy(() => {
    const ta = centered(A, center);
    const tb = centered(B, center);
    const saa = kernelSum(ta, ta, gamma);
    const sbb = kernelSum(tb, tb, gamma);
    const sab = kernelSum(ta, tb, gamma);
    const n = A.n;
    const m = B.n;
    if (estimator === 'biased') return saa / (n * n) + sbb / (m * m) - (2 * sab) / (n * m);
    // k(x, x) = 1 for the RBF kernel: the diagonal sums are exactly n and m.
    return (saa - n) / (n * (n - 1)) + (sbb - m) / (m * (m - 1)) - (2 * sab) / (n * m);
  });
}

/** Maximum mean discrepancy √(max(0, MMD²)) with an RBF kernel. */
export function mmd(a: SampleSet, b: SampleSet, options: MmdOptions = {}): number {
  return Math.sqrt(Math.max(0, mmd2(a, b, options)));
}

function centered(X: Rows, center: Float64Array): tf.Tensor2D {
  const out = new Float32Array(X.n * X.D);
  for (let i = 0; i < X.n; i++) for (let j = 0; j < X.D; j++) out[i * X.D + j] = X.data[i * X.D + j] - center[j];
  return tf.tensor2d(out, [X.n, X.D]);
}

const KERNEL_BLOCK_ELEMENTS = 1 << 22;

/** Σ_ij exp(−γ ‖x_i − y_j‖²), in row blocks of at most ~4M kernel entries. */
function kernelSum(X: tf.Tensor2D, Y: tf.Tensor2D, gamma: number): number {
  const [n] = X.shape;
  const [m] = Y.shape;
  const rows = Math.max(1, Math.floor(KERNEL_BLOCK_ELEMENTS / m));
  const y2 = tf.reshape(tf.sum(tf.square(Y), 1), [1, m]);
  let total = 0;
  for (let start = 0; start < n; start += rows) {
    const size = Math.min(rows, n - start);
    total += tf.tidy(() => {
      const xb = tf.slice(X, [start, 0], [size, -1]);
      const x2 = tf.sum(tf.square(xb), 1, true);
      const d2 = tf.relu(tf.sub(tf.add(x2, y2), tf.mul(2, tf.matMul(xb, Y, false, true))));
      // Row sums on the device (m terms each), then the rows in float64 here: a single float32 sum of n·m kernel
      // values loses ~1e-4 relative, which the difference of three such sums in MMD² would amplify.
      const rowSums = tf.sum(tf.exp(tf.mul(d2, -gamma)), 1).dataSync();
      let s = 0;
      for (const v of rowSums) s += v;
      return s;
    });
  }
  return total;
}
