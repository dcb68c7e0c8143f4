import * as tf from '@tensorflow/tfjs';
import { SbmError, SeedStream, checkNumber, checkSeed, checkTensor } from '@sbm/core';
import { Batcher } from '@sbm/datasets';
import { NUM_CLASSES } from './model';
import {
  NOISY_PARAM_NAMES,
  NoisyMnistClassifier,
  initNoisyParams,
  noisyForward,
  tutorialVeStd,
  type NoisyClassifierSde,
} from './noisy-classifier';
import { adamCosineLoop } from './train-loop';

export interface TrainNoisyClassifierOptions {
  /** Clean training images [N, 28, 28, 1] in [0, 1] (x₀). */
  images: tf.Tensor4D;
  /** Training labels [N] int32 in 0..9. */
  labels: tf.Tensor1D;
  /** Tutorial-VE σ of the SDE whose marginals x_t = x₀ + σ(t) z are trained on (default 25, the ScoreNet's). */
  sdeSigma?: number;
  /** Smallest time drawn (default 1e-5, the training eps of score_sde's losses). */
  eps?: number;
  /**
   * Fraction of each batch whose t is drawn from U(eps, smallTMax) instead of U(eps, 1) (default 0.4, as the shipped weights): extra weight
   * on the nearly clean end, where the guidance is applied last and the shipped accuracy is checked.
   */
  smallTFraction?: number;
  /** Default 0.1 (σ(0.1) ≈ 0.36). */
  smallTMax?: number;
  /** Passes over the training set (default 3; the shipped weights stopped at maxSteps 2400, 2.56 epochs). */
  epochs?: number;
  /** Default 64, as the shipped weights; the last incomplete batch of each epoch is dropped. */
  batchSize?: number;
  /** Peak Adam step size (default 2e-3, as the shipped weights), decayed to 0 along a half cosine over all steps. */
  learningRate?: number;
  /** Seeds the initialization, the batch order and the noise (t and z) of every step (default 0). */
  seed?: number;
  /** Stop after this many steps in total (smoke tests); default: all epochs. */
  maxSteps?: number;
  onProgress?: (p: { epoch: number; step: number; totalSteps: number; loss: number; seconds: number }) => void;
  /** Default 50. */
  logEvery?: number;
}

export interface TrainNoisyClassifierResult {
  classifier: NoisyMnistClassifier;
  steps: number;
  seconds: number;
  /** Cross-entropy of the batch at the last logged step (a mixture over noise levels: not comparable to the clean one). */
  finalLoss: number;
}

/**
 * Trains the noise-conditional classifier (noisy-classifier.ts) as score_sde trains its classifier: softmax
 * cross-entropy on perturbed data x_t = x₀ + σ(t) z, z ~ N(0, I), with the network told σ(t); t ~ U(eps, 1) per
 * sample (with `smallTFraction` of the batch from U(eps, smallTMax)). Adam (Kingma & Ba 2015) with a half-cosine
 * decay of the step size to 0 (Loshchilov & Hutter 2017, eq. 5 without restarts), as trainClassifier.
 * Seeded throughout: the initialization, the Batcher's epoch orders keyed by (seed, epoch) and each step's t and z
 * come from `seed`. Same seed + same backend ⇒ the same weights bit for bit.
 */
