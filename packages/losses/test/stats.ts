import * as tf from '@tensorflow/tfjs';
import { symmetricEigen } from '@sbm/gaussian-mixture';
import type { Sde } from '@sbm/sde';

/** Sample mean and its standard error s/√n (s with n − 1), read from a [n] tensor (which is disposed). */
export function meanSe(v: tf.Tensor): { mean: number; se: number; n: number } {
  const a = Array.from(v.dataSync());
  v.dispose();
  const n = a.length;
  const mean = a.reduce((s, x) => s + x, 0) / n;
  const varS = a.reduce((s, x) => s + (x - mean) * (x - mean), 0) / (n - 1);
  return { mean, se: Math.sqrt(varS / n), n };
}

/** tr((α² Σ + σ² I)⁻¹) from Σ's eigenvalues (float64). */
export function traceInvCov(cov: number[][], alpha: number, std: number): number {
  const { values } = symmetricEigen(cov);
  return values.reduce((s, l) => s + 1 / (alpha * alpha * l + std * std), 0);
}

/** ∫_a^b f(t) dt / (b − a) by composite Simpson with n (even) panels, float64. */
export function averageOver(f: (t: number) => number, a: number, b: number, n = 2000): number {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3 / (b - a);
}

/** E‖σ s + z‖² at the true score of N(μ, Σ) perturbed to time t: D − σ² tr(Σ_t⁻¹) (derivation in dsm.test.ts). */
export function dsmExpectation(sde: Sde, cov: number[][], t: number): number {
  const a = sde.alpha(t);
  const s = sde.std(t);
  return cov.length - s * s * traceInvCov(cov, a, s);
}
