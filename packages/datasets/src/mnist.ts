import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber } from '@sbm/core';
import { corruptData } from './errors';
import { parseIdxImages, parseIdxLabels } from './idx';
import { byteScaler, checkRange, type DataRange } from './range';

export interface MnistOptions {
  /** Pixel values are mapped from {0..255} onto this interval (default [0, 1]). */
  range?: DataRange;
  /** Keep only the first `limit` examples. */
  limit?: number;
}

export interface MnistData {
  /** [N, 28, 28, 1] float32 in `range` (NHWC). */
  images: tf.Tensor4D;
  /** [N] int32 class labels 0..9. */
  labels: tf.Tensor1D;
  /** The data range of `images`, to record in the config. */
  range: DataRange;
  count: number;
}

/**
 * Builds MNIST tensors from the bytes of an IDX images file and an IDX labels file (uncompressed; in the browser
 * fetch them, in Node use loadMnist from @sbm/datasets/node). `names` name the files in errors.
 */
export function mnistFromIdx(
  imagesBytes: Uint8Array,
  labelsBytes: Uint8Array,
  opts: MnistOptions = {},
  names: { images?: string; labels?: string } = {},
): MnistData {
  const range = checkRange(opts.range ?? [0, 1], 'mnist: range');
  const imagesName = names.images ?? 'images';
  const labelsName = names.labels ?? 'labels';
  const img = parseIdxImages(imagesBytes, imagesName);
  const lab = parseIdxLabels(labelsBytes, labelsName);
  if (img.count !== lab.count) {
    throw corruptData(
      `${imagesName} + ${labelsName}`,
      'image and label counts differ',
      `${img.count} labels`,
      `${lab.count}`,
    );
  }
  let count = img.count;
  if (opts.limit !== undefined)
    count = Math.min(count, checkNumber(opts.limit, 'mnist: limit', { integer: true, min: 1 }));
  if (count === 0) throw new SbmError('INVALID_ARGUMENT', `${imagesName}: holds no images`);
  const size = img.rows * img.cols;
  const scale = byteScaler(range);
  // 256-entry table: one lookup per pixel instead of a multiply-add, and every equal byte gives the same float.
  const table = new Float32Array(256).map((_, b) => scale(b));
  const pixels = new Float32Array(count * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = table[img.pixels[i]];
  const labels = Int32Array.from(lab.labels.subarray(0, count));
  return {
    images: tf.tensor4d(pixels, [count, img.rows, img.cols, 1], 'float32'),
    labels: tf.tensor1d(labels, 'int32'),
    range,
    count,
  };
}