export async function trainNoisyClassifier(opts: TrainNoisyClassifierOptions): Promise<TrainNoisyClassifierResult> {
  const images = checkTensor(opts.images, 'trainNoisyClassifier: images', [null, 28, 28, 1]) as tf.Tensor4D;
  const labels = checkTensor(opts.labels, 'trainNoisyClassifier: labels', [images.shape[0]]) as tf.Tensor1D;
  if (labels.dtype !== 'int32') {
    throw new SbmError('INVALID_ARGUMENT', `trainNoisyClassifier: labels: expected int32, got ${labels.dtype}`, {
      argument: 'labels',
    });
  }
  const sdeSigma = checkNumber(opts.sdeSigma ?? 25, 'trainNoisyClassifier: sdeSigma', { gt: 1 });
  const eps = checkNumber(opts.eps ?? 1e-5, 'trainNoisyClassifier: eps', { gt: 0, max: 0.5 });
  const smallFrac = checkNumber(opts.smallTFraction ?? 0.4, 'trainNoisyClassifier: smallTFraction', {
    min: 0,
    max: 1,
  });
  const smallTMax = checkNumber(opts.smallTMax ?? 0.1, 'trainNoisyClassifier: smallTMax', { gt: eps, max: 1 });
  const epochs = checkNumber(opts.epochs ?? 3, 'trainNoisyClassifier: epochs', { integer: true, min: 1 });
  const batchSize = checkNumber(opts.batchSize ?? 64, 'trainNoisyClassifier: batchSize', { integer: true, min: 1 });
  const lr = checkNumber(opts.learningRate ?? 2e-3, 'trainNoisyClassifier: learningRate', { gt: 0 });
  const seed = checkSeed(opts.seed ?? 0, 'trainNoisyClassifier: seed');
  const logEvery = checkNumber(opts.logEvery ?? 50, 'trainNoisyClassifier: logEvery', { integer: true, min: 1 });
  const batcher = new Batcher(images.shape[0], { batchSize, seed });
  const totalSteps = Math.min(
    epochs * batcher.stepsPerEpoch,
    opts.maxSteps === undefined
      ? Infinity
      : checkNumber(opts.maxSteps, 'trainNoisyClassifier: maxSteps', { integer: true, min: 1 }),
  );
  const sde: NoisyClassifierSde = tutorialVeStd(sdeSigma);
  // A stream of its own for the per-step noise, so the init (from `seed`) is the same as initNoisyParams(seed).
  const noise = new SeedStream(seed).fork();

  const { params, steps, seconds, finalLoss } = await adamCosineLoop({
    init: initNoisyParams(seed),
    paramNames: NOISY_PARAM_NAMES,
    variablePrefix: 'mnist-eval/noisy/',
    batcher,
    epochs,
    totalSteps,
    learningRate: lr,
    logEvery,
    makeLoss: (vars, idx) => {
      const seeds = [noise.next(), noise.next(), noise.next(), noise.next()];
      return () => {
        const x0 = tf.gather(images, idx) as tf.Tensor4D;
        const y = tf.oneHot(tf.gather(labels, idx), NUM_CLASSES);
        const b = x0.shape[0];
        const tBig = tf.randomUniform([b], eps, 1, 'float32', seeds[0]);
        const tSmall = tf.randomUniform([b], eps, smallTMax, 'float32', seeds[1]);
        const pick = tf.less(tf.randomUniform([b], 0, 1, 'float32', seeds[2]), smallFrac);
        const t = tf.where(pick, tSmall, tBig) as tf.Tensor1D;
        const sigma = sde.stdT(t);
        const z = tf.randomNormal(x0.shape, 0, 1, 'float32', seeds[3]);
        const xt = tf.add(x0, tf.mul(z, tf.reshape(sigma, [b, 1, 1, 1]))) as tf.Tensor4D;
        return tf.losses.softmaxCrossEntropy(y, noisyForward(vars, xt, sigma)) as tf.Scalar;
      };
    },
    onProgress: opts.onProgress,
  });
  const classifier = new NoisyMnistClassifier(params, { sde: 'tutorial-ve', sdeSigma: String(sdeSigma) });
  return { classifier, steps, seconds, finalLoss };
}

export interface NoisyAccuracyRow {
  sigma: number;
  accuracy: number;
  n: number;
}

/**
 * Accuracy of `classifier` on clean images x₀ [N, 28, 28, 1] in [0, 1] perturbed at each σ of `sigmas`
 * (x = x₀ + σ z, one seeded z per σ, the classifier told σ directly): the per-noise-level table of the README.
 */
export async function noisyAccuracyTable(
  classifier: NoisyMnistClassifier,
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  sigmas: readonly number[],
  opts: { seed?: number; batchSize?: number } = {},
): Promise<NoisyAccuracyRow[]> {
  const x0 = checkTensor(images, 'noisyAccuracyTable: images', [null, 28, 28, 1]) as tf.Tensor4D;
  checkTensor(labels, 'noisyAccuracyTable: labels', [x0.shape[0]]);
  const stream = new SeedStream(checkSeed(opts.seed ?? 0, 'noisyAccuracyTable: seed'));
  const rows: NoisyAccuracyRow[] = [];
  for (const [i, sigma] of sigmas.entries()) {
    checkNumber(sigma, `noisyAccuracyTable: sigmas[${i}]`, { min: 0 });
    const s = stream.next();
    const xt = tf.tidy(() => tf.add(x0, tf.mul(tf.randomNormal(x0.shape, 0, 1, 'float32', s), sigma))) as tf.Tensor4D;
    try {
      const accuracy = await classifier.accuracyAtSigma(xt, sigma, labels, { batchSize: opts.batchSize });
      rows.push({ sigma, accuracy, n: x0.shape[0] });
    } finally {
      xt.dispose();
    }
  }
  return rows;
}
