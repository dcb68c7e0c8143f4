import * as tf from '@tensorflow/tfjs';
import { FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD, SbmError, checkNumber, checkTensor } from '@sbm/core';

/** swish(x) = x·sigmoid(x) (SiLU), the activation of every score_sde model and of the tutorial. */
export function swish<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x))) as T;
}

/**
 * Group normalization (Wu & He 2018) for NHWC tensors: the C channels are split into `groups` contiguous groups
 * (as torch.nn.GroupNorm splits NCHW channels), each normalized over H, W and its channels per sample, then scaled
 * and shifted per channel. score_sde uses eps 1e-6; torch's default (the tutorial) is 1e-5. `bias` ([B, 1, 1, C] or
 * [B, C]: ScoreNet's time embedding) is added to x first. Where the running backend has sbm's fused kernel and its
 * backward (FUSED_GROUP_NORM / FUSED_GROUP_NORM_GRAD, registered for wasm by @sbm/wasm-kernels), one kernel call
 * does it all — also under a gradient tape (training, DPS, guidance), where the backward is one kernel too;
 * otherwise (other backends, float64 data) the composite form below.
 */
export function groupNorm(
  x: tf.Tensor4D,
  groups: number,
  gamma?: tf.Tensor1D,
  beta?: tf.Tensor1D,
  eps = 1e-5,
  bias?: tf.Tensor,
): tf.Tensor4D {
  return groupNormAct(x, groups, gamma, beta, eps, bias, 'none');
}

/**
 * swish(groupNorm(x + bias)): the norm-then-activation pair of every ScoreNet and NCSN++ block, one kernel (forward
 * and backward) where groupNorm's fused path applies; otherwise exactly `swish(groupNorm(...))`.
 */
export function groupNormSwish(
  x: tf.Tensor4D,
  groups: number,
  gamma?: tf.Tensor1D,
  beta?: tf.Tensor1D,
  eps = 1e-5,
  bias?: tf.Tensor,
): tf.Tensor4D {
  return groupNormAct(x, groups, gamma, beta, eps, bias, 'swish');
}

function fusedAvailable(): boolean {
  const backend = tf.getBackend();
  if (tf.getKernel(FUSED_GROUP_NORM, backend) === undefined) return false;
  if (!tf.engine().isTapeOn()) return true;
  return tf.getKernel(FUSED_GROUP_NORM_GRAD, backend) !== undefined && tf.getGradient(FUSED_GROUP_NORM) !== undefined;
}

function groupNormAct(
  x: tf.Tensor4D,
  groups: number,
  gamma: tf.Tensor1D | undefined,
  beta: tf.Tensor1D | undefined,
  eps: number,
  bias: tf.Tensor | undefined,
  activation: 'none' | 'swish',
): tf.Tensor4D {
  checkTensor(x, 'x', [null, null, null, null]);
  const [B, H, W, C] = x.shape;
  checkNumber(groups, 'groups', { integer: true, min: 1 });
  if (C % groups !== 0) {
    throw new SbmError('INVALID_ARGUMENT', `groups: expected a divisor of the channel count ${C}, got ${groups}`, {
      argument: 'groups',
      received: groups,
    });
  }
  if (gamma && beta && x.dtype === 'float32' && fusedAvailable()) {
    return tf.tidy(() => {
      const inputs: tf.NamedTensorMap = { x, gamma, beta };
      // The gradient saves every input and tfjs cannot save a missing one: zeros stand in for no bias on a tape.
      if (bias) inputs.bias = tf.reshape(bias, [B, C]);
      else if (tf.engine().isTapeOn()) inputs.bias = tf.zeros([B, C]);
      return tf.engine().runKernel(FUSED_GROUP_NORM, inputs, { groups, eps, activation } as never) as tf.Tensor4D;
    });
  }
  return tf.tidy(() => {
    if (bias) x = tf.add(x, bias);
    const xg = tf.reshape(x, [B, H, W, groups, C / groups]);
    const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
    let y = tf.reshape(tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, eps))), [B, H, W, C]);
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return (activation === 'swish' ? swish(y) : y) as tf.Tensor4D;
  });
}

/** x·W + b over the last axis. W is [in, out]. */
export function dense<T extends tf.Tensor>(x: T, kernel: tf.Tensor2D, bias?: tf.Tensor1D): T {
  return tf.tidy(() => {
    const [inDim, outDim] = kernel.shape;
    const flat = x.rank === 2 ? (x as unknown as tf.Tensor2D) : tf.reshape(x, [-1, inDim]);
    let y: tf.Tensor = tf.matMul(flat as tf.Tensor2D, kernel);
    if (bias) y = tf.add(y, bias);
    return (x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim])) as T;
  });
}

/** 2-D convolution, NHWC, kernel [k, k, in, out]. */
export function conv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  bias: tf.Tensor1D | undefined,
  stride: number,
  pad: 'same' | 'valid',
): tf.Tensor4D {
  return tf.tidy(() => {
    const y = tf.conv2d(x, kernel, stride, pad);
    return bias ? tf.add(y, bias) : y;
  });
}

/**
 * Transposed convolution with no padding, as torch.nn.ConvTranspose2d(padding=0, output_padding=op): output size
 * (in − 1)·stride + k + op, where the extra `op` rows/columns at the bottom/right receive no input (bias only).
 * Kernel [k, k, out, in] (tfjs' layout for conv2dTranspose).
 */
export function conv2dTranspose(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  bias: tf.Tensor1D | undefined,
  stride: number,
  outputPadding: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, W] = x.shape;
    const [k, , outC] = kernel.shape;
    const outShape: [number, number, number, number] = [
      B,
      (H - 1) * stride + k + outputPadding,
      (W - 1) * stride + k + outputPadding,
      outC,
    ];
    const y = tf.conv2dTranspose(x, kernel, outShape, stride, 'valid');
    return bias ? tf.add(y, bias) : y;
  });
}

/**
 * Nearest-neighbour ×2 upsampling (torch F.interpolate 'nearest', score_sde naive_upsample_2d), written as a
 * broadcasting product with ones so its gradient is a plain sum: no ResizeNearestNeighborGrad kernel needed on any
 * backend (and not tf.broadcastTo, whose Tile gradient tfjs lacks for rank 6).
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape;
    const y = tf.mul(tf.reshape(x, [B, H, 1, W, 1, C]), tf.ones([1, 1, 2, 1, 2, 1]));
    return tf.reshape(y, [B, 2 * H, 2 * W, C]);
  });
}

/** 2×2 average pooling with stride 2 (score_sde naive_downsample_2d); H and W must be even. Reshape + mean. */
export function avgPool2x(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  if (H % 2 !== 0 || W % 2 !== 0) {
    throw new SbmError('INVALID_SHAPE', `x: expected even height and width to downsample, got [${x.shape.join(', ')}]`);
  }
  return tf.tidy(() => tf.mean(tf.reshape(x, [B, H / 2, 2, W / 2, 2, C]), [2, 4]) as tf.Tensor4D);
}

/** Inverted dropout with a fixed seed (tf.dropout scales kept units by 1/(1 − rate)). */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (rate <= 0) return x;
  return tf.dropout(x, rate, undefined, seed) as T;
}
