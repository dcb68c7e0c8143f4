import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countTensors, withLeakCheck } from '@sbm/core';
import { Batcher, batches } from '@sbm/datasets';
import { expectSbm } from './helpers';

describe('Batcher', () => {
  it('each index exactly once per epoch (dropLast false, last batch smaller)', () => {
    const b = new Batcher(10, { batchSize: 4, seed: 1, dropLast: false });
    expect(b.stepsPerEpoch).toBe(3);
    for (let epoch = 0; epoch < 5; epoch++) {
      const seen: number[] = [];
      for (let step = 0; step < 3; step++) seen.push(...b.indices({ epoch, step }));
      expect(b.indices({ epoch, step: 2 }).length).toBe(2);
      expect([...seen].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
  });

  it('dropLast: ⌊N/B⌋ full batches of distinct indices', () => {
    const b = new Batcher(10, { batchSize: 4, seed: 1 });
    expect(b.stepsPerEpoch).toBe(2);
    const seen = [...b.indices({ epoch: 3, step: 0 }), ...b.indices({ epoch: 3, step: 1 })];
    expect(new Set(seen).size).toBe(8);
    expect(seen.every((i) => i >= 0 && i < 10)).toBe(true);
  });

  it('deterministic from the seed; epochs and seeds differ; shuffle false is the identity', () => {
    const a = new Batcher(50, { batchSize: 5, seed: 7 });
    const b = new Batcher(50, { batchSize: 5, seed: 7 });
    expect(Array.from(a.order(4))).toEqual(Array.from(b.order(4)));
    expect(Array.from(a.order(4))).not.toEqual(Array.from(a.order(5)));
    expect(Array.from(new Batcher(50, { batchSize: 5, seed: 8 }).order(4))).not.toEqual(Array.from(a.order(4)));
    expect(Array.from(new Batcher(5, { batchSize: 2, seed: 7, shuffle: false }).order(3))).toEqual([0, 1, 2, 3, 4]);
  });

  it('the first element of each epoch is uniform over the N indices (4000 epochs, N = 4)', () => {
    const b = new Batcher(4, { batchSize: 1, seed: 3 });
    const counts = [0, 0, 0, 0];
    for (let e = 0; e < 4000; e++) counts[b.order(e)[0]]++;
    // Binomial(4000, 1/4): standard deviation √(4000·¼·¾) ≈ 27.4; allow 5 of them.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(5 * Math.sqrt(4000 * 0.25 * 0.75));
  });

  it('positions walk epoch by epoch; next() wraps', () => {
    const b = new Batcher(7, { batchSize: 3, seed: 0 });
    expect([...b.positions({ epoch: 0, step: 1 }, 2)]).toEqual([
      { epoch: 0, step: 1 },
      { epoch: 1, step: 0 },
      { epoch: 1, step: 1 },
    ]);
    expect(b.next({ epoch: 4, step: 1 })).toEqual({ epoch: 5, step: 0 });
  });

  it('rejects bad sizes and positions', async () => {
    await expectSbm(
      () => new Batcher(3, { batchSize: 4, seed: 0 }),
      'INVALID_ARGUMENT',
      /batchSize: expected at most the data set size 3 when dropLast is true, got 4/,
    );
    await expectSbm(
      () => new Batcher(0, { batchSize: 1, seed: 0 }),
      'INVALID_ARGUMENT',
      /Batcher: size: expected an integer >= 1, got 0/,
    );
    const b = new Batcher(10, { batchSize: 4, seed: 0 });
    await expectSbm(
      () => b.indices({ epoch: 0, step: 2 }),
      'INVALID_ARGUMENT',
      /position.step: expected an integer >= 0 <= 1, got 2/,
    );
    await expectSbm(
      () => new Batcher(3, { batchSize: 1, seed: 0.5 }),
      'INVALID_ARGUMENT',
      /Batcher: seed: expected a safe integer/,
    );
  });
});

describe('batches over tensors', () => {
  it('yields gathered rows; resuming from a saved position reproduces the rest of the run exactly', async () => {
    await withLeakCheck(() => {
      // Row i of x is [i, 10 i], label i: the gathered values reveal the indices.
      const x = tf.tidy(() => tf.stack([tf.range(0, 23), tf.mul(tf.range(0, 23), 10)], 1));
      const y = tf.range(0, 23, 1, 'int32');
      const opts = { batchSize: 5, seed: 11, epochs: 3 };
      const full: { pos: string; x: number[]; y: number[]; next: string }[] = [];
      for (const { epoch, step, next, indices, batch } of batches({ x, y }, opts)) {
        const xs = Array.from(batch.x.dataSync());
        const ys = Array.from(batch.y.dataSync());
        expect(batch.x.shape).toEqual([5, 2]);
        expect(ys).toEqual(Array.from(indices));
        expect(xs).toEqual(Array.from(indices).flatMap((i) => [i, 10 * i]));
        full.push({ pos: `${epoch}/${step}`, x: xs, y: ys, next: `${next.epoch}/${next.step}` });
        tf.dispose(batch);
      }
      expect(full.length).toBe(3 * 4);
      // Stop after batch 6 (epoch 1, step 1); resume from the `next` it reported.
      const saved = full[5].next;
      expect(saved).toBe('1/2');
      const [epoch, step] = saved.split('/').map(Number);
      const resumed = [];
      for (const r of batches({ x, y }, { ...opts, from: { epoch, step } })) {
        resumed.push({
          pos: `${r.epoch}/${r.step}`,
          x: Array.from(r.batch.x.dataSync()),
          y: Array.from(r.batch.y.dataSync()),
          next: `${r.next.epoch}/${r.next.step}`,
        });
        tf.dispose(r.batch);
      }
      expect(resumed).toEqual(full.slice(6));
      tf.dispose([x, y]);
    }, 'batches resume');
  });

  it('stopping early leaks nothing; mismatched lengths are rejected', async () => {
    const x = tf.zeros([8, 3]);
    const before = countTensors();
    for (const { step, batch } of batches(x, { batchSize: 2, seed: 1 })) {
      tf.dispose(batch);
      if (step === 2) break;
    }
    expect(countTensors()).toBe(before);
    const y = tf.zeros([7]);
    await expectSbm(
      () => batches({ x, y }, { batchSize: 2, seed: 1 }),
      'INVALID_SHAPE',
      /data.y: expected 8 samples like the other entries, got 7/,
    );
    tf.dispose([x, y]);
  });
});
