import * as tf from '@tensorflow/tfjs';
import { FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD, SbmError } from '@sbm/core';
import { affineScratch, checkGroupNormArgs, groupAffine } from './group_norm';
import { partsFor, ptr, runParts, simdFor } from './simd';
import { type KernelArgs, f32, free, runWasm, guarded } from './wasm';

export { FUSED_GROUP_NORM_GRAD };

/**
 * The backward pass of SbmGroupNorm in one kernel. With n = (v − μ)/s, s = √(σ² + eps), v = x + bias, group size N
 * (H·W·C/groups) and u = γ·n + β:
 *   d = dy · swish'(u)  (swish'(u) = σ(u)·(1 + u·(1 − σ(u))); d = dy without the activation),
 *   dβ = Σ d,  dγ = Σ d·n  (over B, H, W),  dn = d·γ,
 *   dx = (dn − mean_g(dn) − n·mean_g(dn·n)) / s  (Wu & He 2018, eq. 1 differentiated; the usual batch-norm backward
 *   with the group as the reduction set), and dbias[b, c] = Σ_{h,w} dx.
 * The statistics are recomputed from x by the forward's own routine (one read of x) rather than saved as extra forward
 * outputs: the forward stays a one-output kernel that the no-gradient path calls unchanged, and nothing but the
 * inputs has to be kept on the tape. Passes per sample: statistics; with swish, u into the dx buffer and σ(u) by the
 * backend's Sigmoid (XNNPACK) for the whole batch; d (stored in the dx buffer) with its per-channel sums Σd and Σd·n
 * in float64; dx. Inputs: dy, x, gamma, beta, bias [B, C] (optional); attrs as the
 * forward's. Outputs: dx [B, H, W, C], dgamma [C], dbeta [C], dbias [B, C].
 */
