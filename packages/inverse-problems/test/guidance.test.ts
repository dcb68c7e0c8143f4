import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { VpSde, type ScoreFn } from '@sbm/sde';
import { mixture2d } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import { classifierGuidedScore, conditionalSample, getMethod } from '@sbm/inverse-problems';

// A linear classifier, logits = x W + t·u (3 classes over 2-D x): ∇ₓ log softmax(logits)[c] = W[:, c] − Σ_k p_k W[:, k].
const W = [
  [1, -0.5, 0.2],
  [0.3, 0.8, -1],
];
const u = [0.1, -0.2, 0.4];
const linear = (x: tf.Tensor, t: tf.Tensor1D) =>
  tf.tidy(() => tf.add(tf.matMul(x as tf.Tensor2D, tf.tensor2d(W)), tf.mul(tf.expandDims(t, 1), tf.tensor2d([u]))));
const zeroScore: ScoreFn = (x) => tf.mul(x, -1);
const X = [
  [0.5, 1],
  [-1, 2],
  [3, -0.5],
  [0, 0],
];
const T = [0.2, 0.5, 0.7, 1];

function expectedGrad(x: number[], t: number, c: number): number[] {
  const logits = [0, 1, 2].map((k) => x[0] * W[0][k] + x[1] * W[1][k] + t * u[k]);
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const z = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / z);
  return [0, 1].map((i) => W[i][c] - p.reduce((s, pk, k) => s + pk * W[i][k], 0));
}

describeWithBackends('classifierGuidedScore', () => {
  it('s + w ∇ₓ log softmax(classifier(x, t))[label], one label per sample (float64 closed form)', async () => {
    const labels = [0, 2, 1, 2];
    const scale = 2.5;
    const x = tf.tensor2d(X);
    const t = tf.tensor1d(T);
    const before = countTensors();
    const s = classifierGuidedScore(zeroScore, { classifier: linear, label: labels, scale, numClasses: 3 })(x, t);
    const got = (await s.array()) as number[][];
    X.forEach((xi, b) => {
      const g = expectedGrad(xi, T[b], labels[b]);
      for (let i = 0; i < 2; i++) expect(got[b][i]).toBeCloseTo(-xi[i] + scale * g[i], 5);
    });
    s.dispose();
    expect(countTensors()).toBe(before);
    tf.dispose([x, t]);
  });

  it('one label for the batch; scale defaults to 1; scale 0 is the plain score without calling the classifier', async () => {
    const x = tf.tensor2d(X);
    const t = tf.tensor1d(T);
    const s = classifierGuidedScore(zeroScore, { classifier: linear, label: 1 })(x, t);
    const got = (await s.array()) as number[][];
    X.forEach((xi, b) => {
      const g = expectedGrad(xi, T[b], 1);
      for (let i = 0; i < 2; i++) expect(got[b][i]).toBeCloseTo(-xi[i] + g[i], 5);
    });
    let calls = 0;
    const counted = (xx: tf.Tensor, tt: tf.Tensor1D) => (calls++, linear(xx, tt));
    const s0 = classifierGuidedScore(zeroScore, { classifier: counted, label: 1, scale: 0 })(x, t);
    expect(Array.from(await s0.data())).toEqual(X.flat().map((v) => -v));
    expect(calls).toBe(0);
    tf.dispose([x, t, s, s0]);
  });
});

