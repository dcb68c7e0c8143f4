// Float64 helpers shared by the inverse-problems tests (independent of the library's linear algebra).
import * as tf from '@tensorflow/tfjs';
import type { SeedStream } from '@sbm/core';
import type { LinearOperator } from '@sbm/inverse-problems';
import type { ScoreFn, VeSde } from '@sbm/sde';

export type M = number[][];
export const T = (a: M): M => a[0].map((_, j) => a.map((row) => row[j]));
export const mul = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, v, l) => s + v * b[l][j], 0)));

/** Inverse by Gauss–Jordan elimination with partial pivoting (float64). */
export function inv(a: M): M {
  const n = a.length;
  const w = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => +(i === j))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(w[r][c]) > Math.abs(w[p][c])) p = r;
    [w[c], w[p]] = [w[p], w[c]];
    const d = w[c][c];
    for (let j = 0; j < 2 * n; j++) w[c][j] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = w[r][c];
      for (let j = 0; j < 2 * n; j++) w[r][j] -= f * w[c][j];
    }
  }
  return w.map((row) => row.slice(n));
}

/** n standard normals from `stream` by Box–Muller (two per pair of uniforms). */
export function normals(stream: SeedStream, n: number): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const r = Math.sqrt(-2 * Math.log(1 - stream.uniform()));
    const a = 2 * Math.PI * stream.uniform();
    out.push(r * Math.cos(a), r * Math.sin(a));
  }
  return out.slice(0, n);
}

/**
 * The exact score of data N(0, I) under the VE SDE `ve`: p_t = N(0, (1 + σ(t)²) I), s = −x/(1 + σ(t)²). Cheap and
 * separable (a coordinate's score reads only itself).
 */
export function veGaussScore(ve: VeSde): ScoreFn {
  return (x, t) =>
    tf.tidy(() => {
      const sigma = tf.mul(ve.sigmaMin, tf.exp(tf.mul(t, Math.log(ve.sigmaMax / ve.sigmaMin))));
      return tf.div(x, tf.reshape(tf.neg(tf.add(1, tf.square(sigma))), [-1, 1]));
    });
}

/** `signal` and `onProgress` options that abort the run when progress reports step `step`. */
export function abortAtStep(step: number): { signal: AbortSignal; onProgress: (p: { step: number }) => void } {
  const ac = new AbortController();
  return {
    signal: ac.signal,
    onProgress: (p) => {
      if (p.step === step) ac.abort();
    },
  };
}

/** Inpainting of the `known` coordinates of a D-vector: A = rows of I, decoupled with T = I. */
export function maskOperator(D: number, known: number[]): LinearOperator & { dispose(): void } {
  const S = tf.tensor2d(known.map((i) => Array.from({ length: D }, (_, j) => +(i === j))));
  const m = tf.tensor1d(Array.from({ length: D }, (_, j) => +known.includes(j)));
  return {
    name: 'test-mask',
    inShape: [D],
    outShape: [known.length],
    forward: (x) => tf.matMul(x as tf.Tensor2D, S, false, true),
    adjoint: (y) => tf.matMul(y as tf.Tensor2D, S),
    pinv: (y) => tf.matMul(y as tf.Tensor2D, S),
    decoupled: { transform: (x) => tf.clone(x), inverse: (x) => tf.clone(x), mask: m },
    dispose: () => tf.dispose([S, m]),
  };
}
