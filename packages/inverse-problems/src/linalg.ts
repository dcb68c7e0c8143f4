/**
 * Float64 dense linear algebra in plain JS for the operators' construction-time work (pseudo-inverses, Gram matrices,
 * seeded Gaussian matrices). Matrices are row-major Float64Arrays. Nothing here runs per sampling step, and nothing here
 * touches tf, so results are identical on every backend.
 */
import { SbmError, SeedStream } from '@sbm/core';

/** C = A B with A [m × k], B [k × n] (row-major), in i-k-j order so the inner loop walks rows contiguously. */
export function matMul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let l = 0; l < k; l++) {
      const v = a[i * k + l];
      if (v === 0) continue;
      const bl = l * n;
      for (let j = 0; j < n; j++) c[ci + j] += v * b[bl + j];
    }
  }
  return c;
}

/** Aᵀ for A [m × n]. */
export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** A Aᵀ [m × m] for A [m × n] (dot products of rows: contiguous). Symmetric by construction. */
export function gramRows(a: Float64Array, m: number, n: number): Float64Array {
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      const ai = i * n;
      const aj = j * n;
      for (let l = 0; l < n; l++) s += a[ai + l] * a[aj + l];
      g[i * m + j] = s;
      g[j * m + i] = s;
    }
  }
  return g;
}

/** Aᵀ A [n × n] for A [m × n]. */
export function gramCols(a: Float64Array, m: number, n: number): Float64Array {
  return gramRows(transpose(a, m, n), n, m);
}

/**
 * The Cholesky factor L (lower, row-major) of an SPD matrix G = L Lᵀ [n × n]. INVALID_ARGUMENT naming `argument` when
 * a pivot is not positive (G not positive definite, e.g. a rank-deficient A Aᵀ).
 */