describe('classifierGuidedScore: errors', () => {
  it('scale, label and numClasses are checked when the score is made', () => {
    const mk = (o: Record<string, unknown>) =>
      classifierGuidedScore(zeroScore, { classifier: linear, label: 0, ...o } as never);
    expectThrowsSbm(() => mk({ scale: -1 }), 'INVALID_ARGUMENT', /^scale: expected a finite number >= 0, got -1/);
    expectThrowsSbm(() => mk({ scale: NaN }), 'INVALID_ARGUMENT', /^scale: /);
    expectThrowsSbm(() => mk({ scale: Infinity }), 'INVALID_ARGUMENT', /^scale: /);
    expectThrowsSbm(() => mk({ label: 1.5 }), 'INVALID_ARGUMENT', /^label: expected an integer class in \[0, C\)/);
    expectThrowsSbm(() => mk({ label: -1 }), 'INVALID_ARGUMENT', /^label: /);
    expectThrowsSbm(() => mk({ label: [0, 3], numClasses: 3 }), 'INVALID_ARGUMENT', /^label\[1\]: .*\[0, 3\), got 3/);
    expectThrowsSbm(() => mk({ label: [] }), 'INVALID_ARGUMENT', /^label: .*empty array/);
    expectThrowsSbm(() => mk({ numClasses: 0 }), 'INVALID_ARGUMENT', /^numClasses: /);
    expectThrowsSbm(() => mk({ classifier: 'net' }), 'INVALID_ARGUMENT', /^classifier: expected a function/);
    expectThrowsSbm(
      () => classifierGuidedScore(3 as never, { classifier: linear, label: 0 }),
      'INVALID_ARGUMENT',
      /^score: /,
    );
  });

  it("the classifier's output and the label's range against it are checked at each call, with no leak", () => {
    const x = tf.tensor2d(X);
    const t = tf.tensor1d(T);
    const before = countTensors();
    const call = (o: Record<string, unknown>) =>
      classifierGuidedScore(zeroScore, { classifier: linear, label: 0, ...o } as never)(x, t);
    expectThrowsSbm(
      () => call({ classifier: (xx: tf.Tensor) => tf.sum(xx, 1) }),
      'INVALID_SHAPE',
      /^classifier: expected logits of shape \[4, classes\], got \[4\]/,
    );
    expectThrowsSbm(
      () => call({ classifier: (xx: tf.Tensor) => tf.slice(xx, [0, 0], [2, 2]) }),
      'INVALID_SHAPE',
      /^classifier: .*got \[2, 2\]/,
    );
    expectThrowsSbm(
      () => call({ numClasses: 4 }),
      'INVALID_SHAPE',
      /^classifier: expected 4 classes \(numClasses\), got logits \[4, 3\]/,
    );
    expectThrowsSbm(
      () => call({ label: 3 }),
      'INVALID_ARGUMENT',
      /^label: expected an integer class in \[0, 3\) \(the classifier's 3 classes\), got 3/,
    );
    expectThrowsSbm(
      () => call({ label: [0, 1] }),
      'INVALID_SHAPE',
      /^label: expected one class per sample \(4\), got 2/,
    );
    expect(() =>
      call({
        classifier: (xx: tf.Tensor, tt: tf.Tensor1D) => {
          linear(xx, tt).square();
          throw new Error('classifier boom');
        },
      }),
    ).toThrow('classifier boom');
    expect(countTensors()).toBe(before);
    tf.dispose([x, t]);
  });
});

describe("method 'guidance'", () => {
  const sde = new VpSde();
  const score = mixture2d().perturbed(sde).scoreFn;
  const base = { method: 'guidance', sde, score, shape: [8, 2], classifier: linear, label: 2, scale: 2 };

  it('rides on any sampler (default pc): one VJP per score call, seeded, no measurement, no leak', async () => {
    const before = countTensors();
    const a = await conditionalSample({ ...base, seed: 3, samplerOptions: { steps: 25 } });
    const b = await conditionalSample({ ...base, seed: 3, samplerOptions: { steps: 25 } });
    const c = await conditionalSample({ ...base, seed: 3, sampler: 'dpm-solver', samplerOptions: { steps: 6 } });
    expect(Array.from(await a.samples.data())).toEqual(Array.from(await b.samples.data()));
    // PC: one corrector and one predictor score call per step.
    expect(a.stats).toMatchObject({ method: 'guidance', sampler: 'pc', nfe: 50, vjp: 50, steps: 25 });
    expect(c.stats).toMatchObject({ method: 'guidance', sampler: 'dpm-solver', vjp: c.stats.nfe });
    expect(a.residual).toEqual([]);
    expect(getMethod('guidance')).toMatchObject({ needsMeasurement: false, samplers: 'any' });
    tf.dispose([a.samples, b.samples, c.samples]);
    expect(countTensors()).toBe(before);
  });

  it('a classifier that throws mid-run, an abort, labels of the wrong count, reserved samplerOptions: no leak', async () => {
    const before = countTensors();
    let calls = 0;
    const throwing = (x: tf.Tensor, t: tf.Tensor1D) => {
      if (++calls === 7) throw new Error('classifier boom');
      return linear(x, t);
    };
    await expect(
      conditionalSample({ ...base, seed: 1, classifier: throwing, samplerOptions: { steps: 25 } }),
    ).rejects.toThrow('classifier boom');
    expect(countTensors()).toBe(before);
    const ac = new AbortController();
    await expectRejectsSbm(
      conditionalSample({
        ...base,
        seed: 1,
        samplerOptions: { steps: 25 },
        signal: ac.signal,
        onProgress: (p) => p.step === 2 && ac.abort('stop'),
      }),
      'ABORTED',
      /./,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base, seed: 1, label: [0, 1, 2] }),
      'INVALID_SHAPE',
      /^label: expected one class per sample \(shape\[0\] = 8\), got 3/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base, seed: 1, samplerOptions: { seed: 2 } }),
      'INVALID_ARGUMENT',
      /^samplerOptions\.seed: give seed as an option of conditionalSample/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base, seed: 1, samplerOptions: { sampler: 'em' } }),
      'INVALID_ARGUMENT',
      /^samplerOptions\.sampler: give sampler as an option of conditionalSample/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base, seed: 1, samplerOptions: { stpes: 2 } }),
      'INVALID_ARGUMENT',
      /stpes.*did you mean "steps"/,
    );
    expect(countTensors()).toBe(before);
  });
});
