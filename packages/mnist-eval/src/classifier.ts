import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkChoice,
  checkDataRange,
  checkFinite,
  checkNumber,
  checkTensor,
  describeValue,
  yieldToEventLoop,
  type DataRange,
} from '@sbm/core';
import { decodeSafetensors, encodeSafetensors } from '@sbm/safetensors';
import { FEATURE_DIM, NUM_CLASSES, PARAM_NAMES, checkParams, forward, type ClassifierParams } from './model';

/** Pixel interval of the images given to the classifier; they are mapped linearly onto [0, 1]. */
export type ImageRange = DataRange;

export interface ImageOptions {
  /** Interval the pixel values live in (default: the classifier's `inputRange`, itself [0, 1] by default). */
  range?: ImageRange;
  /**
   * What to do with values outside `range` (beyond a tolerance of 1e-3 of its width, for rounding): `'error'`
   * (default) throws INVALID_ARGUMENT (it usually means the wrong range, e.g. [−1, 1] data read as [0, 1]);
   * `'clip'` clamps them, as one does for generated samples that overshoot slightly.
   */
  outOfRange?: 'error' | 'clip';
  /** Images per forward pass (default 500): bounds the memory of the activations. */
  batchSize?: number;
}

export interface ClassifierOptions {
  /** Default `range` of the images passed to this classifier (default [0, 1], what it was trained on). */
  inputRange?: ImageRange;
}

/** Plain-array outputs of one pass over a set of images. */
export interface Extracted {
  n: number;
  /** [n·128] row-major penultimate (post-ReLU dense-128) activations. */
  features: Float32Array;
  /** [n·10] row-major class probabilities (softmax of the logits). */
  probs: Float32Array;
}

const RANGE_TOLERANCE = 1e-3;
const DEFAULT_BATCH = 500;

/**
 * Validates a batch of MNIST images: a float32 tf.Tensor [N, 28, 28, 1] with N ≥ 1, finite, with values inside
 * `range` (unless clipping). Reads back min/max (one small sync).
 */
async function checkImages(
  images: unknown,
  name: string,
  range: ImageRange,
  outOfRange: 'error' | 'clip',
): Promise<tf.Tensor4D> {
  const x = checkTensor(images, name, [null, 28, 28, 1]) as tf.Tensor4D;
  if (x.shape[0] === 0) {
    throw new SbmError('INVALID_SHAPE', `${name}: expected at least one image, got shape [0, 28, 28, 1]`, {
      argument: name,
    });
  }
  if (x.dtype !== 'float32') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a float32 tensor, got ${x.dtype}`, { argument: name });
  }
  checkFinite(x, name);
  if (outOfRange === 'error') {
    const lohi = tf.tidy(() => tf.stack([tf.min(x), tf.max(x)]));
    const [lo, hi] = await lohi.data();
    lohi.dispose();
    const tol = RANGE_TOLERANCE * (range[1] - range[0]);
    if (lo < range[0] - tol || hi > range[1] + tol) {
      const hint =
        lo < 0 && range[0] >= 0
          ? ' (negative values: images in [-1, 1] need { range: [-1, 1] })'
          : hi > 1.5 && range[1] <= 1
            ? ' (values above 1: images in [0, 255] need { range: [0, 255] })'
            : " (pass { outOfRange: 'clip' } to clamp generated samples that overshoot)";
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}: expected pixel values in [${range[0]}, ${range[1]}], got values in [${lo}, ${hi}]${hint}`,
        { argument: name, expected: range, received: [lo, hi] },
      );
    }
  }
  return x;
}

/**
 * The shipped MNIST classifier (see model.ts for the architecture). Holds its weights as tensors: call dispose()
 * when done. All methods are leak-free and process the images in batches of `batchSize`.
 */
export class MnistClassifier {
  readonly inputRange: ImageRange;
  /** Metadata stored with the weights (accuracy, seed, epochs, date, tfjs version, ...). */
  readonly metadata: Readonly<Record<string, string>>;
  private readonly params: ClassifierParams;
  private isDisposed = false;

