import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { checkRange, type DataRange } from './range';

/** An 8-bit image in row-major interleaved layout: gray, gray+alpha, RGB or RGBA. */
export interface Image8 {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  pixels: Uint8Array;
}

/**
 * Converts to 1 (gray) or 3 (RGB) channels. Alpha is dropped (not composited); RGB → gray uses the ITU-R BT.601
 * luma weights 0.299, 0.587, 0.114 (the weights tf.image.rgbToGrayscale uses), rounded to the nearest byte.
 */
export function convertChannels(img: Image8, channels: 1 | 3): Uint8Array {
  const n = img.width * img.height;
  const src = img.pixels;
  const c = img.channels;
  const out = new Uint8Array(n * channels);
  const color = c >= 3;
  for (let i = 0; i < n; i++) {
    if (channels === 1) {
      out[i] = color ? Math.round(0.299 * src[i * c] + 0.587 * src[i * c + 1] + 0.114 * src[i * c + 2]) : src[i * c];
    } else if (color) {
      out[3 * i] = src[i * c];
      out[3 * i + 1] = src[i * c + 1];
      out[3 * i + 2] = src[i * c + 2];
    } else {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src[i * c];
    }
  }
  return out;
}

export interface SquareOptions {
  /** Output side length in pixels. */
  size: number;
  /** 'center' (default) crops the largest centred square first; 'none' resizes the whole image (aspect not kept). */
  crop?: 'center' | 'none';
  /** Output value range (default [0, 1]). */
  range?: DataRange;
}

/**
 * An 8-bit image (1 or 3 channels) → [size, size, C] float32 in `range`: optional centre crop, then bilinear
 * resampling with half-pixel centres (so a 2× downscale averages 2×2 blocks; no antialiasing beyond that).
 */
export function squareImage(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: 1 | 3,
  opts: SquareOptions,
): tf.Tensor3D {
  const size = checkNumber(opts.size, 'size', { integer: true, min: 1 });
  const crop = opts.crop ?? 'center';
  if (crop !== 'center' && crop !== 'none') {
    throw new SbmError('INVALID_ARGUMENT', `crop: expected "center" or "none", got ${describeValue(crop)}`);
  }
  const [lo, hi] = checkRange(opts.range ?? [0, 1], 'range');
  if (pixels.length !== width * height * channels) {
    throw new SbmError(
      'INVALID_SHAPE',
      `pixels: expected ${width}×${height}×${channels} = ${width * height * channels} bytes, got ${pixels.length}`,
    );
  }
  return tf.tidy(() => {
    let x: tf.Tensor3D = tf.tensor3d(Float32Array.from(pixels), [height, width, channels], 'float32');
    if (crop === 'center' && width !== height) {
      const s = Math.min(width, height);
      x = tf.slice(x, [Math.floor((height - s) / 2), Math.floor((width - s) / 2), 0], [s, s, channels]);
    }
    if (x.shape[0] !== size || x.shape[1] !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
    return tf.add(tf.mul(x, (hi - lo) / 255), lo) as tf.Tensor3D;
  });
}
