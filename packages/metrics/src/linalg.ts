/**
 * Small dense float64 linear algebra on plain arrays: the one home of sbm's symmetric eigensolver and Cholesky
 * factor. The Gaussian-mixture oracle factors each covariance once here so that its tensor work stays in float32,
 * and the Fréchet distance takes matrix square roots through the same Jacobi solver.
 */

/** Row-major square matrix. */
export type Matrix = number[][];

/**
 * Eigendecomposition of a symmetric n×n matrix (row-major, overwritten) by cyclic Jacobi rotations in float64
 * (Golub & Van Loan, Matrix Computations, §8.5; the rotation formulas of Rutishauser 1966). Jacobi is slower than
 * QR but accurate to full relative precision for the small eigenvalues that matter in √λ, and simple.
 * Returns the eigenvalues and, if asked, the eigenvectors as the columns of a row-major n×n array.
 */
export function jacobiEigen(
  a: Float64Array,
  n: number,
  wantVectors: boolean,
): { values: Float64Array; vectors?: Float64Array } {
  const v = wantVectors ? new Float64Array(n * n) : undefined;
  if (v) for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let norm = 0;
  for (let i = 0; i < n * n; i++) norm += a[i] * a[i];
  norm = Math.sqrt(norm);
  for (let sweep = 0; sweep < 100 && norm > 0; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    // Off-diagonal mass at rounding level of the whole matrix: the diagonal holds the eigenvalues.
    if (Math.sqrt(2 * off) <= 1e-15 * norm) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // tan θ = t zeroes a_pq: t² + 2τt − 1 = 0 with τ = (a_qq − a_pp)/(2 a_pq); the smaller root is stable.
        const tau = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (tau >= 0 ? 1 : -1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        a[p * n + p] -= t * apq;
        a[q * n + q] += t * apq;
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let r = 0; r < n; r++) {
          if (r === p || r === q) continue;
          const arp = a[r * n + p];
          const arq = a[r * n + q];
          const np = c * arp - s * arq;
          const nq = s * arp + c * arq;
          a[r * n + p] = np;
          a[p * n + r] = np;
          a[r * n + q] = nq;
          a[q * n + r] = nq;
        }
        if (v) {
          for (let r = 0; r < n; r++) {
            const vrp = v[r * n + p];
            const vrq = v[r * n + q];
            v[r * n + p] = c * vrp - s * vrq;
            v[r * n + q] = s * vrp + c * vrq;
          }
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i];
  return { values, vectors: v };
}

/**
 * Eigendecomposition of a symmetric matrix given as rows: `values[j]` and the orthogonal matrix `vectors` whose
 * column j is the j-th eigenvector, so that A = U diag(values) Uᵀ. The input is not modified. Jacobi rotations give
 * eigenvalues to high relative accuracy, which matters where the smallest eigenvalue decides whether a covariance
 * is positive definite.
 */
export function symmetricEigen(a: Matrix): { values: number[]; vectors: Matrix } {
  const n = a.length;
  const flat = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) flat[i * n + j] = a[i][j];
  const { values, vectors } = jacobiEigen(flat, n, true);
  const u = vectors as Float64Array;
  return {
    values: Array.from(values),
    vectors: Array.from({ length: n }, (_, i) => Array.from(u.subarray(i * n, (i + 1) * n))),
  };
}

/** U diag(d) Uᵀ for U with eigenvectors as columns. */
export function fromEigen(values: readonly number[], vectors: Matrix): Matrix {
  const n = values.length;
  const out: Matrix = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[i][k] * values[k] * vectors[j][k];
      out[i][j] = s;
      out[j][i] = s;
    }
  }
  return out;
}

/** Lower Cholesky factor L with A = L Lᵀ, or null when a pivot is not positive (A not positive definite). */
export function cholesky(a: Matrix): Matrix | null {
  const n = a.length;
  const l: Matrix = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let j = 0; j < n; j++) {
    let d = a[j][j];
    for (let k = 0; k < j; k++) d -= l[j][k] * l[j][k];
    if (!(d > 0)) return null;
    const ljj = Math.sqrt(d);
    l[j][j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i][j];
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k];
      l[i][j] = s / ljj;
    }
  }
  return l;
}
