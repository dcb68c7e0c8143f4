import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { SbmError, withLeakCheck } from '@sbm/core';
import { avgPool2x, conv2dTranspose, groupNorm, swish, upsampleNearest2x } from '@sbm/models';
import { maxAbsDiff, values } from './helpers';

const idx = (shape: number[], i: number[]) => i.reduce((acc, v, k) => acc * shape[k] + v, 0);

describeWithBackends('layers', () => {
  it('groupNorm equals a hand computation (2 groups of 2 channels, affine)', async () => {
    const shape = [2, 2, 3, 4];
    const n = shape.reduce((a, b) => a * b);
    const x = Array.from({ length: n }, (_, i) => ((i * 7) % 11) - 5 + 0.1 * i);
    const gamma = [1.5, -0.5, 2, 0.25];
    const beta = [0.1, 0.2, -0.3, 0.4];
    const eps = 1e-6;
    const expected = new Array<number>(n);
    for (let b = 0; b < 2; b++) {
      for (let g = 0; g < 2; g++) {
        const members: number[] = [];
        for (let h = 0; h < 2; h++)
          for (let w = 0; w < 3; w++) for (let c = 2 * g; c < 2 * g + 2; c++) members.push(idx(shape, [b, h, w, c]));
        const mean = members.reduce((s, i) => s + x[i], 0) / members.length;
        const v = members.reduce((s, i) => s + (x[i] - mean) ** 2, 0) / members.length;
        for (const i of members) {
          const c = i % 4;
          expected[i] = ((x[i] - mean) / Math.sqrt(v + eps)) * gamma[c] + beta[c];
        }
      }
    }
    const y = await withLeakCheck(
      () =>
        tf.tidy(() =>
          groupNorm(
            tf.tensor4d(x, shape as [number, number, number, number]),
            2,
            tf.tensor1d(gamma),
            tf.tensor1d(beta),
            eps,
          ),
        ),
      'groupNorm',
    );
    expect(maxAbsDiff(values(y), expected)).toBeLessThan(1e-5);
    y.dispose();
    expect(() => groupNorm(tf.zeros([1, 2, 2, 6]) as tf.Tensor4D, 4)).toThrow(
      /groups: expected a divisor of the channel count 6, got 4/,
    );
  });

  it('swish is x·sigmoid(x)', () => {
    const xs = [-6, -1, 0, 0.5, 3];
    const y = swish(tf.tensor1d(xs));
    expect(
      maxAbsDiff(
        values(y),
        xs.map((v) => v / (1 + Math.exp(-v))),
      ),
    ).toBeLessThan(1e-6);
    y.dispose();
  });

  it('upsampleNearest2x repeats pixels and avgPool2x averages 2×2 blocks', async () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const up = await withLeakCheck(() => upsampleNearest2x(x), 'upsample');
    expect(up.shape).toEqual([1, 4, 4, 2]);
    const u = values(up);
    for (let h = 0; h < 4; h++)
      for (let w = 0; w < 4; w++)
        for (let c = 0; c < 2; c++) {
          expect(u[idx([1, 4, 4, 2], [0, h, w, c])]).toBe(values(x)[idx([1, 2, 2, 2], [0, h >> 1, w >> 1, c])]);
        }
    const down = avgPool2x(up as tf.Tensor4D);
    expect(values(down)).toEqual(values(x));
    const pooled = avgPool2x(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]));
    expect(values(pooled)).toEqual([3.5, 5.5, 11.5, 13.5]);
    expect(() => avgPool2x(tf.zeros([1, 3, 4, 1]) as tf.Tensor4D)).toThrow(SbmError);
    tf.dispose([x, up, down, pooled]);
  });

  it('conv2dTranspose matches torch ConvTranspose2d (scatter definition, output_padding 1)', () => {
    // y[iy·s + ky, ix·s + kx, co] += x[iy, ix, ci] · w[ky, kx, co, ci]; output (H − 1)s + k + op, the extra row and
    // column receiving only the bias.
    const [H, W, Ci, Co, k, s, op] = [3, 2, 2, 3, 3, 2, 1];
    const xv = Array.from({ length: H * W * Ci }, (_, i) => Math.sin(i + 1));
    const wv = Array.from({ length: k * k * Co * Ci }, (_, i) => Math.cos(0.7 * i));
    const bias = [0.5, -1, 2];
    const OH = (H - 1) * s + k + op;
    const OW = (W - 1) * s + k + op;
    const expected = new Array<number>(OH * OW * Co).fill(0);
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++)
        for (let co = 0; co < Co; co++) expected[idx([OH, OW, Co], [oy, ox, co])] = bias[co];
    for (let iy = 0; iy < H; iy++)
      for (let ix = 0; ix < W; ix++)
        for (let ci = 0; ci < Ci; ci++) {
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++)
              for (let co = 0; co < Co; co++) {
                expected[idx([OH, OW, Co], [iy * s + ky, ix * s + kx, co])] +=
                  xv[idx([H, W, Ci], [iy, ix, ci])] * wv[idx([k, k, Co, Ci], [ky, kx, co, ci])];
              }
        }
    const y = tf.tidy(() =>
      conv2dTranspose(tf.tensor4d(xv, [1, H, W, Ci]), tf.tensor4d(wv, [k, k, Co, Ci]), tf.tensor1d(bias), s, op),
    );
    expect(y.shape).toEqual([1, OH, OW, Co]);
    expect(maxAbsDiff(values(y), expected)).toBeLessThan(1e-5);
    y.dispose();
  });
});
