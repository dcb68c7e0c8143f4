import { SbmError, describeValue } from '@sbm/core';
import { jacobiEigen } from './linalg';

/** A vector as a plain array or a typed array. */
export type VectorLike = ArrayLike<number>;
/** A square matrix as rows. */
export type MatrixLike = ArrayLike<ArrayLike<number>>;

// Relative tolerance for the symmetry check of a covariance: sample covariances are symmetric by construction, so
// anything beyond rounding means the caller passed something else.
const SYMMETRY_TOLERANCE = 1e-8;

function invalid(argument: string, expected: string, received: string): SbmError {
  return new SbmError('INVALID_ARGUMENT', `frechetDistance: ${argument}: expected ${expected}, got ${received}`, {
    argument,
  });
}

function readVector(v: unknown, name: string, dim?: number): number[] {
  if (v === null || typeof v !== 'object' || typeof (v as VectorLike).length !== 'number') {
    throw invalid(name, 'an array of numbers', describeValue(v));
  }
  const arr = Array.from(v as VectorLike);
  if (arr.length === 0) throw invalid(name, 'a non-empty array', 'an empty array');
  if (dim !== undefined && arr.length !== dim) {
    throw new SbmError('INVALID_SHAPE', `frechetDistance: ${name}: expected length ${dim}, got ${arr.length}`, {
      argument: name,
    });
  }
  if (!arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new SbmError(
      'NON_FINITE',
      `frechetDistance: ${name}: expected finite numbers, got NaN, Inf or a non-number`,
      {
        argument: name,
      },
    );
  }
  return arr;
}

function readSymmetric(m: unknown, name: string, dim: number): number[][] {
  if (m === null || typeof m !== 'object' || typeof (m as MatrixLike).length !== 'number') {
    throw invalid(name, `a ${dim}×${dim} array of rows`, describeValue(m));
  }
  const rowsIn = m as MatrixLike;
  if (rowsIn.length !== dim) {
    throw new SbmError('INVALID_SHAPE', `frechetDistance: ${name}: expected ${dim} rows, got ${rowsIn.length}`, {
      argument: name,
    });
  }
  const rows = Array.from(rowsIn, (r, i) => readVector(r, `${name}[${i}]`, dim));
  let scale = 0;
  for (let i = 0; i < dim; i++) scale = Math.max(scale, Math.abs(rows[i][i]));
  for (let i = 0; i < dim; i++) {
    for (let j = i + 1; j < dim; j++) {
      if (Math.abs(rows[i][j] - rows[j][i]) > SYMMETRY_TOLERANCE * Math.max(scale, 1e-300)) {
        throw invalid(
          name,
          'a symmetric matrix',
          `entries [${i}][${j}] = ${rows[i][j]} and [${j}][${i}] = ${rows[j][i]}`,
        );
      }
    }
  }
  // Average the two triangles so that the eigen solver sees an exactly symmetric matrix.
  for (let i = 0; i < dim; i++) {
    for (let j = i + 1; j < dim; j++) {
      const s = 0.5 * (rows[i][j] + rows[j][i]);
      rows[i][j] = s;
      rows[j][i] = s;
    }
  }
  return rows;
}

function flat(m: number[][]): Float64Array {
  const n = m.length;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out.set(m[i], i * n);
  return out;
}

function rootsOf(values: Float64Array, name: string): Float64Array {
  let top = 0;
  for (const lam of values) top = Math.max(top, Math.abs(lam));
  return values.map((lam) => {
    // Rounding leaves eigenvalues of a singular PSD matrix a little below 0; clearly negative ones are an error.
    if (lam < -1e-6 * top) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `frechetDistance: ${name}: expected a positive semi-definite matrix, got an eigenvalue ${lam} (largest |λ| ${top})`,
        { argument: name },
      );
    }
    return Math.sqrt(Math.max(lam, 0));
  });
}

/** Σ^{1/2} = U diag(√λ) Uᵀ (row-major n×n) of a symmetric PSD matrix given row-major (it is overwritten). */
function sqrtPsdFlat(a: Float64Array, n: number, name: string): Float64Array {
  const { values, vectors } = jacobiEigen(a, n, true);
  const u = vectors as Float64Array;
  const roots = rootsOf(values, name);
  const out = new Float64Array(n * n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) w[k] = u[i * n + k] * roots[k];
    for (let j = i; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += w[k] * u[j * n + k];
      out[i * n + j] = sum;
      out[j * n + i] = sum;
    }
  }
  return out;
}

/**
 * Principal square root of a symmetric positive semi-definite matrix, Σ^{1/2} = U diag(√λ) Uᵀ, from its Jacobi
 * eigendecomposition. Eigenvalues that rounding pushed slightly below zero are treated as 0; clearly negative ones
 * (below −1e-6 of the largest |λ|) mean the matrix is not a covariance (INVALID_ARGUMENT).
 */
export function sqrtPsd(a: MatrixLike, name = 'matrix'): number[][] {
  const n = a.length;
  const rows = Array.from(a, (r) => Array.from(r));
  const r = sqrtPsdFlat(flat(rows), n, name);
  return Array.from({ length: n }, (_, i) => Array.from(r.subarray(i * n, (i + 1) * n)));
}

/** a · b for row-major n×n matrices. */
function matMul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/**
 * Squared Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2) (Dowson & Landau 1982; the FID of
 * Heusel et al. 2017, eq. 6):
 *
 *   d² = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}.
 *
 * tr (Σ1 Σ2)^{1/2} is evaluated through the symmetric PSD matrix Σ1^{1/2} Σ2 Σ1^{1/2} (same eigenvalues as Σ1 Σ2),
 * so both square roots come from symmetric Jacobi eigendecompositions in float64 — no complex parts or the
 * ill-conditioned non-symmetric sqrtm that pytorch-fid has to regularize. Rounding can make d² slightly negative for
 * (nearly) identical inputs; it is clamped at 0. Like FID, this returns the *squared* distance.
 */
export function frechetDistance(mu1: VectorLike, cov1: MatrixLike, mu2: VectorLike, cov2: MatrixLike): number {
  const m1 = readVector(mu1, 'mu1');
  const dim = m1.length;
  const m2 = readVector(mu2, 'mu2', dim);
  const s1 = readSymmetric(cov1, 'cov1', dim);
  const s2 = readSymmetric(cov2, 'cov2', dim);
  let meanTerm = 0;
  for (let i = 0; i < dim; i++) meanTerm += (m1[i] - m2[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < dim; i++) traces += s1[i][i] + s2[i][i];
  const root1 = sqrtPsdFlat(flat(s1), dim, 'cov1');
  const inner = matMul(matMul(root1, flat(s2), dim), root1, dim);
  // The product is symmetric in exact arithmetic; symmetrize the rounding.
  for (let i = 0; i < dim; i++) {
    for (let j = i + 1; j < dim; j++) {
      const s = 0.5 * (inner[i * dim + j] + inner[j * dim + i]);
      inner[i * dim + j] = s;
      inner[j * dim + i] = s;
    }
  }
  // Only the eigenvalues are needed: tr M^{1/2} = Σ √λ_i(M). A negative one here means cov2 is not PSD.
  const { values } = jacobiEigen(inner, dim, false);
  let cross = 0;
  for (const r of rootsOf(values, 'cov2')) cross += r;
  return Math.max(0, meanTerm + traces - 2 * cross);
}