export function cholesky(g: Float64Array, n: number, argument = 'matrix'): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = g[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${argument}: expected a symmetric positive definite matrix, got a non-positive pivot ${d} at row ${j} (the matrix is rank-deficient or not symmetric)`,
        { argument },
      );
    }
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = g[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Solves (L Lᵀ) X = B in place for B [n × cols] by forward then back substitution (row-oriented updates). */
export function choleskySolveInPlace(l: Float64Array, n: number, b: Float64Array, cols: number): Float64Array {
  // L Z = B.
  for (let i = 0; i < n; i++) {
    const bi = i * cols;
    for (let k = 0; k < i; k++) {
      const f = l[i * n + k];
      if (f === 0) continue;
      const bk = k * cols;
      for (let j = 0; j < cols; j++) b[bi + j] -= f * b[bk + j];
    }
    const d = l[i * n + i];
    for (let j = 0; j < cols; j++) b[bi + j] /= d;
  }
  // Lᵀ X = Z.
  for (let i = n - 1; i >= 0; i--) {
    const bi = i * cols;
    for (let k = i + 1; k < n; k++) {
      const f = l[k * n + i];
      if (f === 0) continue;
      const bk = k * cols;
      for (let j = 0; j < cols; j++) b[bi + j] -= f * b[bk + j];
    }
    const d = l[i * n + i];
    for (let j = 0; j < cols; j++) b[bi + j] /= d;
  }
  return b;
}

export interface SymmetricEigen {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Row j (vectors[j·n .. j·n + n)) is the unit eigenvector of values[j]: the matrix is Σ_j λ_j v_j v_jᵀ. */
  vectors: Float64Array;
}

/**
 * Eigen-decomposition of a real symmetric matrix [n × n]: Householder reduction to tridiagonal form, then the implicit
 * QL algorithm with Wilkinson-type shifts (the EISPACK tred2/tql2 pair, Golub & Van Loan §8.3). O(n³). The transform is
 * accumulated transposed (row j holds the j-th column of V) so that every inner loop walks memory contiguously, which
 * is what keeps n ≈ 1000 at a few seconds in JS. Only the lower triangle of `a` is read for symmetric inputs, but the
 * whole matrix must be finite.
 */
export function symmetricEigen(a: Float64Array, n: number, argument = 'matrix'): SymmetricEigen {
  if (a.length !== n * n) {
    throw new SbmError('INVALID_SHAPE', `${argument}: expected ${n}×${n} = ${n * n} entries, got ${a.length}`, {
      argument,
    });
  }
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) {
      throw new SbmError('NON_FINITE', `${argument}: expected finite entries, got ${a[i]} at index ${i}`, { argument });
    }
  }
  // w[b·n + a] is V[a][b] of the textbook formulation (w = Vᵀ); V starts as the (symmetric) input.
  const w = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: w };
  tridiagonalize(w, d, e, n);
  implicitQl(w, d, e, n, argument);
  // Ascending order, rows of w permuted along.
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i] - d[j]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    vectors.set(w.subarray(src * n, src * n + n), dst * n);
  });
  return { values, vectors };
}

/** Householder tridiagonalisation (tred2), accumulating the orthogonal transform into w = Vᵀ. */
function tridiagonalize(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1];
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      // The Householder vector of row i, scaled to avoid under/overflow.
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // p = A u / h (into e), using the lower triangle held in w.
      for (let j = 0; j < i; j++) {
        f = d[j];
        w[i * n + j] = f;
        const wj = j * n;
        g = e[j] + w[wj + j] * f;
        for (let k = j + 1; k < i; k++) {
          g += w[wj + k] * d[k];
          e[k] += w[wj + k] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      // A ← A − u qᵀ − q uᵀ on the leading i×i block.
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const wj = j * n;
        for (let k = j; k < i; k++) w[wj + k] -= f * e[k] + g * d[k];
        d[j] = w[wj + i - 1];
        w[wj + i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the Householder reflections into the orthogonal V (stored transposed).
  for (let i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i];
    w[i * n + i] = 1;
    const h = d[i + 1];
    const wi1 = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[wi1 + k] / h;
      for (let j = 0; j <= i; j++) {
        const wj = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += w[wi1 + k] * w[wj + k];
        for (let k = 0; k <= i; k++) w[wj + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) w[wi1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1];
    w[j * n + n - 1] = 0;
  }
  w[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e) (tql2), rotating the rows of w = Vᵀ along. */
function implicitQl(w: Float64Array, d: Float64Array, e: Float64Array, n: number, argument: string): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        // QL converges in a handful of sweeps per eigenvalue; a cap turns a pathological input into an error, not a hang.
        if (++iter > 60) {
          throw new SbmError(
            'NON_FINITE',
            `${argument}: the symmetric eigen-decomposition did not converge (eigenvalue ${l} of ${n})`,
            { argument },
          );
        }
        // Shift from the leading 2×2 block.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        // The implicit QL sweep: Givens rotations from m − 1 down to l.
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          const wi = i * n;
          const wi1 = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const t = w[wi1 + k];
            w[wi1 + k] = s * w[wi + k] + c * t;
            w[wi + k] = c * w[wi + k] - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

export interface PseudoInverse {
  /** A⁺ [cols × rows], row-major. */
  pinv: Float64Array;
  /** Singular values kept (above rcond · σ_max). */
  rank: number;
  /** All singular values of A (min(rows, cols) of them), descending, from the Gram eigenvalues. */
  singularValues: Float64Array;
}

/**
 * The Moore–Penrose pseudo-inverse of A [rows × cols] from the eigen-decomposition of the smaller Gram matrix:
 * rows ≤ cols: A Aᵀ = U Λ Uᵀ and A⁺ = Aᵀ U Λ⁺ Uᵀ; otherwise AᵀA = V Λ Vᵀ and A⁺ = V Λ⁺ Vᵀ Aᵀ (σᵢ² = λᵢ). Singular
 * values below rcond · σ_max are dropped (treated as 0). Squaring A squares its condition number, so components with
 * σ/σ_max near √ε ≈ 1e-8 lose accuracy; the default rcond 1e-6 keeps well clear of that.
 */
export function pseudoInverse(a: Float64Array, rows: number, cols: number, rcond = 1e-6): PseudoInverse {
  if (!(Number.isFinite(rcond) && rcond >= 0 && rcond < 1)) {
    throw new SbmError('INVALID_ARGUMENT', `rcond: expected a number in [0, 1), got ${rcond}`, { argument: 'rcond' });
  }
  const wide = rows <= cols;
  const k = wide ? rows : cols;
  const g = wide ? gramRows(a, rows, cols) : gramCols(a, rows, cols);
  const { values, vectors } = symmetricEigen(g, k, 'operator');
  const sigmas = Float64Array.from(values, (v) => Math.sqrt(Math.max(v, 0))).reverse();
  const cut = rcond * sigmas[0];
  // C = Σ_kept v vᵀ / λ (the pseudo-inverse of the Gram matrix).
  const c = new Float64Array(k * k);
  let rank = 0;
  for (let j = 0; j < k; j++) {
    const sigma = Math.sqrt(Math.max(values[j], 0));
    if (!(sigma > cut) || sigma === 0) continue;
    rank++;
    const inv = 1 / values[j];
    const v = vectors.subarray(j * k, j * k + k);
    for (let p = 0; p < k; p++) {
      const vp = v[p] * inv;
      if (vp === 0) continue;
      for (let q = 0; q < k; q++) c[p * k + q] += vp * v[q];
    }
  }
  // wide: A⁺ = Aᵀ C [cols × rows]; tall: A⁺ = C Aᵀ [cols × rows].
  const at = transpose(a, rows, cols);
  const pinv = wide ? matMul(at, c, cols, rows, rows) : matMul(c, at, cols, cols, rows);
  return { pinv, rank, singularValues: sigmas };
}

/**
 * `count` standard normal draws in float64 from a SeedStream (Box–Muller on the stream's 31-bit uniforms): plain JS,
 * so the same seed gives the same numbers on every tf backend (tf.randomNormal's kernels differ between backends).
 */
export function seededNormals(stream: SeedStream, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    // 1 − u ∈ (0, 1]: log never sees 0.
    const r = Math.sqrt(-2 * Math.log(1 - stream.uniform()));
    const theta = 2 * Math.PI * stream.uniform();
    out[i] = r * Math.cos(theta);
    if (i + 1 < count) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
