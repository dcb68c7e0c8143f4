import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countTensors, withLeakCheck } from '@sbm/core';
import { loadMnist } from '@sbm/datasets/node';
import type { TimeClassifierFn } from '@sbm/inverse-problems';
import {
  NOISY_FORMAT,
  NOISY_PARAM_NAMES,
  NOISY_PARAM_SHAPES,
  initNoisyParams,
  loadNoisyClassifier,
  trainNoisyClassifier,
  type NoisyMnistClassifier,
} from '@sbm/mnist-eval';
import { defaultWeightsPath, loadDefaultNoisyClassifier } from '@sbm/mnist-eval/node';
import { TutorialVeSde, VpSde } from '@sbm/sde';
import { activateTestBackend, describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import { readFile } from 'node:fs/promises';

// The first N test digits; the shipped weights never saw them.
const N = 500;
/** Standard error of an accuracy p measured on n images. */
const se = (p: number, n: number): number => Math.sqrt((p * (1 - p)) / n);

/**
 * Accuracy of the shipped weights on all 10,000 test digits at t = 0.5 (σ(0.5) = 1.931, one seeded noise draw; see
 * the README section). The 500-image value here (another subset and noise draw) must agree with it within 3
 * standard errors of a 500-image estimate.
 */
const ACC_T05_10K = 0.5127;

describeWithBackends(
  'noise-conditional MNIST classifier',
  () => {
    let clf: NoisyMnistClassifier;
    let x0: tf.Tensor4D;
    let labels: tf.Tensor1D;
    const sde = new TutorialVeSde({ sigma: 25 });

    beforeAll(async () => {
      clf = await loadDefaultNoisyClassifier();
      const test = await loadMnist({ split: 'test', range: [0, 1], limit: N });
      x0 = test.images;
      labels = test.labels;
    });

    afterAll(() => {
      clf?.dispose();
      tf.dispose([x0, labels]);
    });

    const perturb = (t: number, seed: number): tf.Tensor4D =>
      tf.tidy(() => tf.add(x0, tf.mul(tf.randomNormal(x0.shape, 0, 1, 'float32', seed), sde.std(t)))) as tf.Tensor4D;

    it('carries its training metadata and the per-σ accuracy table', () => {
      const m = clf.metadata;
      expect(m.format).toBe(NOISY_FORMAT);
      expect(m.sde).toBe('tutorial-ve');
      expect(m.sdeSigma).toBe('25');
      expect(m.seed).toBe('0');
      const table = JSON.parse(m.testAccuracyBySigma) as [number, number][];
      expect(table.map(([s]) => s)).toEqual([0, 0.1, 0.5, 1, 2, 5, 10, 25]);
      expect(table[0][1]).toBeGreaterThanOrEqual(0.97);
      // Accuracy cannot rise with the noise by more than the 10k-sample noise of the table (SE ≤ 0.005).
      for (let i = 1; i < table.length; i++) expect(table[i][1]).toBeLessThanOrEqual(table[i - 1][1] + 0.015);
    });

    it('logits(x, t) is logitsAtSigma(x, σ(t)) with TutorialVeSde, and is a TimeClassifierFn', async () => {
      const x = tf.slice(x0, [0, 0, 0, 0], [6, 28, 28, 1]);
      const t = tf.tensor1d([0.01, 0.05, 0.2, 0.5, 0.8, 1]);
      const fn: TimeClassifierFn = clf.logits; // detached: logits is bound
      try {
        const before = countTensors();
        const a = fn(x, t);
        const sig = sde.stdT(t);
        const b = clf.logitsAtSigma(x, sig);
        expect(a.shape).toEqual([6, 10]);
        const [da, db] = [await a.data(), await b.data()];
        tf.dispose([a, b, sig]);
        expect(countTensors()).toBe(before);
        for (let i = 0; i < da.length; i++)
          expect(Math.abs(da[i] - db[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(da[i])));
        // The noise level matters: the same images at σ(0.01) and σ(1) get different logits.
        const lo = clf.logits(x, 0.01);
        const hi = clf.logits(x, 1);
        const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(lo, hi))));
        expect((await diff.data())[0]).toBeGreaterThan(0.1);
        tf.dispose([lo, hi, diff]);
      } finally {
        tf.dispose([x, t]);
      }
    });

    it('is differentiable w.r.t. x: finite gradients of x’s shape that match a central difference', async () => {
      const x = perturb(0.3, 21).slice([0, 0, 0, 0], [4, 28, 28, 1]);
      const y = tf.slice(labels, [0], [4]);
      const t = tf.fill([4], 0.3) as tf.Tensor1D;
      // f(x) = Σᵢ log softmax(logits(xᵢ, t))[yᵢ], the guidance term of score_sde's conditional sampler.
      const f = (v: tf.Tensor): tf.Scalar =>
        tf.sum(tf.mul(tf.logSoftmax(clf.logits(v, t)), tf.oneHot(tf.cast(y, 'int32'), 10))) as tf.Scalar;
      const v = tf.tidy(() => {
        const r = tf.randomNormal(x.shape, 0, 1, 'float32', 5);
        return tf.div(r, tf.norm(r));
      });
      try {
        const before = countTensors();
        const g = tf.grad(f)(x);
        expect(countTensors()).toBe(before + 1);
        expect(g.shape).toEqual([4, 28, 28, 1]);
        const gd = await g.data();
        expect(gd.every(Number.isFinite)).toBe(true);
        expect(gd.some((e) => e !== 0)).toBe(true);
        const h = 1e-2;
        const fd = tf.tidy(() => tf.div(tf.sub(f(tf.add(x, tf.mul(v, h))), f(tf.sub(x, tf.mul(v, h)))), 2 * h));
        const dir = tf.tidy(() => tf.sum(tf.mul(g, v)));
        const [fdv, dirv] = [(await fd.data())[0], (await dir.data())[0]];
        tf.dispose([g, fd, dir]);
        // h·‖v‖ = 0.01 against pixel noise of std 0.6: the ReLU pattern barely changes, so a few % agreement.
        expect(Math.abs(fdv - dirv)).toBeLessThanOrEqual(0.05 * Math.abs(dirv) + 1e-3);
      } finally {
        tf.dispose([x, y, t, v]);
      }
    });

    it('refuses bad inputs with one SbmError naming the argument, leaking nothing', async () => {
      const before = countTensors();
      const flat = tf.zeros([2, 784]);
      const x = tf.zeros([2, 28, 28, 1]);
      const t3 = tf.ones([3]) as tf.Tensor1D;
      const xi = tf.zeros([2, 28, 28, 1], 'int32');
      expectThrowsSbm(
        () => clf.logits(flat, 0.5),
        'INVALID_SHAPE',
        /logits: x: expected shape \[\*, 28, 28, 1\], got \[2, 784\]/,
      );
      expectThrowsSbm(
        () => clf.logits(x, t3),
        'INVALID_SHAPE',
        /logits: t: expected a number or a tensor of shape \[2\].*got shape \[3\]/,
      );
      expectThrowsSbm(() => clf.logits(x, 0), 'INVALID_ARGUMENT', /logits: t/);
      expectThrowsSbm(() => clf.logitsAtSigma(x, -1), 'INVALID_ARGUMENT', /logitsAtSigma: sigma/);
      expectThrowsSbm(() => clf.logits(xi, 0.5), 'INVALID_ARGUMENT', /logits: x: expected a float32 tensor, got int32/);
      await expectRejectsSbm(clf.accuracy(x, 0.5, t3), 'INVALID_SHAPE', /accuracy: labels: expected shape \[2\]/);
      expect(countTensors()).toBe(before + 4);
      tf.dispose([flat, x, t3, xi]);
      expect(countTensors()).toBe(before);
    });

    it('a throwing SDE leaks nothing; non-VE SDEs and foreign files are refused on load', async () => {
      const bytes = clf.toSafetensors();
      const before = countTensors();
      const boom = loadNoisyClassifier(bytes, {
        sde: {
          std: () => 1,
          stdT: () => {
            throw new Error('user stdT failed');
          },
        },
      });
      const x = tf.zeros([2, 28, 28, 1]);
      expect(() => boom.logits(x, 0.5)).toThrow(/user stdT failed/);
      x.dispose();
      boom.dispose();
      expect(countTensors()).toBe(before);
      expectThrowsSbm(
        () => loadNoisyClassifier(bytes, { sde: new VpSde() }),
        'INVALID_ARGUMENT',
        /sde: expected a variance-exploding SDE.*α\(0\.5\)/,
      );
      const clean = new Uint8Array(await readFile(defaultWeightsPath()));
      expectThrowsSbm(
        () => loadNoisyClassifier(clean),
        'CORRUPT_CHECKPOINT',
        /format 'sbm-mnist-noisy-classifier-v1', got 'sbm-mnist-classifier-v1'.*loadClassifier/,
      );
      expectThrowsSbm(
        () => loadNoisyClassifier('x' as unknown as Uint8Array),
        'INVALID_ARGUMENT',
        /loadNoisyClassifier: bytes: expected a Uint8Array/,
      );
      expect(countTensors()).toBe(before);
      await expectRejectsSbm(
        loadDefaultNoisyClassifier({ path: '/nonexistent/noisy.safetensors' }),
        'FILE_NOT_FOUND',
        /train-noisy\.mjs/,
      );
    });

    it('same seed ⇒ same init; another seed differs', async () => {
      const read = async (p: Record<string, tf.Tensor>) => Promise.all(NOISY_PARAM_NAMES.map((n) => p[n].data()));
      const [a, b, c] = [initNoisyParams(3), initNoisyParams(3), initNoisyParams(4)];
      const [da, db, dc] = [await read(a), await read(b), await read(c)];
      tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(c)]);
      NOISY_PARAM_NAMES.forEach((n, i) => {
        expect(Array.from(da[i]), n).toEqual(Array.from(db[i]));
        expect(da[i].length).toBe(NOISY_PARAM_SHAPES[n].reduce((p, q) => p * q, 1));
      });
      expect(Array.from(da[NOISY_PARAM_NAMES.indexOf('conv1.weight')])).not.toEqual(
        Array.from(dc[NOISY_PARAM_NAMES.indexOf('conv1.weight')]),
      );
    });
  },
  { backends: ['cpu', 'wasm'] },
);

