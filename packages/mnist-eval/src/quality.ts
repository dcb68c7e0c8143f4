import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, describeValue } from '@sbm/core';
import { frechetDistance, sampleMoments } from '@sbm/metrics';
import { MnistClassifier, type Extracted, type ImageOptions, type ImageRange } from './classifier';
import { FEATURE_DIM, NUM_CLASSES } from './model';

/** Gaussian statistics of classifier features: what the Fréchet distance compares. */
export interface FeatureStatistics {
  /** Number of images. */
  n: number;
  /** Mean feature vector [128]. */
  mean: number[];
  /** Unbiased (n − 1) covariance [128][128]. */
  cov: number[][];
}

function statsOf(e: Extracted): FeatureStatistics {
  return { n: e.n, ...sampleMoments(e.features, e.n, FEATURE_DIM) };
}

function checkClassifier(c: unknown, name: string): MnistClassifier {
  if (!(c instanceof MnistClassifier)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected an MnistClassifier (loadClassifier(bytes) or loadDefaultClassifier() from @sbm/mnist-eval/node), got ${describeValue(c)}`,
      { argument: name },
    );
  }
  return c;
}

function checkAtLeastTwo(n: number, name: string): void {
  if (n < 2) {
    throw new SbmError('INVALID_SHAPE', `${name}: expected at least 2 images for a covariance, got ${n}`, {
      argument: name,
    });
  }
}

/**
 * Mean and covariance of the classifier's 128-d features over `images` [N, 28, 28, 1] (N ≥ 2). Compute them once
 * for a reference set (e.g. the 10,000 MNIST test digits) and pass them to mnistQuality as `reference`.
 */
export async function featureStatistics(
  classifier: MnistClassifier,
  images: tf.Tensor4D,
  opts: ImageOptions = {},
): Promise<FeatureStatistics> {
  checkClassifier(classifier, 'featureStatistics: classifier');
  const e = await classifier.extract(images, opts);
  checkAtLeastTwo(e.n, 'featureStatistics: images');
  return statsOf(e);
}

export interface MnistQualityOptions extends ImageOptions {
  classifier: MnistClassifier;
  /**
   * Intended class of each sample (class-conditional generation), [N] int32 tensor or numbers 0..9: adds `accuracy`
   * = fraction of samples the classifier assigns to their intended class.
   */
  labels?: tf.Tensor1D | ArrayLike<number>;
  /** `range` of the reference images when it differs from the samples' `range`. */
  referenceRange?: ImageRange;
  /**
   * Fraction of the samples a digit must receive to count in `classesCovered` (default 0.01, a tenth of the uniform
   * share; at least one sample in any case). Keeps a handful of misclassified samples from counting as coverage.
   */
  coverageThreshold?: number;
}

export interface MnistQuality {
  /**
   * MNIST Fréchet distance: the squared Fréchet distance between Gaussians fitted to the classifier features of the
   * samples and of the reference (FID's formula, Heusel et al. 2017, on this classifier's 128-d features). Lower is
   * better; biased upwards for small N (compare values only at equal N).
   */
  fd: number;
  /** Mean over samples of the largest class probability: how confidently the samples look like some digit. */
  meanMaxProb: number;
  /** Number of samples predicted as each digit 0..9 (argmax). */
  classCounts: number[];
  /** Number of digits predicted for at least `coverageThreshold` of the samples (10 = every class appears). */
  classesCovered: number;
  /** Fraction of samples predicted as their intended `labels` (only when labels are given). */
  accuracy?: number;
  /** Number of samples. */
  n: number;
  /** Number of reference images. */
  referenceN: number;
}

function readLabels(
  labels: tf.Tensor1D | ArrayLike<number>,
  n: number,
): Promise<ArrayLike<number>> | ArrayLike<number> {
  const name = 'mnistQuality: labels';
  if (labels instanceof tf.Tensor) {
    if (labels.rank !== 1 || labels.shape[0] !== n) {
      throw new SbmError('INVALID_SHAPE', `${name}: expected shape [${n}] (one per sample), got [${labels.shape}]`, {
        argument: name,
      });
    }
    return labels.data();
  }
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected a [N] tensor or an array of digits, got ${describeValue(labels)}`,
    );
  }
  if (labels.length !== n) {
    throw new SbmError('INVALID_SHAPE', `${name}: expected ${n} labels (one per sample), got ${labels.length}`, {
      argument: name,
    });
  }
  return labels;
}

