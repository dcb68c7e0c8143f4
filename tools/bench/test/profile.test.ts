import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error — plain .mjs bench helpers without type declarations
import { aggregate, profiledCount, profileWithDepth, selfTimes } from '../lib/profile.mjs';
// @ts-expect-error — plain .mjs bench helpers without type declarations
import { bestOf } from '../lib/torch-threads.mjs';

/*
 * The bench's per-kernel profile (npm run bench -- train --profile) is the yardstick of issue 16: these tests pin
 * the two things it relies on — nested kernels (the engine's Identity clones of saved tensors) are inside their
 * parent's kernelMs and get subtracted, and step marks split one profile into steps.
 */
interface K {
  name: string;
  kernelTimeMs: number;
}

describe('bench profile helpers', () => {
  let prev = '';
  beforeAll(async () => {
    prev = tf.getBackend();
    await tf.setBackend('cpu');
  });
  afterAll(async () => {
    if (prev) await tf.setBackend(prev);
  });

  it('self time subtracts the kernels run directly inside a kernel (post-order records)', () => {
    // A(depth 1) contains B(2), which contains C(3); then D(1) alone. Records come children first.
    const kernels: K[] = [
      { name: 'C', kernelTimeMs: 1 },
      { name: 'B', kernelTimeMs: 3 },
      { name: 'A', kernelTimeMs: 10 },
      { name: 'D', kernelTimeMs: 2 },
    ];
    const depths = [3, 2, 1, 1];
    expect(selfTimes(kernels, depths)).toEqual([1, 2, 7, 2]);
    // Without depths: inclusive times.
    expect(selfTimes(kernels, null)).toEqual([1, 3, 10, 2]);
    const rows = aggregate(kernels, depths, selfTimes(kernels, depths), 0, 4, 2);
    expect(rows.map((r: { kernel: string }) => r.kernel)).toEqual(['A', 'B', 'D', 'C']);
    expect(rows[0]).toMatchObject({ calls: 0.5, selfMs: 3.5, inclusiveMs: 5, nestedCalls: 0 });
    expect(rows.find((r: { kernel: string }) => r.kernel === 'C')).toMatchObject({ nestedCalls: 0.5 });
  });

  it('bestOf picks the faster thread count and ignores missing figures', () => {
    expect(bestOf({ 1: 230, 2: 640 })).toEqual({ ms: 230, threads: 1 });
    expect(bestOf({ 1: 300, 2: 200 })).toEqual({ ms: 200, threads: 2 });
    expect(bestOf({ 1: null, 2: 640 })).toEqual({ ms: 640, threads: 2 });
    expect(bestOf({})).toEqual({ ms: null, threads: null });
  });

  it('on a real tape, the saved-tensor Identity clones are nested and the self times add up', async () => {
    const before = tf.memory().numTensors;
    const init = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const v = tf.variable(init);
    const x = tf.tensor2d([5, 6, 7, 8], [2, 2]);
    const marks: number[] = [];
    const p = await profileWithDepth(tf, async () => {
      for (let i = 0; i < 2; i++) {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.matMul(x, v), x)) as tf.Scalar);
        tf.dispose([value, grads]);
        marks.push(profiledCount(tf));
      }
      return null;
    });
    tf.dispose([init, v, x]);
    expect(tf.memory().numTensors - before).toBe(0);
    expect(p.depths).not.toBeNull();
    expect(p.depths.length).toBe(p.kernels.length);
    const nested = p.kernels.filter((_: K, i: number) => p.depths[i] > 1);
    // BatchMatMul and Multiply save their inputs for the gradient: cloned by Identity inside the forward kernel.
    expect(nested.length).toBeGreaterThan(0);
    expect(nested.every((k: K) => k.name === 'Identity')).toBe(true);
    const self = selfTimes(p.kernels, p.depths);
    const top = p.kernels.reduce((a: number, k: K, i: number) => a + (p.depths[i] === 1 ? k.kernelTimeMs : 0), 0);
    const sumSelf = self.reduce((a: number, b: number) => a + b, 0);
    expect(Math.abs(sumSelf - top)).toBeLessThan(1e-9 + 1e-9 * top);
    // Two identical steps: the second step's kernel calls equal the first's.
    expect(marks).toHaveLength(2);
    const count = (from: number, to: number) =>
      aggregate(p.kernels, p.depths, self, from, to, 1)
        .map((r: { kernel: string; calls: number }) => `${r.kernel}:${r.calls}`)
        .sort();
    expect(count(marks[0], marks[1])).toEqual(count(0, marks[0]));
  });
});
