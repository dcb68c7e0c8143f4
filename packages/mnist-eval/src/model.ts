import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkSeed } from '@sbm/core';

/**
 * The MNIST classifier: conv 3×3 (1→16, valid) → ReLU → max-pool 2 → conv 3×3 (16→32, valid) → ReLU → max-pool 2
 * → flatten (5·5·32 = 800) → dense 128 → ReLU (the feature layer used for the Fréchet distance) → dense 10 (logits).
 * The layout of the Keras "mnist_convnet" example at half its width (≈ 0.8 M multiply-adds per image instead of
 * 2.7 M, so it trains in minutes on 2 wasm threads and evaluates fast in tests), with plain tfjs ops so that it
 * trains on every backend.
 */
export const FEATURE_DIM = 128;
export const NUM_CLASSES = 10;

/** Parameter names and shapes, in the order they are stored (HWIO filters, [in, out] dense kernels). */
export const PARAM_SHAPES: Readonly<Record<string, readonly number[]>> = {
  'conv1.weight': [3, 3, 1, 16],
  'conv1.bias': [16],
  'conv2.weight': [3, 3, 16, 32],
  'conv2.bias': [32],
  'fc1.weight': [800, FEATURE_DIM],
  'fc1.bias': [FEATURE_DIM],
  'fc2.weight': [FEATURE_DIM, NUM_CLASSES],
  'fc2.bias': [NUM_CLASSES],
};

export const PARAM_NAMES = Object.keys(PARAM_SHAPES);

export type ClassifierParams = Record<string, tf.Tensor>;

/**
 * Seeded initialization: He-normal kernels, N(0, 2/fan_in) (He et al. 2015, eq. 10; suited to ReLU), zero biases.
 * The last layer uses N(0, 1/fan_in) so that the initial logits have unit scale. Same seed ⇒ same numbers on every
 * backend (tfjs draws them on the JS side).
 */
export function initParams(seed: number): ClassifierParams {
  const stream = new SeedStream(checkSeed(seed, 'initParams: seed'));
  const params: ClassifierParams = {};
  for (const name of PARAM_NAMES) {
    const shape = [...PARAM_SHAPES[name]];
    if (name.endsWith('.bias')) {
      params[name] = tf.zeros(shape);
      continue;
    }
    const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const gain = name === 'fc2.weight' ? 1 : 2;
    params[name] = tf.randomNormal(shape, 0, Math.sqrt(gain / fanIn), 'float32', stream.next());
  }
  return params;
}

/** Checks that `params` holds every parameter with the expected shape (CORRUPT_CHECKPOINT otherwise). */
export function checkParams(params: Record<string, tf.Tensor>, source: string): void {
  checkParamShapes(params, PARAM_SHAPES, source);
}

/**
 * Checks that `params` holds, as float32, every tensor named in `shapes` with that shape (CORRUPT_CHECKPOINT
 * otherwise): shared by checkParams and noisy-classifier.ts's checkNoisyParams.
 */
export function checkParamShapes(
  params: Record<string, tf.Tensor>,
  shapes: Readonly<Record<string, readonly number[]>>,
  source: string,
): void {
  for (const name of Object.keys(shapes)) {
    const t = params[name];
    const expected = shapes[name];
    if (t === undefined) {
      throw new SbmError('CORRUPT_CHECKPOINT', `${source}: missing tensor '${name}' (expected shape [${expected}])`, {
        tensor: name,
      });
    }
    if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i]) || t.dtype !== 'float32') {
      throw new SbmError(
        'CORRUPT_CHECKPOINT',
        `${source}: tensor '${name}': expected float32 [${expected}], got ${t.dtype} [${t.shape}]`,
        { tensor: name, expected, received: t.shape },
      );
    }
  }
}

/**
 * Forward pass on a [B, 28, 28, 1] batch already in [0, 1]. Returns the post-ReLU penultimate activations
 * ([B, 128]) and the logits ([B, 10]). Call inside tf.tidy.
 */
export function forward(params: ClassifierParams, x: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
  const conv = (h: tf.Tensor4D, layer: string): tf.Tensor4D =>
    tf.relu(
      tf.add(tf.conv2d(h, params[`${layer}.weight`] as tf.Tensor4D, 1, 'valid'), params[`${layer}.bias`]),
    ) as tf.Tensor4D;
  let h = tf.maxPool(conv(x, 'conv1'), 2, 2, 'valid');
  h = tf.maxPool(conv(h, 'conv2'), 2, 2, 'valid');
  const flat = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D;
  const features = tf.relu(
    tf.add(tf.matMul(flat, params['fc1.weight'] as tf.Tensor2D), params['fc1.bias']),
  ) as tf.Tensor2D;
  const logits = tf.add(tf.matMul(features, params['fc2.weight'] as tf.Tensor2D), params['fc2.bias']) as tf.Tensor2D;
  return { features, logits };
}