export function groupNormGradKernel(args: KernelArgs): tf.TensorInfo[] {
  const { x, gamma, bias, beta, groups, eps, swish } = checkGroupNormArgs(FUSED_GROUP_NORM_GRAD, args);
  const dy = args.inputs.dy as tf.TensorInfo | undefined;
  if (!dy || dy.shape.length !== 4 || dy.shape.some((d, i) => d !== x.shape[i])) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${FUSED_GROUP_NORM_GRAD}: dy must be [${x.shape.join(', ')}], got ${dy ? `[${dy.shape.join(', ')}]` : 'nothing'}`,
    );
  }
  const { backend } = args;
  const [B, H, W, C] = x.shape;
  const dxInfo = backend.makeOutput([B, H, W, C], 'float32');
  const dgInfo = backend.makeOutput([C], 'float32');
  const dbInfo = backend.makeOutput([C], 'float32');
  const dbiasInfo = backend.makeOutput([B, C], 'float32');
  const simd = B * H * W * C > 0 ? simdFor(backend) : null;
  if (simd) {
    // The passes below in 128-bit SIMD on the heap (assembly/kernels.ts), the sigmoid included and computed per
    // sample, so that u, σ(u) and d never leave the cache.
    // Samples are independent: with worker threads each takes a range of them (its own scratch). Each sample's
    // Σd and Σd·n go to `partials`, summed over the samples in order afterwards: the same bits for any split.
    const P = H * W;
    const ranges = partsFor(backend, B, P * C);
    const sb = Math.ceil(simd.groupNormScratchBytes(C) / 16) * 16;
    const scratch = backend.makeOutput([(ranges.length * sb) / 4], 'float32');
    const partials = backend.makeOutput([4 * B * C], 'float32'); // B × 2C float64
    const [pdy, px, pg, pb, pdx, pdbias, ppart, ps] = [dy, x, gamma, beta, dxInfo, dbiasInfo, partials, scratch].map(
      (t) => ptr(backend, t),
    );
    const pbias = bias ? ptr(backend, bias) : 0;
    const parts = ranges.map(([lo, hi], i) => [
      pdy + 4 * lo * P * C,
      px + 4 * lo * P * C,
      pbias ? pbias + 4 * lo * C : 0,
      pg,
      pb,
      pdx + 4 * lo * P * C,
      pdbias + 4 * lo * C,
      ppart + 16 * lo * C,
      hi - lo,
      P,
      C,
      groups,
      eps,
      swish ? 1 : 0,
      ps + i * sb,
    ]);
    return guarded(backend, [dxInfo, dgInfo, dbInfo, dbiasInfo], [scratch, partials], () => {
      runParts(backend, simd, 'groupNormBackward', parts);
      simd.sumRows64(ppart, B, 2 * C, ptr(backend, dbInfo), C);
      simd.sumRows64(ppart + 8 * C, B, 2 * C, ptr(backend, dgInfo), C);
    });
  }
  const P = H * W;
  const cpg = C / groups;
  const N = P * cpg;
  // Per-sample affine form n = x·ra + rb of the normalization (float64), recomputed as the forward did.
  const RA = new Float64Array(B * C);
  const RB = new Float64Array(B * C);
  const ra = new Float64Array(C);
  const rb = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  const scratch = affineScratch(C, groups);
  let sgInfo: tf.TensorInfo | undefined;
  {
    const xs = f32(backend, x);
    const bi = bias ? f32(backend, bias) : undefined;
    const g = f32(backend, gamma);
    const be = f32(backend, beta);
    const dx = f32(backend, dxInfo);
    for (let b = 0; b < B; b++) {
      groupAffine(xs, bi, b, P, C, groups, eps, ra, rb, scratch);
      RA.set(ra, b * C);
      RB.set(rb, b * C);
      if (!swish) continue;
      // u = γ·n + β into the dx buffer, for the backend's Sigmoid (XNNPACK) below — as in the forward.
      // (The forward's own expression, so σ sees the same float32 u.)
      for (let c = 0; c < C; c++) {
        scale[c] = g[c] * ra[c];
        shift[c] = be[c] + g[c] * rb[c];
      }
      const base = b * P * C;
      for (let p = 0; p < P; p++) {
        const o = base + p * C;
        for (let c = 0; c < C; c++) dx[o + c] = xs[o + c] * scale[c] + shift[c];
      }
    }
    if (swish) sgInfo = runWasm('Sigmoid', { x: dxInfo }, backend);
  }
  // Views after the last allocation (makeOutput and the Sigmoid may grow the heap).
  const xs = f32(backend, x);
  const dys = f32(backend, dy);
  const g = f32(backend, gamma);
  const dx = f32(backend, dxInfo);
  const sgs = sgInfo ? f32(backend, sgInfo) : undefined;
  const s1 = new Float64Array(C);
  const s2 = new Float64Array(C);
  const k1 = new Float64Array(C);
  const k2 = new Float64Array(C);
  const k3 = new Float64Array(C);
  const ga = new Float64Array(groups);
  const gb = new Float64Array(groups);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const dbias = new Float64Array(C);
  const dbiasAll = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    ra.set(RA.subarray(b * C, (b + 1) * C));
    rb.set(RB.subarray(b * C, (b + 1) * C));
    const base = b * P * C;
    s1.fill(0);
    s2.fill(0);
    if (sgs) {
      for (let p = 0; p < P; p++) {
        const o = base + p * C;
        for (let c = 0; c < C; c++) {
          const u = dx[o + c];
          const sg = sgs[o + c];
          const d = dys[o + c] * sg * (1 + u * (1 - sg));
          dx[o + c] = d;
          s1[c] += d;
          s2[c] += d * (xs[o + c] * ra[c] + rb[c]);
        }
      }
    } else {
      for (let p = 0; p < P; p++) {
        const o = base + p * C;
        for (let c = 0; c < C; c++) {
          const d = dys[o + c];
          dx[o + c] = d;
          s1[c] += d;
          s2[c] += d * (xs[o + c] * ra[c] + rb[c]);
        }
      }
    }
    ga.fill(0);
    gb.fill(0);
    for (let c = 0; c < C; c++) {
      dbeta[c] += s1[c];
      dgamma[c] += s2[c];
      const k = (c / cpg) | 0;
      ga[k] += g[c] * s1[c];
      gb[k] += g[c] * s2[c];
    }
    // dx = (γ d − A − n·Bg)·r with A = mean_g(dn), Bg = mean_g(dn·n), n = x·ra + rb, r = ra:
    // dx = d·(γ r) + x·(−Bg r²) + (−A r − Bg r·rb), one multiply-add chain per element.
    for (let c = 0; c < C; c++) {
      const k = (c / cpg) | 0;
      const A = ga[k] / N;
      const Bg = gb[k] / N;
      const r = ra[c];
      k1[c] = g[c] * r;
      k2[c] = -Bg * r * r;
      k3[c] = -A * r - Bg * r * rb[c];
    }
    dbias.fill(0);
    for (let p = 0; p < P; p++) {
      const o = base + p * C;
      for (let c = 0; c < C; c++) {
        const v = dx[o + c] * k1[c] + xs[o + c] * k2[c] + k3[c];
        dx[o + c] = v;
        dbias[c] += v;
      }
    }
    for (let c = 0; c < C; c++) dbiasAll[b * C + c] = dbias[c];
  }
  if (sgInfo) free(backend, sgInfo);
  f32(backend, dgInfo).set(dgamma);
  f32(backend, dbInfo).set(dbeta);
  f32(backend, dbiasInfo).set(dbiasAll);
  return [dxInfo, dgInfo, dbInfo, dbiasInfo];
}

/**
 * The same gradient as differentiable tfjs ops, for the one case the kernel cannot serve: a gradient recorded on an
 * outer tape (second-order use, e.g. a loss built from a score's input gradient). The kernel itself has no gradient.
 */
function compositeGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  bias: tf.Tensor,
  groups: number,
  eps: number,
  swish: boolean,
): tf.Tensor[] {
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape;
    const g5 = [B, H, W, groups, C / groups];
    const vg = tf.reshape(tf.add(x, tf.reshape(bias, [B, 1, 1, C])), g5);
    const { mean, variance } = tf.moments(vg, [1, 2, 4], true);
    const r = tf.rsqrt(tf.add(variance, eps));
    const n = tf.reshape(tf.mul(tf.sub(vg, mean), r), [B, H, W, C]);
    let d = dy;
    if (swish) {
      const u = tf.add(tf.mul(n, gamma), beta);
      const sg = tf.sigmoid(u);
      d = tf.mul(dy, tf.mul(sg, tf.add(1, tf.mul(u, tf.sub(1, sg)))));
    }
    const dbeta = tf.sum(d, [0, 1, 2]);
    const dgamma = tf.sum(tf.mul(d, n), [0, 1, 2]);
    const dn = tf.reshape(tf.mul(d, gamma), g5);
    const ng = tf.reshape(n, g5);
    const dxg = tf.sub(tf.sub(dn, tf.mean(dn, [1, 2, 4], true)), tf.mul(ng, tf.mean(tf.mul(dn, ng), [1, 2, 4], true)));
    const dx = tf.reshape(tf.mul(dxg, r), [B, H, W, C]);
    return [dx, dgamma, dbeta, tf.sum(dx, [1, 2])];
  });
}

/**
 * The gradient of SbmGroupNorm. It saves the four inputs, so callers recording a tape must pass a bias (zeros when
 * there is none: tfjs clones every saved input and cannot save a missing one) — @sbm/models' groupNorm does.
 */
export const groupNormGradConfig: tf.GradConfig = {
  kernelName: FUSED_GROUP_NORM,
  inputsToSave: ['x', 'gamma', 'beta', 'bias'],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma, beta, bias] = saved;
    const grads = tf.engine().isTapeOn()
      ? compositeGrad(
          dy as tf.Tensor,
          x,
          gamma,
          beta,
          bias,
          attrs.groups as number,
          attrs.eps as number,
          attrs.activation === 'swish',
        )
      : (tf
          .engine()
          .runKernel(FUSED_GROUP_NORM_GRAD, { dy: dy as tf.Tensor, x, gamma, beta, bias }, attrs) as tf.Tensor[]);
    const [dx, dgamma, dbeta, dbias] = grads;
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta, bias: () => dbias };
  },
};
