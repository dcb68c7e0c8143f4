import { SeedStream } from '@sbm/core';
import { GaussianMixture } from './mixture';

/**
 * The 2-D Gaussian of issue 13 (a single component, so its probability-flow map is closed-form): mean (2, −1),
 * covariance [[1, 0.6], [0.6, 0.5]] (correlation 0.85, eigenvalues ≈ 1.37 and 0.13: anisotropic).
 */
export function gaussian2d(): GaussianMixture {
  return new GaussianMixture({
    weights: [1],
    means: [[2, -1]],
    covariances: [
      [
        [1, 0.6],
        [0.6, 0.5],
      ],
    ],
  });
}

/**
 * A 2-D mixture of 5 components with full, differently oriented covariances: modes 3–6 apart with stds of 0.5–1.2,
 * so the components are distinct yet overlap in their tails (a multimodal target where mode weights matter).
 * Its spread (≈ 7) is well below the VE prior std σ_max = 50 and comparable to the VP prior's unit scale.
 */
export function mixture2d(): GaussianMixture {
  return new GaussianMixture({
    weights: [0.25, 0.2, 0.2, 0.2, 0.15],
    means: [
      [-3, -2],
      [2.5, 2.5],
      [3, -2.5],
      [-2, 3],
      [0, 0],
    ],
    covariances: [
      [
        [1, 0.5],
        [0.5, 0.8],
      ],
      [
        [0.6, -0.3],
        [-0.3, 1.2],
      ],
      [
        [0.5, 0],
        [0, 0.5],
      ],
      [
        [1.5, 0.9],
        [0.9, 1],
      ],
      [
        [0.3, 0.1],
        [0.1, 0.4],
      ],
    ],
  });
}

/** Standard normals from a SplitMix stream by Box–Muller (float64, fixed for all time: fixtures must not drift). */
function normals(stream: SeedStream, n: number): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const u1 = 1 - stream.uniform();
    const u2 = stream.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out.push(r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2));
  }
  return out.slice(0, n);
}

/**
 * A 16-D mixture of 4 components with unequal weights (0.4, 0.3, 0.2, 0.1), means drawn from N(0, 1.5² I) (pairwise
 * distances ≈ 8) and full covariances Σ_k = 0.8 A_k A_kᵀ/16 + 0.2 I with Gaussian A_k (eigenvalues spread over
 * roughly [0.2, 3.4] by the Marchenko–Pastur law): anisotropic, correlated, and deterministic (fixed seed).
 */
export function mixture16d(): GaussianMixture {
  const D = 16;
  const K = 4;
  const stream = new SeedStream(16);
  const means: number[][] = [];
  const covariances: number[][][] = [];
  for (let k = 0; k < K; k++) {
    means.push(normals(stream, D).map((v) => 1.5 * v));
    const a = normals(stream, D * D);
    const cov: number[][] = [];
    for (let i = 0; i < D; i++) {
      cov.push([]);
      for (let j = 0; j < D; j++) {
        let s = 0;
        for (let l = 0; l < D; l++) s += a[i * D + l] * a[j * D + l];
        cov[i].push((0.8 * s) / D + (i === j ? 0.2 : 0));
      }
    }
    covariances.push(cov);
  }
  return new GaussianMixture({ weights: [0.4, 0.3, 0.2, 0.1], means, covariances });
}
