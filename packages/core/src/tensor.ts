import * as tf from '@tensorflow/tfjs';
import { SbmError } from './errors';

/**
 * Reshapes a per-sample tensor of shape [B] so it broadcasts over a batch of data of shape [B, ...rest]
 * (e.g. std(t) over NHWC images).
 */
export function broadcastBatch(v: tf.Tensor, like: tf.Tensor | readonly number[]): tf.Tensor {
  const shape = Array.isArray(like) ? (like as number[]) : (like as tf.Tensor).shape;
  if (v.rank !== 1 || v.shape[0] !== shape[0]) {
    throw new SbmError(
      'INVALID_SHAPE',
      `broadcastBatch: expected a [${shape[0]}] tensor to match the batch, got [${v.shape.join(', ')}]`,
      { expected: [shape[0]], received: v.shape },
    );
  }
  return tf.reshape(v, [shape[0], ...new Array(shape.length - 1).fill(1)]);
}

/** Number of values per sample: product of all dimensions but the first. */
export function sampleSize(shape: readonly number[]): number {
  let d = 1;
  for (let i = 1; i < shape.length; i++) d *= shape[i];
  return d;
}

/** [B, ...rest] → [B, D]. */
export function flattenBatch(x: tf.Tensor): tf.Tensor2D {
  return tf.reshape(x, [x.shape[0], sampleSize(x.shape)]) as tf.Tensor2D;
}

/** [B, D] → [B, ...rest]. */
export function unflattenBatch(x: tf.Tensor, shape: readonly number[]): tf.Tensor {
  return tf.reshape(x, [x.shape[0], ...shape.slice(1)]);
}

/** Per-sample Euclidean norm: [B, ...] → [B]. */
export function perSampleNorm(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(perSampleSum(tf.square(x)))) as tf.Tensor1D;
}

/** Per-sample sum over every axis but the first: [B, ...] → [B]. */
export function perSampleSum(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sum(flattenBatch(x), 1)) as tf.Tensor1D;
}

/** Per-sample mean over every axis but the first: [B, ...] → [B]. */
export function perSampleMean(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.mean(flattenBatch(x), 1)) as tf.Tensor1D;
}

/** Per-sample dot product ⟨a_b, c_b⟩: [B, ...] × [B, ...] → [B]. */
export function perSampleDot(a: tf.Tensor, b: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => perSampleSum(tf.mul(a, b)));
}

/** A [B] tensor filled with the scalar `t` (the time argument of a score function). */
export function fillTime(batch: number, t: number): tf.Tensor1D {
  return tf.fill([batch], t, 'float32') as tf.Tensor1D;
}

/**
 * The name of sbm's fused group-norm kernel (@sbm/wasm-kernels registers it for 'wasm', with a gradient; @sbm/models'
 * groupNorm / groupNormSwish call it where it and FUSED_GROUP_NORM_GRAD are registered). Inputs x [B, H, W, C],
 * gamma [C], beta [C], bias [B, C] (optional, added before normalizing; required while a gradient is recorded, since
 * the gradient saves it — zeros when there is none); attrs groups, eps, activation ('none' | 'swish', applied after
 * the scale and shift).
 */
export const FUSED_GROUP_NORM = 'SbmGroupNorm';

/**
 * The backward kernel of FUSED_GROUP_NORM: inputs dy, x, gamma, beta, bias (optional) and the forward's attrs;
 * outputs dx [B, H, W, C], dgamma [C], dbeta [C], dbias [B, C].
 */
export const FUSED_GROUP_NORM_GRAD = 'SbmGroupNormGrad';

/**
 * The name of sbm's fused Adam kernel (@sbm/wasm-kernels registers it for 'wasm'; @sbm/training's Adam.update calls
 * it where it is registered). One call updates every weight: inputs p0…, g0…, m0…, v0… (i < attrs.count, float32,
 * equal shapes per i), optional `scale` (float32 scalar: the gradient multiplier) and `apply` (bool scalar: false
 * keeps every value); attrs count, beta1, beta2, eps, stepSize (lr / (1 − β1ᵗ)), sqrtBc2 (√(1 − β2ᵗ)) and scale (a
 * number, used when there is no `scale` input). Outputs: [p′0…, m′0…, v′0…], each op rounded to float32 in the
 * composite's order.
 */
export const FUSED_ADAM = 'SbmAdam';

/**
 * The name of sbm's fused EMA kernel (@sbm/wasm-kernels registers it for 'wasm'; @sbm/models' EMA update calls it
 * where it is registered): inputs s0…, p0… (i < attrs.count, float32, equal shapes per i), attr weight (1 − decay);
 * outputs [s′0…] with s′ = s − (s − p)·weight, each op rounded to float32.
 */
export const FUSED_EMA = 'SbmEma';