/**
 * Sample quality of generated MNIST digits against a reference: MNIST-FD on the classifier's penultimate
 * features, mean max-softmax confidence, predicted class counts and coverage, and (with `labels`) accuracy.
 * `samples` are [N, 28, 28, 1] images in `range` (default the classifier's input range, [0, 1]); `reference` is a
 * set of images or precomputed `featureStatistics`. Leaves no tensors behind.
 */
export async function mnistQuality(
  samples: tf.Tensor4D,
  reference: tf.Tensor4D | FeatureStatistics,
  opts: MnistQualityOptions,
): Promise<MnistQuality> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `mnistQuality: opts: expected { classifier, ... }, got ${describeValue(opts)}`,
    );
  }
  const classifier = checkClassifier(opts.classifier, 'mnistQuality: opts.classifier');
  const { labels, referenceRange, coverageThreshold, ...imageOpts } = opts;
  const threshold = checkNumber(coverageThreshold ?? 0.01, 'mnistQuality: coverageThreshold', { min: 0, max: 1 });
  delete (imageOpts as { classifier?: unknown }).classifier;

  let refStats: FeatureStatistics;
  if (reference instanceof tf.Tensor) {
    refStats = await featureStatistics(classifier, reference, {
      ...imageOpts,
      range: referenceRange ?? imageOpts.range,
    });
  } else {
    refStats = checkStats(reference);
  }

  const e = await classifier.extract(samples, imageOpts);
  checkAtLeastTwo(e.n, 'mnistQuality: samples');
  const stats = statsOf(e);
  const fd = frechetDistance(stats.mean, stats.cov, refStats.mean, refStats.cov);

  const classCounts = new Array<number>(NUM_CLASSES).fill(0);
  const predicted = new Int32Array(e.n);
  let sumMax = 0;
  for (let i = 0; i < e.n; i++) {
    let best = 0;
    for (let k = 1; k < NUM_CLASSES; k++) if (e.probs[i * NUM_CLASSES + k] > e.probs[i * NUM_CLASSES + best]) best = k;
    predicted[i] = best;
    classCounts[best]++;
    sumMax += e.probs[i * NUM_CLASSES + best];
  }
  const result: MnistQuality = {
    fd,
    meanMaxProb: sumMax / e.n,
    classCounts,
    classesCovered: classCounts.filter((c) => c > 0 && c >= threshold * e.n).length,
    n: e.n,
    referenceN: refStats.n,
  };
  if (labels !== undefined) {
    const lab = await readLabels(labels, e.n);
    let correct = 0;
    for (let i = 0; i < e.n; i++) if (lab[i] === predicted[i]) correct++;
    result.accuracy = correct / e.n;
  }
  return result;
}

function checkStats(s: unknown): FeatureStatistics {
  const name = 'mnistQuality: reference';
  const ok =
    s !== null &&
    typeof s === 'object' &&
    Array.isArray((s as FeatureStatistics).mean) &&
    Array.isArray((s as FeatureStatistics).cov) &&
    typeof (s as FeatureStatistics).n === 'number';
  if (!ok) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected reference images (a tf.Tensor [N, 28, 28, 1]) or featureStatistics { n, mean, cov }, got ${describeValue(s)}`,
      { argument: name },
    );
  }
  const st = s as FeatureStatistics;
  if (st.mean.length !== FEATURE_DIM || st.cov.length !== FEATURE_DIM) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected statistics of ${FEATURE_DIM}-d features, got mean of length ${st.mean.length} and ${st.cov.length} covariance rows`,
      { argument: name },
    );
  }
  return st;
}
