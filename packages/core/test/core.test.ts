import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  SbmError,
  SeedStream,
  broadcastBatch,
  checkChoice,
  checkFinite,
  checkImagePixels,
  checkNumber,
  checkTensor,
  countTensors,
  flattenBatch,
  perSampleNorm,
  rademacher,
  randomNormal,
  registerBackend,
  removeBackend,
  selectBackend,
  unflattenBatch,
  withLeakCheck,
} from '@sbm/core';
import { describeWithBackends } from '@sbm/test-harness';

describe('SeedStream', () => {
  it('is deterministic and differs between seeds', () => {
    const a = new SeedStream(42);
    const b = new SeedStream(42);
    const c = new SeedStream(43);
    const sa = [a.next(), a.next(), a.next()];
    expect([b.next(), b.next(), b.next()]).toEqual(sa);
    expect([c.next(), c.next(), c.next()]).not.toEqual(sa);
    for (const s of sa) expect(s).toBeGreaterThanOrEqual(0);
    for (const s of sa) expect(s).toBeLessThan(2 ** 31);
  });
  it('rejects non-integer seeds', () => {
    expect(() => new SeedStream(1.5)).toThrow(/seed: expected a safe integer, got 1.5/);
  });
  it('gives roughly uniform floats', () => {
    const s = new SeedStream(7);
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) sum += s.uniform();
    // mean of U(0,1) has std 1/sqrt(12 n) ≈ 0.002; 5 sigma
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 / Math.sqrt(12 * n));
  });
});

describe('validation', () => {
  it('names the argument, expectation and value', () => {
    expect(() => checkNumber(-1, 'steps', { min: 1, integer: true })).toThrow(
      'steps: expected an integer >= 1, got -1',
    );
    expect(() => checkNumber(NaN, 'eps', { gt: 0 })).toThrow('eps: expected a finite number > 0, got NaN');
    expect(() => checkChoice('foo', 'sde', ['ve', 'vp'])).toThrow('sde: expected one of "ve", "vp", got "foo"');
    try {
      checkChoice('foo', 'sde', ['ve']);
    } catch (e) {
      expect(e).toBeInstanceOf(SbmError);
      expect((e as SbmError).code).toBe('UNKNOWN_NAME');
    }
  });
});

describeWithBackends('tensor helpers', () => {
  it('broadcasts, flattens and takes per-sample norms', async () => {
    await withLeakCheck(() => {
      tf.tidy(() => {
        const x = tf.tensor4d([1, 2, 3, 4, 0, 0, 3, 4], [2, 2, 2, 1]);
        expect(flattenBatch(x).shape).toEqual([2, 4]);
        expect(unflattenBatch(flattenBatch(x), x.shape).shape).toEqual([2, 2, 2, 1]);
        const n = perSampleNorm(x).arraySync() as number[];
        expect(n[0]).toBeCloseTo(Math.sqrt(30), 5);
        expect(n[1]).toBeCloseTo(5, 5);
        const b = broadcastBatch(tf.tensor1d([2, 3]), x);
        expect(b.shape).toEqual([2, 1, 1, 1]);
        expect(Array.from(tf.mul(x, b).dataSync())).toEqual([2, 4, 6, 8, 0, 0, 9, 12]);
        expect(() => broadcastBatch(tf.tensor1d([1, 2, 3]), x)).toThrow(/expected a \[2\] tensor/);
      });
    });
  });
  it('checks tensors for shape and finiteness', () => {
    const x = tf.tensor2d([1, NaN], [1, 2]);
    expect(() => checkTensor(x, 'x', [null, 3])).toThrow('x: expected shape [*, 3], got [1, 2]');
    expect(() => checkFinite(x, 'x')).toThrow('x: expected finite values, got NaN or Inf');
    const before = countTensors();
    checkFinite(tf.tensor1d([1]), 'y');
    expect(countTensors()).toBe(before + 1);
    tf.dispose(x);
  });
  it('seeded noise is reproducible and has the right moments', () => {
    const a = randomNormal([4000], 3);
    const b = randomNormal([4000], 3);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    const r = rademacher([4000], 5);
    const vals = new Set(Array.from(r.dataSync()));
    expect([...vals].sort()).toEqual([-1, 1]);
    // mean of 4000 N(0,1) has std 1/sqrt(4000) ≈ 0.016; 5 sigma
    expect(Math.abs(tf.mean(a).dataSync()[0])).toBeLessThan(5 / Math.sqrt(4000));
    tf.dispose([a, b, r]);
  });
});

describe('checkImagePixels', () => {
  it('accepts a well-formed image and names the bad argument otherwise', () => {
    expect(() => checkImagePixels(new Uint8Array(12), 2, 2, 3, 'encodePng')).not.toThrow();
    expect(() => checkImagePixels(new Uint8Array(12), 2, 0, 3, 'encodePng')).toThrow(
      'encodePng: height: expected a positive integer, got 0',
    );
    expect(() => checkImagePixels(new Uint8Array(12), 2, 2, 2, 'encodePng')).toThrow(
      'encodePng: channels: expected 1, 3 or 4, got 2',
    );
    expect(() => checkImagePixels(new Uint8Array(11), 2, 2, 3, 'encodePng')).toThrow(
      'encodePng: pixels: expected 2×2×3 = 12 bytes, got 11',
    );
  });
});

describe('withLeakCheck', () => {
  it('throws TENSOR_LEAK when a function leaks', async () => {
    let leaked: tf.Tensor | undefined;
    await expect(
      withLeakCheck(() => {
        leaked = tf.ones([2]);
      }, 'leaky'),
    ).rejects.toThrow(/leaky: 1 tensor\(s\) leaked/);
    leaked?.dispose();
  });
  it('allows returned tensors', async () => {
    const out = await withLeakCheck(() => ({ a: tf.ones([2]) }));
    out.a.dispose();
  });
});

describe('backend registry', () => {
  it('selects by priority, records skips, and rejects unknown names', async () => {
    const fake = (name: string) => async () => ({
      name,
      tfBackend: 'cpu',
      kind: 'node' as const,
      capabilities: { training: true, webgpu: false, float32: true, threads: 1 },
      reason: `${name} chosen`,
    });
    registerBackend(
      'test-high',
      async () => {
        throw new SbmError('BACKEND_UNAVAILABLE', 'not here');
      },
      1e6,
    );
    registerBackend('test-mid', fake('test-mid'), 1e5);
    try {
      const sel = await selectBackend();
      expect(sel.backend.name).toBe('test-mid');
      expect(sel.backend.reason).toBe('test-mid chosen (skipped test-high: not here)');
      await expect(selectBackend('nope')).rejects.toThrow(/backend: expected one of .*"test-high".*got "nope"/);
      await expect(selectBackend('test-high')).rejects.toThrow('not here');
    } finally {
      removeBackend('test-high');
      removeBackend('test-mid');
    }
  });
});
