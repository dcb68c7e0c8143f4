import * as tf from '@tensorflow/tfjs';
import { beforeAll } from 'vitest';
import { _internals, registerWasmTrainingKernels } from '@sbm/wasm-kernels';

/** The file's tests run on wasm with this package's training kernels registered (a beforeAll of the caller's file). */
export function useWasmTrainingKernels(): void {
  beforeAll(async () => {
    registerWasmTrainingKernels();
    await tf.setBackend('wasm');
    await tf.ready();
  });
}

/** One group-norm case: NHWC input shape, the group count, whether a bias is added, and a shift of the mean. */
export interface GroupNormCase {
  b: number;
  h: number;
  w: number;
  c: number;
  groups: number;
  bias: boolean;
  offset?: number;
}

/** Deterministic uniform(−1, 1) data from a 32-bit seed (mulberry32), independent of any backend's RNG. */
export function seeded(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/**
 * max|a − b| / max(1, max|b|): absolute error for values of order ≤ 1, relative to the reference's scale above.
 * float32 sums of n terms carry errors ≈ n·2⁻²⁴·scale; with n ≤ a few thousand here that is ≤ 1e-4 of the scale.
 */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Runs `fn` on `backend` and returns the values of every tensor it returns (disposing them). */
export async function onBackend(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  // Backend buffers too: a kernel that forgets an intermediate leaks a data id, not an engine tensor.
  const idsBefore = tf.backend().numDataIds();
  const out = tf.tidy(fn);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => t.dataSync() as Float32Array).map((v) => Float32Array.from(v));
  tf.dispose(list);
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`${backend}: ${after - before} tensor(s) leaked`);
  const idsAfter = tf.backend().numDataIds();
  if (idsAfter !== idsBefore) throw new Error(`${backend}: ${idsAfter - idsBefore} backend buffer(s) leaked`);
  return values;
}

/** The two implementations every SIMD-backed kernel has: the SIMD module (the default) and the JavaScript loops. */
export const SIMD_PATHS = [
  { path: 'SIMD module', simd: true },
  { path: 'JavaScript', simd: false },
] as const;

/** Runs `fn` with the SIMD module switched on or off, restoring the previous setting afterwards. */
export async function withSimd<T>(simd: boolean, fn: () => Promise<T>): Promise<T> {
  const old = _internals.setSimdEnabled(simd);
  try {
    return await fn();
  } finally {
    _internals.setSimdEnabled(old);
  }
}
