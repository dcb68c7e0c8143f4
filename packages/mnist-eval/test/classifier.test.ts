import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLeakCheck } from '@sbm/core';
import { loadMnist } from '@sbm/datasets/node';
import { encodeSafetensors } from '@sbm/safetensors';
import { activateTestBackend } from '@sbm/test-harness';
import {
  FEATURE_DIM,
  PARAM_NAMES,
  featureStatistics,
  initParams,
  loadClassifier,
  mnistQuality,
  trainClassifier,
  type MnistClassifier,
} from '@sbm/mnist-eval';
import { loadDefaultClassifier } from '@sbm/mnist-eval/node';
import { expectSbmError as expectSbm } from '@sbm/test-harness';

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  return undefined;
}

// The first 2000 test digits: 0..999 = set A, 1000..1999 = set B (disjoint halves of the same distribution).
const N = 2000;
let classifier: MnistClassifier;
let images: tf.Tensor4D;
let labels: tf.Tensor1D;
let labelArray: Int32Array;
let setA: tf.Tensor4D;
let setB: tf.Tensor4D;

describe('shipped MNIST classifier [wasm]', () => {
  beforeAll(async () => {
    // wasm with sbm's kernels, as the classifier was trained; 1 thread (test files run in parallel processes).
    await activateTestBackend('wasm');
    classifier = await loadDefaultClassifier();
    const test = await loadMnist({ split: 'test', range: [0, 1], limit: N });
    images = test.images;
    labels = test.labels;
    labelArray = (await labels.data()) as Int32Array;
    setA = tf.slice(images, [0, 0, 0, 0], [1000, 28, 28, 1]);
    setB = tf.slice(images, [1000, 0, 0, 0], [1000, 28, 28, 1]);
  });

  afterAll(() => {
    classifier?.dispose();
    tf.dispose([images, labels, setA, setB]);
  });

  it('carries its training metadata', () => {
    const m = classifier.metadata;
    expect(m.format).toBe('sbm-mnist-classifier-v1');
    expect(m.seed).toBe('0');
    expect(Number(m.testAccuracy)).toBeGreaterThanOrEqual(0.985);
    expect(m.tfjsVersion).toMatch(/^4\./);
  });

  it('reaches ≥ 98% accuracy on the first 2000 MNIST test digits; probabilities are a distribution', async () => {
    const { probs, classes } = await withLeakCheck(() => classifier.predict(images), 'predict');
    try {
      expect(probs.shape).toEqual([N, 10]);
      const p = await probs.data();
      const c = await classes.data();
      let correct = 0;
      for (let i = 0; i < N; i++) {
        let sum = 0;
        let best = 0;
        for (let k = 0; k < 10; k++) {
          sum += p[i * 10 + k];
          if (p[i * 10 + k] > p[i * 10 + best]) best = k;
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        expect(c[i]).toBe(best);
        if (c[i] === labelArray[i]) correct++;
      }
      console.log(`mnist-eval: accuracy on test[0:2000] = ${(correct / N).toFixed(4)}`);
      expect(correct / N).toBeGreaterThanOrEqual(0.98);
    } finally {
      tf.dispose([probs, classes]);
    }
  });

  it('features are [N, 128], post-ReLU, independent of the batch size, and match extract()', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [37, 28, 28, 1]);
    try {
      const f1 = await withLeakCheck(() => classifier.features(x), 'features');
      const f2 = await classifier.features(x, { batchSize: 5 });
      const e = await withLeakCheck(() => classifier.extract(x, { batchSize: 10 }), 'extract');
      expect(f1.shape).toEqual([37, FEATURE_DIM]);
      const a = await f1.data();
      const b = await f2.data();
      tf.dispose([f1, f2]);
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(a.filter((v) => v > 0).length).toBeGreaterThan(a.length / 10);
      for (let i = 0; i < a.length; i++) {
        expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(a[i])));
        expect(Math.abs(a[i] - e.features[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(a[i])));
      }
    } finally {
      x.dispose();
    }
  });

  it('agrees with the cpu backend (reference) to float32 rounding', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [16, 28, 28, 1]);
    const wasm = await classifier.extract(x);
    const bytes = classifier.toSafetensors();
    const xData = await x.data();
    x.dispose();
    await tf.setBackend('cpu');
    try {
      const onCpu = loadClassifier(bytes);
      const xc = tf.tensor4d(xData, [16, 28, 28, 1]);
      const cpu = await onCpu.extract(xc);
      tf.dispose(xc);
      onCpu.dispose();
      for (let i = 0; i < cpu.probs.length; i++) expect(Math.abs(cpu.probs[i] - wasm.probs[i])).toBeLessThan(1e-4);
      for (let i = 0; i < cpu.features.length; i++) {
        expect(Math.abs(cpu.features[i] - wasm.features[i])).toBeLessThan(1e-4 * (1 + Math.abs(cpu.features[i])));
      }
    } finally {
      await activateTestBackend('wasm');
    }
  });

  it('accepts [-1, 1] images through the range option (same outputs as [0, 1])', async () => {
    const x = tf.slice(images, [0, 0, 0, 0], [20, 28, 28, 1]);
    const x11 = tf.tidy(() => tf.sub(tf.mul(x, 2), 1));
    try {
      const a = await classifier.extract(x);
      const b = await classifier.extract(x11 as tf.Tensor4D, { range: [-1, 1] });
      for (let i = 0; i < a.probs.length; i++) expect(Math.abs(a.probs[i] - b.probs[i])).toBeLessThan(1e-5);
      // A classifier whose default input range is [-1, 1] needs no option.
      const c11 = loadClassifier(classifier.toSafetensors(), { inputRange: [-1, 1] });
      const c = await c11.extract(x11 as tf.Tensor4D);
      c11.dispose();
      for (let i = 0; i < a.probs.length; i++) expect(Math.abs(a.probs[i] - c.probs[i])).toBeLessThan(1e-5);
    } finally {
      tf.dispose([x, x11]);
    }
  });

  it('MNIST-FD separates real digits from noise and from a single class', async () => {
    const noise = tf.randomUniform([1000, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    // 1000 images cycling through the 234 test digits labelled 1 among the first 2000.
    const ones = labelArray.reduce<number[]>((acc, y, i) => (y === 1 ? [...acc, i] : acc), []);
    const idx = tf.tensor1d(
      Array.from({ length: 1000 }, (_, i) => ones[i % ones.length]),
      'int32',
    );
    const single = tf.gather(images, idx) as tf.Tensor4D;
    try {
      const refA = await featureStatistics(classifier, setA);
      const ab = await withLeakCheck(
        () => mnistQuality(setB, refA, { classifier, labels: labelArray.slice(1000) }),
        'mnistQuality',
      );
      const an = await mnistQuality(noise, refA, { classifier });
      const a1 = await mnistQuality(single, refA, { classifier });
      console.log(
        `mnist-eval: FD(test A, test B) = ${ab.fd.toFixed(2)}, FD(test A, uniform noise) = ${an.fd.toFixed(1)}, ` +
          `FD(test A, only 1s) = ${a1.fd.toFixed(1)} (n = 1000 each)`,
      );
      // Both halves come from one distribution: FD is only the finite-sample bias, far below either failure mode.
      expect(ab.fd).toBeLessThan(an.fd / 20);
      expect(ab.fd).toBeLessThan(a1.fd / 20);
      // Real digits: confident, every class present, labels recovered.
      expect(ab.meanMaxProb).toBeGreaterThanOrEqual(0.9);
      expect(ab.classesCovered).toBe(10);
      expect(ab.accuracy).toBeGreaterThanOrEqual(0.97);
      expect(ab.classCounts.reduce((s, c) => s + c, 0)).toBe(1000);
      // The single-class set is (almost) all predicted as 1; the few other predictions stay below the coverage
      // threshold (1% of the samples) unless it is set to 0.
      expect(a1.classCounts[1]).toBeGreaterThanOrEqual(970);
      expect(a1.classesCovered).toBe(1);
      const a1all = await mnistQuality(single, refA, { classifier, coverageThreshold: 0 });
      expect(a1all.classesCovered).toBe(a1.classCounts.filter((c) => c > 0).length);
      // Passing reference images instead of their statistics gives the same FD.
      const again = await mnistQuality(setB, setA, { classifier });
      expect(Math.abs(again.fd - ab.fd)).toBeLessThan(1e-9 * ab.fd);
      expect(again.referenceN).toBe(1000);
    } finally {
      tf.dispose([noise, idx, single]);
    }
  });

  it('rejects bad images with SbmErrors that say what was expected', async () => {
    const flat = tf.zeros([3, 784]);
    const noChannel = tf.zeros([3, 28, 28]);
    const ints = tf.zeros([3, 28, 28, 1], 'int32');
    const bytes255 = tf.fill([3, 28, 28, 1], 255);
    const signed = tf.fill([3, 28, 28, 1], -1);
    const nan = tf.fill([3, 28, 28, 1], NaN);
    const empty = tf.zeros([0, 28, 28, 1]);
    try {
      expectSbm(
        await errorOf(classifier.predict(flat as tf.Tensor4D)),
        'INVALID_SHAPE',
        /images: expected shape \[\*, 28, 28, 1\], got \[3, 784\]/,
      );
      expectSbm(await errorOf(classifier.features(noChannel as tf.Tensor4D)), 'INVALID_SHAPE', /\[3, 28, 28\]/);
      expectSbm(
        await errorOf(classifier.predict(ints as tf.Tensor4D)),
        'INVALID_ARGUMENT',
        /float32 tensor, got int32/,
      );
      expectSbm(
        await errorOf(classifier.predict(bytes255 as tf.Tensor4D)),
        'INVALID_ARGUMENT',
        /expected pixel values in \[0, 1\], got values in \[255, 255\].*range: \[0, 255\]/,
      );
      expectSbm(
        await errorOf(classifier.predict(signed as tf.Tensor4D)),
        'INVALID_ARGUMENT',
        /in \[0, 1\], got values in \[-1, -1\].*range: \[-1, 1\]/,
      );
      expectSbm(await errorOf(classifier.predict(nan as tf.Tensor4D)), 'NON_FINITE', /images/);
      expectSbm(await errorOf(classifier.predict(empty as tf.Tensor4D)), 'INVALID_SHAPE', /at least one image/);
      expectSbm(
        await errorOf(classifier.predict(signed as tf.Tensor4D, { range: [1, 0] })),
        'INVALID_ARGUMENT',
        /range: expected \[low, high\]/,
      );
      expectSbm(
        await errorOf(classifier.predict(signed as tf.Tensor4D, { batchSize: 0 })),
        'INVALID_ARGUMENT',
        /batchSize/,
      );
      // Clipping accepts out-of-range values (generated samples overshoot): −1 clips to 0, a blank image.
      const r = await withLeakCheck(
        () => classifier.extract(signed as tf.Tensor4D, { outOfRange: 'clip' }),
        'extract clip',
      );
      const blank = await classifier.extract(tf.zeros([3, 28, 28, 1]) as tf.Tensor4D);
      expect(Array.from(r.probs)).toEqual(Array.from(blank.probs));
    } finally {
      tf.dispose([flat, noChannel, ints, bytes255, signed, nan, empty]);
    }
    // mnistQuality's own arguments.
    expectSbm(
      await errorOf(mnistQuality(setA, setB, {} as never)),
      'INVALID_ARGUMENT',
      /opts.classifier: expected an MnistClassifier/,
    );
    expectSbm(
      await errorOf(mnistQuality(setA, setB, { classifier, coverageThreshold: 2 })),
      'INVALID_ARGUMENT',
      /coverageThreshold: expected a finite number >= 0 <= 1, got 2/,
    );
    const one = tf.slice(setA, [0, 0, 0, 0], [1, 28, 28, 1]);
    expectSbm(
      await errorOf(mnistQuality(one, setB, { classifier })),
      'INVALID_SHAPE',
      /samples: expected at least 2 images/,
    );
    one.dispose();
    expectSbm(
      await errorOf(mnistQuality(setA, setB, { classifier, labels: [1, 2, 3] })),
      'INVALID_SHAPE',
      /labels: expected 1000 labels/,
    );
    expectSbm(
      await errorOf(mnistQuality(setA, { n: 5, mean: [1], cov: [[1]] }, { classifier })),
      'INVALID_SHAPE',
      /128-d features/,
    );
  });

  it('leaves no tensors behind when an input check fails', async () => {
    const bad = tf.fill([2, 28, 28, 1], 3);
    const before = tf.memory().numTensors;
    await errorOf(classifier.predict(bad as tf.Tensor4D));
    await errorOf(mnistQuality(bad as tf.Tensor4D, setA, { classifier }));
    expect(tf.memory().numTensors).toBe(before);
    bad.dispose();
  });
});

