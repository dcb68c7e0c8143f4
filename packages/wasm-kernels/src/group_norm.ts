import type * as tf from '@tensorflow/tfjs';
import { FUSED_GROUP_NORM, SbmError } from '@sbm/core';
import { partsFor, ptr, runParts, simdFor } from './simd';
import { type KernelArgs, f32, free, runWasm, guarded } from './wasm';

export { FUSED_GROUP_NORM };

export type GroupNormActivation = 'none' | 'swish';

/** Checked inputs and attrs shared by the forward and the backward kernel. */
export interface GroupNormArgs {
  x: tf.TensorInfo;
  gamma: tf.TensorInfo;
  beta: tf.TensorInfo;
  bias?: tf.TensorInfo;
  groups: number;
  eps: number;
  swish: boolean;
}

export function checkGroupNormArgs(kernel: string, { inputs, attrs = {} }: KernelArgs): GroupNormArgs {
  const { x, gamma, beta, bias } = inputs as Record<string, tf.TensorInfo | undefined>;
  const groups = attrs.groups as number;
  const eps = attrs.eps as number;
  const activation = (attrs.activation ?? 'none') as GroupNormActivation;
  if (!x || !gamma || !beta || x.shape.length !== 4) {
    throw new SbmError('INVALID_ARGUMENT', `${kernel}: expected x [B, H, W, C], gamma [C] and beta [C]`);
  }
  const [B, , , C] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new SbmError('INVALID_ARGUMENT', `${kernel}: groups ${groups} must divide the channel count ${C}`);
  }
  if (gamma.shape.length !== 1 || gamma.shape[0] !== C || beta.shape.length !== 1 || beta.shape[0] !== C) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${kernel}: gamma and beta must be [${C}], got [${gamma.shape.join(', ')}] and [${beta.shape.join(', ')}]`,
    );
  }
  if (bias && (bias.shape.length !== 2 || bias.shape[0] !== B || bias.shape[1] !== C)) {
    throw new SbmError('INVALID_SHAPE', `${kernel}: bias must be [${B}, ${C}], got [${bias.shape.join(', ')}]`);
  }
  if (activation !== 'none' && activation !== 'swish') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${kernel}: activation must be 'none' or 'swish', got '${String(activation)}'`,
    );
  }
  if (!(eps > 0)) throw new SbmError('INVALID_ARGUMENT', `${kernel}: eps must be > 0, got ${String(eps)}`);
  return { x, gamma, beta, bias, groups, eps, swish: activation === 'swish' };
}

/**
 * Per-channel affine form of the normalization of sample b: n = (v − μ_g)/s_g = x·ra[c] + rb[c] with v = x + bias,
 * s = √(σ² + eps). Statistics accumulate in float64 (per channel first — a contiguous inner loop — then per group).
 * The forward and the backward kernel both call this, so the backward recomputes exactly the forward's μ and s.
 * Returns nothing: fills ra, rb (length C) and rs (1/s per channel).
 */
export function groupAffine(
  xs: Float32Array,
  bi: Float32Array | undefined,
  b: number,
  P: number,
  C: number,
  groups: number,
  eps: number,
  ra: Float64Array,
  rb: Float64Array,
  scratch: { cs: Float64Array; cq: Float64Array; sum: Float64Array; sq: Float64Array; b0: Float64Array },
): void {
  const { cs, cq, sum, sq, b0 } = scratch;
  const cpg = C / groups;
  const n = P * cpg;
  for (let c = 0; c < C; c++) b0[c] = bi ? bi[b * C + c] : 0;
  cs.fill(0);
  cq.fill(0);
  sum.fill(0);
  sq.fill(0);
  const base = b * P * C;
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
    ra[c] = r;
    rb[c] = (b0[c] - mean) * r;
  }
}

export function affineScratch(C: number, groups: number) {
  return {
    cs: new Float64Array(C),
    cq: new Float64Array(C),
    sum: new Float64Array(groups),
    sq: new Float64Array(groups),
    b0: new Float64Array(C),
  };
}

