import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { checkRange, type DataRange } from './range';

export interface GridOptions {
  /** The data range of the samples; low maps to 0, high to 255, values outside are clipped. */
  range: DataRange;
  /** Images per row (default ceil(√N)). */
  columns?: number;
  /** Pixels of padding between images and around the grid (default 2). */
  padding?: number;
  /** Byte value of the padding (default 0). */
  padValue?: number;
  /** 'auto' (default): gray for 1-channel samples, RGB for 3; 'rgba': always RGBA with alpha 255 (canvas ImageData). */
  format?: 'auto' | 'rgba';
}

export interface GridImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  /** Row-major interleaved bytes. */
  pixels: Uint8Array;
}

/**
 * Lays N images of shape [H, W, C] (C = 1 or 3), given as row-major values of shape [N, H, W, C], on a grid:
 * image i at row ⌊i / columns⌋, column i mod columns, with `padding` pixels between images and around the border
 * (the layout of torchvision's make_grid). NaN maps to 0.
 */
export function gridFromArray(values: ArrayLike<number>, shape: number[], opts: GridOptions): GridImage {
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new SbmError(
      'INVALID_SHAPE',
      `grid: samples: expected shape [N, H, W, C] with positive sizes, got ${JSON.stringify(shape)}`,
    );
  }
  const [N, H, W, C] = shape;
  if (C !== 1 && C !== 3) throw new SbmError('INVALID_SHAPE', `grid: samples: expected 1 or 3 channels, got ${C}`);
  if (values.length !== N * H * W * C) {
    throw new SbmError(
      'INVALID_SHAPE',
      `grid: samples: shape [${shape.join(', ')}] holds ${N * H * W * C} values, got ${values.length}`,
    );
  }
  const [lo, hi] = checkRange(opts?.range, 'grid: range');
  const columns =
    opts.columns === undefined
      ? Math.ceil(Math.sqrt(N))
      : checkNumber(opts.columns, 'grid: columns', { integer: true, min: 1 });
  const pad = checkNumber(opts.padding ?? 2, 'grid: padding', { integer: true, min: 0 });
  const padValue = checkNumber(opts.padValue ?? 0, 'grid: padValue', { integer: true, min: 0, max: 255 });
  const format = opts.format ?? 'auto';
  if (format !== 'auto' && format !== 'rgba') {
    throw new SbmError('INVALID_ARGUMENT', `grid: format: expected "auto" or "rgba", got ${describeValue(format)}`);
  }
  const cols = Math.min(columns, N);
  const rows = Math.ceil(N / cols);
  const width = cols * (W + pad) + pad;
  const height = rows * (H + pad) + pad;
  const out = (format === 'rgba' ? 4 : C) as 1 | 3 | 4;
  const pixels = new Uint8Array(width * height * out);
  pixels.fill(padValue);
  if (out === 4) for (let i = 3; i < pixels.length; i += 4) pixels[i] = 255;
  const k = 255 / (hi - lo);
  const toByte = (v: number): number => (v > lo ? (v < hi ? Math.round((v - lo) * k) : 255) : 0);
  for (let n = 0; n < N; n++) {
    const top = pad + Math.floor(n / cols) * (H + pad);
    const left = pad + (n % cols) * (W + pad);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const src = ((n * H + y) * W + x) * C;
        const dst = ((top + y) * width + left + x) * out;
        if (C === 3) {
          pixels[dst] = toByte(values[src]);
          pixels[dst + 1] = toByte(values[src + 1]);
          pixels[dst + 2] = toByte(values[src + 2]);
        } else {
          const b = toByte(values[src]);
          pixels[dst] = b;
          if (out === 4) pixels[dst + 1] = pixels[dst + 2] = b;
        }
      }
    }
  }
  return { width, height, channels: out, pixels };
}

/** As gridFromArray, from a [N, H, W, C] tensor (read asynchronously; the tensor is not disposed). */
export async function makeGrid(samples: tf.Tensor, opts: GridOptions): Promise<GridImage> {
  if (!(samples instanceof tf.Tensor) || samples.isDisposed) {
    throw new SbmError('INVALID_ARGUMENT', `grid: samples: expected a live tf.Tensor, got ${describeValue(samples)}`);
  }
  return gridFromArray(await samples.data<'float32'>(), samples.shape, opts);
}
