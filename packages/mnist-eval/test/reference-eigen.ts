/**
 * A second, independent Jacobi eigensolver for the tests only: it applies each rotation as the full two-sided
 * product (no closed-form diagonal update, no zeroed pivot) and stops on a different criterion, so agreement with
 * @sbm/metrics' jacobiEigen is evidence, not a tautology. (It was @sbm/gaussian-mixture's solver before the one in
 * @sbm/metrics became the only one in the library.)
 */

type Matrix = number[][];

/**
 * Eigendecomposition of a symmetric matrix by the cyclic Jacobi method (Golub & Van Loan, §8.5). Returns the
 * eigenvalues `values[j]` and the orthogonal matrix `vectors` whose column j is the j-th eigenvector, so that
 * A = U diag(values) Uᵀ. Jacobi rotations are backward stable and give eigenvalues to high relative accuracy, which
 * matters here: the smallest eigenvalue decides whether the covariance is positive definite.
 */
export function symmetricEigen(a: Matrix): { values: number[]; vectors: Matrix } {
  const n = a.length;
  const m = a.map((row) => row.slice());
  const v: Matrix = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  let scale = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) scale = Math.max(scale, Math.abs(m[i][j]));
  if (scale === 0) return { values: new Array(n).fill(0), vectors: v };
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p][q] * m[p][q];
    if (Math.sqrt(off) <= 1e-15 * scale) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p][q];
        if (apq === 0) continue;
        // The rotation angle that zeroes m[p][q]: tan θ = t solves t² + 2τ t − 1 = 0 (the smaller root, for stability).
        const tau = (m[q][q] - m[p][p]) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p];
          const mkq = m[k][q];
          m[k][p] = c * mkp - s * mkq;
          m[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k];
          const mqk = m[q][k];
          m[p][k] = c * mpk - s * mqk;
          m[q][k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: m.map((row, i) => row[i]), vectors: v };
}
