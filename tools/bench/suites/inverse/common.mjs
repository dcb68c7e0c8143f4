// Shared helpers of the inverse suite: module loading with a build hint, seeded JS randomness, statistics.
import * as tf from '@tensorflow/tfjs';

export const DIST_HINT =
  'for p in core sde ode samplers gaussian-mixture metrics wasm-kernels backend-node inverse-problems models training datasets mnist-eval; do (cd packages/$p && npx tsup); done';

/** Imports the named @sbm packages (their dists), with the build command in the error when one is missing. */
export async function loadModules(names) {
  const out = {};
  for (const [key, spec] of Object.entries(names)) {
    try {
      out[key] = await import(spec);
    } catch (e) {
      throw new Error(`inverse: cannot import ${spec} (build the dists first: ${DIST_HINT}) — ${e.message}`);
    }
  }
  return out;
}

/** A small seeded generator (mulberry32) for fixture parameters and measurement noise drawn in float64 JS. */
export function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    // Box–Muller; 1 − u keeps the log finite.
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return { uniform, normal };
}

export const meanOf = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean and standard error of the mean (sample SD / √n). */
export function meanSe(xs) {
  const n = xs.length;
  const m = meanOf(xs);
  if (n < 2) return { mean: m, se: 0, n };
  const v = xs.reduce((a, x) => a + (x - m) * (x - m), 0) / (n - 1);
  return { mean: m, se: Math.sqrt(v / n), n };
}

/** [n, ...] copies of one measurement row [1, ...shape] for a batch that shares it. */
export function tileRow(row, n) {
  return tf.tidy(() => tf.tile(row, [n, ...row.shape.slice(1).map(() => 1)]));
}

export const elapsed = (t0) => Math.round((performance.now() - t0) / 1000);