  /** Takes ownership of `params` (a record of the 8 tensors named in PARAM_SHAPES). */
  constructor(params: ClassifierParams, metadata: Record<string, string> = {}, opts: ClassifierOptions = {}) {
    checkParams(params, 'MnistClassifier');
    this.params = params;
    this.metadata = { ...metadata };
    this.inputRange = checkDataRange(opts.inputRange ?? [0, 1], 'MnistClassifier: inputRange');
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) return;
    tf.dispose(Object.values(this.params));
    this.isDisposed = true;
  }

  private ensureAlive(method: string): void {
    if (this.isDisposed) {
      throw new SbmError('INVALID_ARGUMENT', `MnistClassifier.${method}: the classifier has been disposed`);
    }
  }

  private options(opts: ImageOptions, method: string): { range: ImageRange; clip: boolean; batchSize: number } {
    if (opts === null || typeof opts !== 'object') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `MnistClassifier.${method}: opts: expected an object, got ${describeValue(opts)}`,
      );
    }
    const range = checkDataRange(opts.range ?? this.inputRange, `MnistClassifier.${method}: range`);
    const mode = checkChoice(opts.outOfRange ?? 'error', `MnistClassifier.${method}: outOfRange`, ['error', 'clip']);
    const batchSize = checkNumber(opts.batchSize ?? DEFAULT_BATCH, `MnistClassifier.${method}: batchSize`, {
      integer: true,
      min: 1,
    });
    return { range, clip: mode === 'clip', batchSize };
  }

  /**
   * Runs the network batch by batch; `emit` receives each batch's (features, probs) tensors inside the caller's
   * ownership (it must dispose or keep them). Yields to the event loop between batches.
   */
  private async run(
    images: unknown,
    opts: ImageOptions,
    method: string,
    emit: (features: tf.Tensor2D, probs: tf.Tensor2D) => Promise<void>,
  ): Promise<number> {
    this.ensureAlive(method);
    const { range, clip, batchSize } = this.options(opts, method);
    const x = await checkImages(images, `MnistClassifier.${method}: images`, range, clip ? 'clip' : 'error');
    const n = x.shape[0];
    const [lo, hi] = range;
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const { features, probs } = tf.tidy(() => {
        let b = tf.slice(x, [start, 0, 0, 0], [size, 28, 28, 1]);
        // Linear map of [lo, hi] onto [0, 1], the range the weights were trained on.
        if (lo !== 0 || hi !== 1) b = tf.div(tf.sub(b, lo), hi - lo);
        if (clip) b = tf.clipByValue(b, 0, 1);
        const out = forward(this.params, b);
        return { features: out.features, probs: tf.softmax(out.logits) };
      });
      await emit(features, probs);
      if (start + batchSize < n) await yieldToEventLoop();
    }
    return n;
  }

  /** Class probabilities [N, 10] and the predicted classes [N] (int32) of images [N, 28, 28, 1]. */
  async predict(images: tf.Tensor4D, opts: ImageOptions = {}): Promise<{ probs: tf.Tensor2D; classes: tf.Tensor1D }> {
    const parts: tf.Tensor2D[] = [];
    try {
      await this.run(images, opts, 'predict', async (features, probs) => {
        features.dispose();
        parts.push(probs);
      });
      const probs = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      if (parts.length > 1) tf.dispose(parts);
      parts.length = 0;
      const classes = tf.argMax(probs, 1) as tf.Tensor1D;
      return { probs, classes };
    } finally {
      tf.dispose(parts);
    }
  }

  /** Penultimate features [N, 128] (the post-ReLU dense-128 activations) of images [N, 28, 28, 1]. */
  async features(images: tf.Tensor4D, opts: ImageOptions = {}): Promise<tf.Tensor2D> {
    const parts: tf.Tensor2D[] = [];
    try {
      await this.run(images, opts, 'features', async (features, probs) => {
        probs.dispose();
        parts.push(features);
      });
      const out = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      if (parts.length > 1) tf.dispose(parts);
      parts.length = 0;
      return out;
    } finally {
      tf.dispose(parts);
    }
  }

  /** Features and probabilities of images [N, 28, 28, 1] as plain Float32Arrays, in one pass (no tensors kept). */
  async extract(images: tf.Tensor4D, opts: ImageOptions = {}): Promise<Extracted> {
    const chunks: { f: Float32Array; p: Float32Array }[] = [];
    const n = await this.run(images, opts, 'extract', async (features, probs) => {
      try {
        const [f, p] = await Promise.all([features.data(), probs.data()]);
        chunks.push({ f: f as Float32Array, p: p as Float32Array });
      } finally {
        features.dispose();
        probs.dispose();
      }
    });
    const features = new Float32Array(n * FEATURE_DIM);
    const probs = new Float32Array(n * NUM_CLASSES);
    let row = 0;
    for (const { f, p } of chunks) {
      features.set(f, row * FEATURE_DIM);
      probs.set(p, row * NUM_CLASSES);
      row += p.length / NUM_CLASSES;
    }
    return { n, features, probs };
  }

  /** The weights as a safetensors file (float32), with this classifier's metadata plus `extra`. */
  toSafetensors(extra: Record<string, string> = {}): Uint8Array {
    this.ensureAlive('toSafetensors');
    return encodeSafetensors(
      PARAM_NAMES.map((name) => ({ name, tensor: this.params[name] })),
      { ...this.metadata, ...extra, format: 'sbm-mnist-classifier-v1' },
    );
  }
}

/**
 * Builds a classifier from the bytes of a safetensors file written by `toSafetensors` / the training script (the
 * shipped weights: `loadDefaultClassifier()` from `@sbm/mnist-eval/node`, or fetch
 * `@sbm/mnist-eval/weights/classifier.safetensors` in the browser). Malformed files → CORRUPT_CHECKPOINT.
 */
export function loadClassifier(bytes: Uint8Array, opts: ClassifierOptions = {}): MnistClassifier {
  if (!(bytes instanceof Uint8Array)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `loadClassifier: bytes: expected a Uint8Array, got ${describeValue(bytes)}`,
      {
        argument: 'bytes',
      },
    );
  }
  const { tensors, metadata } = decodeSafetensors(bytes);
  try {
    checkParams(tensors, 'loadClassifier');
  } catch (e) {
    tf.dispose(Object.values(tensors));
    throw e;
  }
  const params: ClassifierParams = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (PARAM_NAMES.includes(name)) params[name] = t;
    else t.dispose();
  }
  return new MnistClassifier(params, metadata, opts);
}