/**
 * Group normalization (Wu & He 2018) of NHWC x + bias in one kernel: y = act(γ·(v − μ_g)/√(σ²_g + eps) + β) with
 * v = x + bias[b, c] (ScoreNet's time-embedding bias, added before the norm), μ_g, σ²_g over H, W and the channels
 * of group g, per sample, and act the identity or swish(u) = u·σ(u) (every ScoreNet / NCSN++ norm but the attention
 * block's is followed by swish). The composite form costs a transposing Mean, a rank-5 broadcasting Sub and, with
 * swish, a Sigmoid and a Mul on wasm; this is two passes over the heap with float64 statistics, on the SIMD module
 * (sigmoid included) or, without it, in JavaScript (plus the backend's Sigmoid kernel and a product pass for swish).
 * Inputs: x [B, H, W, C], gamma [C], beta [C], bias [B, C] (optional); attrs: groups, eps, activation.
 */
export function groupNormKernel(args: KernelArgs): tf.TensorInfo {
  const { x, gamma, beta, bias, groups, eps, swish } = checkGroupNormArgs(FUSED_GROUP_NORM, args);
  const { backend } = args;
  const [B, H, W, C] = x.shape;
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const simd = B * H * W * C > 0 ? simdFor(backend) : null;
  if (simd) {
    // The same computation as below in 128-bit SIMD on the heap (assembly/kernels.ts), sigmoid included.
    // Samples are independent: with worker threads each takes a range of them (its own scratch).
    const P = H * W;
    const ranges = partsFor(backend, B, P * C);
    const sb = Math.ceil(simd.groupNormScratchBytes(C) / 16) * 16;
    const scratch = backend.makeOutput([(ranges.length * sb) / 4], 'float32');
    const [px, pg, pb, po, ps] = [x, gamma, beta, out, scratch].map((t) => ptr(backend, t));
    const pbias = bias ? ptr(backend, bias) : 0;
    const parts = ranges.map(([lo, hi], i) => [
      px + 4 * lo * P * C,
      pbias ? pbias + 4 * lo * C : 0,
      pg,
      pb,
      po + 4 * lo * P * C,
      hi - lo,
      P,
      C,
      groups,
      eps,
      swish ? 1 : 0,
      ps + i * sb,
    ]);
    return guarded(backend, out, [scratch], () => runParts(backend, simd, 'groupNormForward', parts));
  }
  // Views after the last allocation (makeOutput may grow the heap).
  const xs = f32(backend, x);
  const g = f32(backend, gamma);
  const be = f32(backend, beta);
  const bi = bias ? f32(backend, bias) : undefined;
  const ys = f32(backend, out);
  const P = H * W;
  const ra = new Float64Array(C);
  const rb = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  const scratch = affineScratch(C, groups);
  for (let b = 0; b < B; b++) {
    groupAffine(xs, bi, b, P, C, groups, eps, ra, rb, scratch);
    for (let c = 0; c < C; c++) {
      scale[c] = g[c] * ra[c];
      shift[c] = be[c] + g[c] * rb[c];
    }
    const base = b * P * C;
    for (let p = 0; p < P; p++) {
      const o = base + p * C;
      for (let c = 0; c < C; c++) ys[o + c] = xs[o + c] * scale[c] + shift[c];
    }
  }
  if (swish) {
    // y = u·σ(u) with the backend's Sigmoid (XNNPACK, SIMD) on the float32 u: ~7 ns a value against ~17 for
    // Math.exp in this loop, and the composite's own rounding (σ of the rounded u, then one float32 product).
    const sg = runWasm('Sigmoid', { x: out }, backend);
    const u = f32(backend, out);
    const sv = f32(backend, sg);
    for (let i = 0; i < u.length; i++) u[i] *= sv[i];
    free(backend, sg);
  }
  return out;
}