// On wasm only (the backend the weights were trained and evaluated on): 1000 forward passes and three 2-step trainings
// take ~1 min with tfjs' cpu kernels, beyond this file's time budget. The cpu backend's numerics are covered by the
// suite above and by the cross-backend agreement test here.
describe('noise-conditional MNIST classifier: accuracy and training [wasm]', () => {
  let clf: NoisyMnistClassifier;
  let x0: tf.Tensor4D;
  let labels: tf.Tensor1D;
  const sde = new TutorialVeSde({ sigma: 25 });

  beforeAll(async () => {
    await activateTestBackend('wasm');
    clf = await loadDefaultNoisyClassifier();
    const test = await loadMnist({ split: 'test', range: [0, 1], limit: N });
    x0 = test.images;
    labels = test.labels;
  });

  afterAll(() => {
    clf?.dispose();
    tf.dispose([x0, labels]);
  });

  const perturb = (t: number, seed: number): tf.Tensor4D =>
    tf.tidy(() => tf.add(x0, tf.mul(tf.randomNormal(x0.shape, 0, 1, 'float32', seed), sde.std(t)))) as tf.Tensor4D;

  it('≥ 97% accuracy at t = 0.05 (σ ≈ 0.24) and well above chance at t = 0.5 (σ ≈ 1.93) on 500 test digits', async () => {
    const near = perturb(0.05, 11);
    const far = perturb(0.5, 12);
    const tFar = tf.fill([N], 0.5) as tf.Tensor1D;
    try {
      const a05 = await withLeakCheck(() => clf.accuracy(near, 0.05, labels), 'accuracy');
      const a50 = await withLeakCheck(() => clf.accuracy(far, tFar, labels), 'accuracy (t tensor)');
      console.log(`noisy-classifier [wasm]: accuracy t=0.05 ${a05.toFixed(3)}, t=0.5 ${a50.toFixed(3)} (n=${N})`);
      // The required 97% (the shipped weights: 0.978 here on wasm, 0.9723 on all 10k test digits; the SE of a
      // 500-image estimate at 0.97 is 0.0076, so a retrain that loses ~1 SE of accuracy fails here, as it should).
      expect(a05).toBeGreaterThanOrEqual(0.97);
      // Chance is 0.1: 3 SE of a 500-image estimate at p = 0.1 above it, and within 3 SE of the 10k figure.
      expect(a50).toBeGreaterThan(0.1 + 3 * se(0.1, N));
      expect(Math.abs(a50 - ACC_T05_10K)).toBeLessThan(3 * se(ACC_T05_10K, N));
    } finally {
      tf.dispose([near, far, tFar]);
    }
  });

  it('agrees with the cpu backend to float32 rounding', async () => {
    const x = perturb(0.2, 31).slice([0, 0, 0, 0], [16, 28, 28, 1]);
    const onWasm = clf.logits(x, 0.2);
    const [lw, xd] = [await onWasm.data(), await x.data()];
    tf.dispose([x, onWasm]);
    const bytes = clf.toSafetensors();
    await tf.setBackend('cpu');
    try {
      const onCpu = loadNoisyClassifier(bytes);
      const xc = tf.tensor4d(xd, [16, 28, 28, 1]);
      const lc = onCpu.logits(xc, 0.2);
      const d = await lc.data();
      tf.dispose([xc, lc]);
      onCpu.dispose();
      for (let i = 0; i < d.length; i++)
        expect(Math.abs(d[i] - lw[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(lw[i])));
    } finally {
      await activateTestBackend('wasm');
    }
  });

  it('same seed ⇒ same trained weights; another seed differs', async () => {
    const images = tf.slice(x0, [0, 0, 0, 0], [32, 28, 28, 1]);
    const lab = tf.cast(tf.slice(labels, [0], [32]), 'int32') as tf.Tensor1D;
    const before = countTensors();
    const train = (seed: number) =>
      trainNoisyClassifier({ images, labels: lab, batchSize: 8, maxSteps: 2, seed }).then((r) => r.classifier);
    const [r1, r2, r3] = [await train(9), await train(9), await train(10)];
    // The files hold the weights and a fixed metadata record: equal bytes ⇔ equal weights.
    const w = (k: NoisyMnistClassifier) => Buffer.from(k.toSafetensors()).toString('base64');
    expect(w(r1) === w(r2)).toBe(true);
    expect(w(r1) === w(r3)).toBe(false);
    [r1, r2, r3].forEach((k) => k.dispose());
    expect(countTensors()).toBe(before);
    tf.dispose([images, lab]);
  });
});
