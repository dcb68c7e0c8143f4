import * as tf from '@tensorflow/tfjs';
import type { KernelArgs } from './wasm';
import { free, runWasm } from './wasm';

type Impl = (args: KernelArgs) => tf.TensorInfo;

let original: Impl | null = null;

/** Remembers the backend's own BatchMatMul, which `batchMatMul` delegates to. */
export function setOriginalBatchMatMul(impl: Impl): void {
  original = impl;
}

/**
 * tfjs-backend-wasm runs BatchMatMul on XNNPACK only without transposes and with batch 1; with transposeA or
 * transposeB it falls back to a scalar loop that is 10–15× slower (measured: [3136,256]ᵀ·[3136,256] 300 ms vs
 * 27 ms when the operand is first transposed by XNNPACK's transpose). The gradients of every dense layer are
 * exactly such products (dA = dy·Bᵀ, dB = Aᵀ·dy), so for batch-1 products the transposed operand is materialized
 * with the backend's Transpose kernel and the plain product is run. Batched products keep the backend's path.
 */
export function batchMatMul(args: KernelArgs): tf.TensorInfo {
  if (original === null) throw new Error('BatchMatMul override used before registration');
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
  const batch = (s: number[]) => tf.util.sizeFromShape(s.slice(0, -2));
  const plain = (!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32';
  if (plain || batch(a.shape) !== 1 || batch(b.shape) !== 1) return original(args);

  const swapLast = (x: tf.TensorInfo) => {
    const perm = x.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return runWasm('Transpose', { x }, args.backend, { perm });
  };
  const a2 = transposeA ? swapLast(a) : a;
  const b2 = transposeB ? swapLast(b) : b;
  const out = original({
    inputs: { a: a2, b: b2 },
    backend: args.backend,
    attrs: { ...args.attrs, transposeA: false, transposeB: false },
  });
  if (a2 !== a) free(args.backend, a2);
  if (b2 !== b) free(args.backend, b2);
  return out;
}
