import type * as tf from '@tensorflow/tfjs';
import { FUSED_GROUP_NORM, SbmError } from '@sbm/core';
import { type KernelArgs, f32 } from './wasm';

export { FUSED_GROUP_NORM };

/**
 * Group normalization (Wu & He 2018) of NHWC x + bias in one kernel: y = γ·(v − μ_g)/√(σ²_g + eps) + β with
 * v = x + bias[b, c] (ScoreNet's time-embedding bias, added before the norm) and μ_g, σ²_g over H, W and the channels
 * of group g, per sample. The composite form costs a transposing Mean and a rank-5 broadcasting Sub on wasm — about a
 * third of a ScoreNet forward pass; this is two passes over the heap with float64 statistics. Inputs: x [B, H, W, C],
 * gamma [C], beta [C], bias [B, C] (optional); attrs: groups, eps.
 */
export function groupNormKernel({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, gamma, beta, bias } = inputs as Record<string, tf.TensorInfo | undefined>;
  const groups = attrs.groups as number;
  const eps = attrs.eps as number;
  if (!x || !gamma || !beta || x.shape.length !== 4) {
    throw new SbmError('INVALID_ARGUMENT', `${FUSED_GROUP_NORM}: expected x [B, H, W, C], gamma [C] and beta [C]`);
  }
  const [B, H, W, C] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new SbmError('INVALID_ARGUMENT', `${FUSED_GROUP_NORM}: groups ${groups} must divide the channel count ${C}`);
  }
  if (bias && (bias.shape.length !== 2 || bias.shape[0] !== B || bias.shape[1] !== C)) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${FUSED_GROUP_NORM}: bias must be [${B}, ${C}], got [${bias.shape.join(', ')}]`,
    );
  }
  const out = backend.makeOutput([B, H, W, C], 'float32');
  // Views after the last allocation (makeOutput may grow the heap).
  const xs = f32(backend, x);
  const g = f32(backend, gamma);
  const be = f32(backend, beta);
  const bi = bias ? f32(backend, bias) : undefined;
  const ys = f32(backend, out);
  const P = H * W;
  const cpg = C / groups;
  const n = P * cpg;
  const sum = new Float64Array(groups);
  const sq = new Float64Array(groups);
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  const b0 = new Float64Array(C);
  const cs = new Float64Array(C);
  const cq = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    sum.fill(0);
    sq.fill(0);
    for (let c = 0; c < C; c++) b0[c] = bi ? bi[b * C + c] : 0;
    const base = b * P * C;
    // Per-channel partial sums first (contiguous inner loop), then folded into the groups.
    cs.fill(0);
    cq.fill(0);
    for (let p = 0; p < P; p++) {
      const o = base + p * C;
      for (let c = 0; c < C; c++) {
        const v = xs[o + c] + b0[c];
        cs[c] += v;
        cq[c] += v * v;
      }
    }
    for (let c = 0; c < C; c++) {
      const k = (c / cpg) | 0;
      sum[k] += cs[c];
      sq[k] += cq[c];
    }
    for (let c = 0; c < C; c++) {
      const k = (c / cpg) | 0;
      const mean = sum[k] / n;
      // Biased variance, as torch.nn.GroupNorm; clamped at 0 against rounding in E[v²] − μ².
      const variance = Math.max(sq[k] / n - mean * mean, 0);
      const r = 1 / Math.sqrt(variance + eps);
      scale[c] = g[c] * r;
      shift[c] = be[c] + (b0[c] - mean) * g[c] * r;
    }
    for (let p = 0; p < P; p++) {
      const o = base + p * C;
      for (let c = 0; c < C; c++) ys[o + c] = xs[o + c] * scale[c] + shift[c];
    }
  }
  return out;
}
