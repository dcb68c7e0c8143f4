import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { SbmError } from '@sbm/core';
import { ExponentialMovingAverage, MlpScoreModel, type ScoreModel } from '@sbm/models';
import { countLeaks, maxAbsDiff, values } from './helpers';

const cfg = {
  name: 'mlp' as const,
  inputDim: 2,
  hidden: [3],
  embedding: { type: 'fourier' as const, dim: 4, scale: 1 },
};

/** Sets every trainable weight of `m` to the constant `v` (so the EMA recurrence is one scalar per step). */
function setAll(m: ScoreModel, v: number): void {
  const ws = m.getWeights().filter((w) => w.trainable);
  const ts = ws.map((w) => ({ name: w.name, tensor: tf.fill(w.tensor.shape, v) }));
  m.setWeights(ts, { strict: false });
  tf.dispose(ts.map((t) => t.tensor));
}

function trainableValues(m: ScoreModel): number[] {
  return m
    .getWeights()
    .filter((w) => w.trainable)
    .flatMap((w) => values(w.tensor));
}

describeWithBackends('ExponentialMovingAverage', () => {
  it('warm-up decay min(rate, (1 + n)/(10 + n)) and the shadow recurrence', () => {
    const m = new MlpScoreModel(cfg, 1);
    setAll(m, 1);
    const ema = new ExponentialMovingAverage(m, { decay: 0.9 });
    // Shadow s_n = s_{n−1} − (1 − d_n)(s_{n−1} − p_n) with p_n = 2, 4, 8 and d_n = 2/11, 3/12, 4/13.
    let s = 1;
    for (const [n, p] of [
      [1, 2],
      [2, 4],
      [3, 8],
    ]) {
      const d = Math.min(0.9, (1 + n) / (10 + n));
      expect(ema.nextDecay()).toBeCloseTo(d, 12);
      setAll(m, p);
      expect(countLeaks(() => ema.update(m))).toBe(0);
      s = s - (1 - d) * (s - p);
    }
    expect(ema.numUpdates).toBe(3);
    const shadow = ema.getWeights().flatMap((w) => values(w.tensor));
    expect(
      maxAbsDiff(
        shadow,
        shadow.map(() => s),
      ),
    ).toBeLessThan(1e-5);
    // The warm-up reaches the target rate at n = 80: 81/90 = 0.9.
    const e2 = new ExponentialMovingAverage(m, { decay: 0.9 });
    for (let i = 0; i < 79; i++) e2.update(m);
    expect(e2.nextDecay()).toBeCloseTo(0.9, 12);
    expect(80 / 89).toBeLessThan(0.9);
    const e3 = new ExponentialMovingAverage(m, { decay: 0.9, warmup: false });
    expect(e3.nextDecay()).toBe(0.9);
    [ema, e2, e3].forEach((e) => e.dispose());
    m.dispose();
  });

  it('copyTo, store/restore swap weights in and out; fixed weights are untouched', () => {
    const m = new MlpScoreModel(cfg, 2);
    const W0 = values(m.getWeights().find((w) => w.name === 'embed/W')!.tensor);
    setAll(m, 3);
    const ema = new ExponentialMovingAverage(m, { decay: 0.5, warmup: false });
    setAll(m, 5);
    ema.update(m); // s = 3 − 0.5·(3 − 5) = 4
    const before = tf.memory().numTensors;
    ema.store(m);
    ema.copyTo(m);
    expect(trainableValues(m).every((v) => v === 4)).toBe(true);
    expect(values(m.getWeights().find((w) => w.name === 'embed/W')!.tensor)).toEqual(W0);
    ema.restore(m);
    expect(tf.memory().numTensors).toBe(before);
    expect(trainableValues(m).every((v) => v === 5)).toBe(true);
    expect(() => ema.restore(m)).toThrow(/nothing stored/);
    // Checkpoint round trip of the shadows.
    const e2 = new ExponentialMovingAverage(m, { decay: 0.5 });
    e2.setWeights(ema.getWeights(), ema.numUpdates);
    expect(e2.getWeights().flatMap((w) => values(w.tensor))).toEqual(ema.getWeights().flatMap((w) => values(w.tensor)));
    expect(e2.toJSON()).toEqual({ decay: 0.5, warmup: true, numUpdates: 1 });
    const other = new MlpScoreModel({ ...cfg, hidden: [4] }, 2);
    expect(() => ema.copyTo(other)).toThrow(SbmError);
    expect(() => new ExponentialMovingAverage(m, { decay: 1.5 })).toThrow(
      /decay: expected a finite number >= 0 <= 1, got 1.5/,
    );
    [ema, e2].forEach((e) => e.dispose());
    [m, other].forEach((x) => x.dispose());
  });
});
