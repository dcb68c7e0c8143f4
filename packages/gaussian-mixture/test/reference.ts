/**
 * An independent float64 evaluation of a Gaussian-mixture density and score at time t, straight from the formula
 * p_t(x) = Σ_k π_k N(x; α μ_k, α² Σ_k + σ² I), with a Cholesky factorization of each full covariance (no
 * eigendecomposition, no tfjs): the reference the package's float32 kernel is compared with.
 */
export function referenceLogProbAndScore(
  x: number[],
  weights: number[],
  means: number[][],
  covs: number[][][],
  alpha: number,
  variance: number,
): { logp: number; score: number[] } {
  const D = x.length;
  const logs: number[] = [];
  const grads: number[][] = [];
  for (let k = 0; k < weights.length; k++) {
    const C = covs[k].map((row, i) => row.map((v, j) => alpha * alpha * v + (i === j ? variance : 0)));
    const L: number[][] = Array.from({ length: D }, () => new Array(D).fill(0));
    for (let j = 0; j < D; j++) {
      let d = C[j][j];
      for (let l = 0; l < j; l++) d -= L[j][l] ** 2;
      L[j][j] = Math.sqrt(d);
      for (let i = j + 1; i < D; i++) {
        let s = C[i][j];
        for (let l = 0; l < j; l++) s -= L[i][l] * L[j][l];
        L[i][j] = s / L[j][j];
      }
    }
    const r = x.map((v, i) => v - alpha * means[k][i]);
    // forward solve L u = r, then back solve Lᵀ v = u: v = C⁻¹ r
    const u = new Array(D).fill(0);
    for (let i = 0; i < D; i++) {
      let s = r[i];
      for (let l = 0; l < i; l++) s -= L[i][l] * u[l];
      u[i] = s / L[i][i];
    }
    const v = new Array(D).fill(0);
    for (let i = D - 1; i >= 0; i--) {
      let s = u[i];
      for (let l = i + 1; l < D; l++) s -= L[l][i] * v[l];
      v[i] = s / L[i][i];
    }
    let logdet = 0;
    for (let i = 0; i < D; i++) logdet += 2 * Math.log(L[i][i]);
    const maha = u.reduce((a, b) => a + b * b, 0);
    logs.push(Math.log(weights[k]) - 0.5 * (D * Math.log(2 * Math.PI) + logdet + maha));
    grads.push(v.map((e) => -e));
  }
  const m = Math.max(...logs);
  const z = logs.reduce((a, l) => a + Math.exp(l - m), 0);
  const logp = m + Math.log(z);
  const score = new Array(D).fill(0);
  logs.forEach((l, k) => {
    const r = Math.exp(l - logp);
    for (let i = 0; i < D; i++) score[i] += r * grads[k][i];
  });
  return { logp, score };
}