describe('classifier files and training [wasm]', () => {
  beforeAll(async () => {
    await activateTestBackend('wasm');
  });

  it('loadClassifier round-trips and reports corrupt files', async () => {
    const params = initParams(3);
    const bytes = encodeSafetensors(params, { note: 'x' });
    const c = await withLeakCheck(() => loadClassifier(bytes), 'loadClassifier');
    expect(c.metadata.note).toBe('x');
    c.dispose();
    expect(c.disposed).toBe(true);
    expectSbm(await errorOf(c.predict(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D)), 'INVALID_ARGUMENT', /disposed/);
    // Missing tensor, wrong shape, not a safetensors file at all.
    const partial = { ...params };
    delete partial['fc2.bias'];
    const wrong = { ...params, 'fc2.bias': tf.zeros([11]) };
    const before = tf.memory().numTensors;
    expectSbm(
      await errorOf(() => loadClassifier(encodeSafetensors(partial))),
      'CORRUPT_CHECKPOINT',
      /missing tensor 'fc2.bias'/,
    );
    expectSbm(
      await errorOf(() => loadClassifier(encodeSafetensors(wrong))),
      'CORRUPT_CHECKPOINT',
      /'fc2.bias': expected float32 \[10\]/,
    );
    expect(tf.memory().numTensors).toBe(before);
    expectSbm(await errorOf(() => loadClassifier(new Uint8Array([1, 2, 3]))), 'CORRUPT_CHECKPOINT', /.+/);
    expectSbm(
      await errorOf(() => loadClassifier('weights' as never)),
      'INVALID_ARGUMENT',
      /bytes: expected a Uint8Array/,
    );
    expectSbm(
      await errorOf(loadDefaultClassifier({ path: '/nonexistent/classifier.safetensors' })),
      'FILE_NOT_FOUND',
      /no weights file at \/nonexistent/,
    );
    tf.dispose([wrong['fc2.bias'], ...Object.values(params)]);
  });

  it('training is seeded: same seed ⇒ bit-identical weights on one backend, another seed ⇒ different', async () => {
    const data = await loadMnist({ split: 'train', range: [0, 1], limit: 256 });
    const run = async (seed: number): Promise<Float32Array[]> => {
      const { classifier: c, steps } = await trainClassifier({
        images: data.images,
        labels: data.labels,
        batchSize: 64,
        epochs: 1,
        maxSteps: 3,
        seed,
      });
      expect(steps).toBe(3);
      const { decodeSafetensorsRaw } = await import('@sbm/safetensors');
      const raw = decodeSafetensorsRaw(c.toSafetensors());
      c.dispose();
      return PARAM_NAMES.map((n) => raw.tensors[n].values as Float32Array);
    };
    const before = tf.memory().numTensors;
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(tf.memory().numTensors).toBe(before);
    a.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(b[i])));
    expect(Array.from(a[0])).not.toEqual(Array.from(c[0]));
    // Three Adam steps moved every kernel away from its seeded initialization.
    const init = initParams(5);
    const w0 = await init['conv1.weight'].data();
    tf.dispose(Object.values(init));
    expect(Array.from(a[PARAM_NAMES.indexOf('conv1.weight')])).not.toEqual(Array.from(w0));
    tf.dispose([data.images, data.labels]);
  });
});
