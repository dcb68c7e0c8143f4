import type * as tf from '@tensorflow/tfjs';
import { FUSED_EMA, SbmError } from '@sbm/core';
import { groupedInputs } from './adam';
import { ptr, simdFor } from './simd';
import { type KernelArgs, f32 } from './wasm';

export { FUSED_EMA };

const fr = Math.fround;

/**
 * The EMA update of score_sde_pytorch models/ema.py, s ← s − (1 − d)(s − p), for every shadow in one kernel call
 * (inputs and attrs: FUSED_EMA in @sbm/core) instead of three kernels per weight. Same float32 operations in the
 * same order as @sbm/models' composite form, each rounded with Math.fround, the weight (1 − d) rounded to float32 as
 * the composite's scalar tensor is: bit-identical to it on wasm (see adam.ts for why float64-then-round is exact).
 */
export function emaKernel({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo[] {
  const groups = groupedInputs(FUSED_EMA, inputs, ['s', 'p'], attrs.count);
  const w0 = attrs.weight;
  if (typeof w0 !== 'number' || !Number.isFinite(w0)) {
    throw new SbmError('INVALID_ARGUMENT', `${FUSED_EMA}: attrs.weight must be a finite number, got ${String(w0)}`, {
      argument: 'weight',
    });
  }
  const w = fr(w0);
  const outs = groups.map(([s]) => backend.makeOutput(s.shape, 'float32'));
  const simd = simdFor(backend);
  if (simd) {
    // Four lanes at a time: the same float32 operations, the same bits.
    for (let i = 0; i < groups.length; i++) {
      const n = f32(backend, groups[i][0]).length;
      if (n > 0) simd.emaUpdate(ptr(backend, groups[i][0]), ptr(backend, groups[i][1]), ptr(backend, outs[i]), n, w);
    }
    return outs;
  }
  // Views after the last allocation (the heap may grow).
  for (let i = 0; i < groups.length; i++) {
    const s = f32(backend, groups[i][0]);
    const p = f32(backend, groups[i][1]);
    const o = f32(backend, outs[i]);
    for (let j = 0; j < s.length; j++) o[j] = s[j] - fr(fr(s[j] - p[j]) * w);
  }
  return outs;
}
