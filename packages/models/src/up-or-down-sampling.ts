import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';

/**
 * FIR up/down-sampling of StyleGAN2 as score_sde uses it (models/up_or_down_sampling.py), NHWC. Every function
 * is built from reshape / pad / conv2d only, so gradients exist on every backend that trains the U-Net.
 */

/** score_sde `_setup_kernel`: a 1-D kernel becomes its outer product; the result is normalised to sum 1. */
export function setupFirKernel(k: readonly number[] | readonly (readonly number[])[]): {
  values: number[];
  size: number;
} {
  const rows: number[][] = Array.isArray(k[0])
    ? (k as number[][]).map((r) => [...r])
    : (k as number[]).map((a) => (k as number[]).map((b) => a * b));
  const size = rows.length;
  if (size === 0 || rows.some((r) => r.length !== size)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `firKernel: expected a 1-D list or a square 2-D kernel, got ${JSON.stringify(k)}`,
      {
        argument: 'firKernel',
      },
    );
  }
  const flat = rows.flat();
  const sum = flat.reduce((a, b) => a + b, 0);
  if (!Number.isFinite(sum) || sum === 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `firKernel: expected a kernel with a non-zero sum, got ${JSON.stringify(k)}`,
      {
        argument: 'firKernel',
      },
    );
  }
  return { values: flat.map((v) => v / sum), size };
}

/**
 * upfirdn2d (StyleGAN2; score_sde_pytorch op/upfirdn2d.py `upfirdn2d_native`): zero-insert by `up`, pad by
 * (pad0, pad1) on both spatial axes (negative crops), convolve with `kernel` (a true convolution: the kernel is
 * flipped), keep every `down`-th sample. Channels are folded into the batch so one single-channel conv2d serves all.
 */
export function upfirdn2d(
  x: tf.Tensor4D,
  kernel: { values: number[]; size: number },
  opts: { up?: number; down?: number; pad: [number, number] },
): tf.Tensor4D {
  const up = opts.up ?? 1;
  const down = opts.down ?? 1;
  const [p0, p1] = opts.pad;
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape;
    let h: tf.Tensor4D = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [B * C, H, W, 1]);
    let hh = H;
    let ww = W;
    if (up > 1) {
      const z = tf.pad(tf.reshape(h, [B * C, H, 1, W, 1, 1]), [
        [0, 0],
        [0, 0],
        [0, up - 1],
        [0, 0],
        [0, up - 1],
        [0, 0],
      ]);
      hh = H * up;
      ww = W * up;
      h = tf.reshape(z, [B * C, hh, ww, 1]);
    }
    const pos = (v: number) => Math.max(v, 0);
    h = tf.pad(h, [
      [0, 0],
      [pos(p0), pos(p1)],
      [pos(p0), pos(p1)],
      [0, 0],
    ]);
    if (p0 < 0 || p1 < 0) {
      const n = hh + pos(p0) + pos(p1);
      const m = ww + pos(p0) + pos(p1);
      const c0 = pos(-p0);
      h = tf.slice(h, [0, c0, c0, 0], [-1, n - c0 - pos(-p1), m - c0 - pos(-p1), -1]);
    }
    const k = kernel.size;
    const flipped = [...kernel.values].reverse();
    const w = tf.tensor4d(flipped, [k, k, 1, 1]);
    const y = tf.conv2d(h, w, down, 'valid');
    const [, oh, ow] = y.shape;
    return tf.transpose(tf.reshape(y, [B, C, oh, ow]), [0, 2, 3, 1]) as tf.Tensor4D;
  });
}

function scaled(k: { values: number[]; size: number }, s: number) {
  return { values: k.values.map((v) => v * s), size: k.size };
}

/** score_sde upsample_2d: ×factor with the FIR kernel (gain 1; constant images stay constant). */
export function firUpsample2d(x: tf.Tensor4D, firKernel: readonly number[], factor = 2): tf.Tensor4D {
  const k = scaled(setupFirKernel(firKernel), factor * factor);
  const p = k.size - factor;
  return upfirdn2d(x, k, { up: factor, pad: [Math.floor((p + 1) / 2) + factor - 1, Math.floor(p / 2)] });
}

/** score_sde downsample_2d: ÷factor with the FIR kernel. */
export function firDownsample2d(x: tf.Tensor4D, firKernel: readonly number[], factor = 2): tf.Tensor4D {
  const k = setupFirKernel(firKernel);
  const p = k.size - factor;
  return upfirdn2d(x, k, { down: factor, pad: [Math.floor((p + 1) / 2), Math.floor(p / 2)] });
}

/**
 * score_sde conv_downsample_2d: FIR filter, then a stride-`factor` valid conv with `w` (HWIO, odd square). The
 * padding happens once, before both.
 */
export function convDownsample2d(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  firKernel: readonly number[],
  factor = 2,
): tf.Tensor4D {
  const k = setupFirKernel(firKernel);
  const convW = w.shape[1];
  const p = k.size - factor + (convW - 1);
  return tf.tidy(() => {
    const h = upfirdn2d(x, k, { pad: [Math.floor((p + 1) / 2), Math.floor(p / 2)] });
    return tf.conv2d(h, w, factor, 'valid');
  });
}

/**
 * score_sde upsample_conv_2d: a stride-`factor` transposed conv with the spatially flipped `w` (HWIO), then the
 * FIR filter. This follows the TensorFlow/JAX original (score_sde models/up_or_down_sampling.py, after StyleGAN2's
 * tf.nn.conv2d_transpose); score_sde_pytorch's port slices the weight with a negative step (`w[..., ::-1, ::-1]`),
 * which PyTorch refuses, so its FIR up-convolutions never ran.
 */
export function upsampleConv2d(x: tf.Tensor4D, w: tf.Tensor4D, firKernel: readonly number[], factor = 2): tf.Tensor4D {
  const k = scaled(setupFirKernel(firKernel), factor * factor);
  const [convH, convW, , outC] = w.shape;
  const p = k.size - factor - (convW - 1);
  return tf.tidy(() => {
    const [B, H, W] = x.shape;
    // tfjs' conv2dTranspose is conv2d's input gradient with the filter as [h, w, out, in], as in TF.
    const filt = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    const y = tf.conv2dTranspose(
      x,
      filt,
      [B, (H - 1) * factor + convH, (W - 1) * factor + convW, outC],
      factor,
      'valid',
    );
    return upfirdn2d(y, k, { pad: [Math.floor((p + 1) / 2) + factor - 1, Math.floor(p / 2) + 1] });
  });
}
