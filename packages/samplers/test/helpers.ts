import type * as tf from '@tensorflow/tfjs';
import { slicedWasserstein, sampleCovariance, sampleMean } from '@sbm/metrics';

/** Sliced W2 with a fixed set of directions (128 projections, seed 3) so every comparison uses the same slices. */
export const swd = (a: tf.Tensor, b: tf.Tensor): number => slicedWasserstein(a, b, { projections: 128, seed: 3 });

/**
 * The sliced-W2 floor: at n = 1000 the distance between two independent true sample sets fluctuates a lot (0.12–0.34
 * over 12 pairs for mixture2d, mean 0.21), so one pair is no yardstick. We use K = 4 independent true sets: the floor
 * is the mean over their 6 pairs, and a sampler's distance is its mean distance to the same 4 sets. An exact sampler
 * then has E[distance] = E[floor].
 */
export function floorOf(refs: tf.Tensor[]): number {
  const d: number[] = [];
  for (let i = 0; i < refs.length; i++) for (let j = i + 1; j < refs.length; j++) d.push(swd(refs[i], refs[j]));
  return d.reduce((s, v) => s + v, 0) / d.length;
}

export function meanSwd(x: tf.Tensor, refs: tf.Tensor[]): number {
  return refs.map((r) => swd(x, r)).reduce((s, v) => s + v, 0) / refs.length;
}

/**
 * Sample mean and covariance against the truth, with tolerances from the sample size n: the mean's standard error is
 * √(Σ_jj/n); a sample covariance entry has standard error ≈ √((Σ_ii Σ_jj + Σ_ij²)/n) (Gaussian fourth moments; the
 * mixture's are of the same order). Returns the largest |error| / SE of each.
 */
export function momentErrors(x: tf.Tensor, mean: number[], cov: number[][]): { meanZ: number; covZ: number } {
  const n = x.shape[0];
  const m = sampleMean(x);
  const c = sampleCovariance(x);
  let meanZ = 0;
  let covZ = 0;
  for (let i = 0; i < mean.length; i++) {
    meanZ = Math.max(meanZ, Math.abs(m[i] - mean[i]) / Math.sqrt(cov[i][i] / n));
    for (let j = 0; j < mean.length; j++) {
      const se = Math.sqrt((cov[i][i] * cov[j][j] + cov[i][j] ** 2) / n);
      covZ = Math.max(covZ, Math.abs(c[i][j] - cov[i][j]) / se);
    }
  }
  return { meanZ, covZ };
}
