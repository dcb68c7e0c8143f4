import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectRejectsSbm, expectThrowsSbm } from '@sbm/test-harness';
import { createSde, listSdes } from '@sbm/sde';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('times outside [0, T] are refused', () => {
  for (const name of listSdes()) {
    it(`${name}: the float64 forms refuse NaN, t < 0 and t > T, and accept the ends`, () => {
      // T = 2 where the SDE takes a T (the tutorial VE is fixed to T = 1).
      const sde = name === 'tutorial-ve' ? createSde(name) : createSde({ name, T: 2 } as never);
      const T = sde.T;
      for (const m of ['alpha', 'std', 'driftCoef', 'diffusion', 'lambda', 'edmSigma'] as const) {
        for (const bad of [NaN, -1e-9, T * (1 + 1e-12), Infinity]) {
          expectThrowsSbm(() => sde[m](bad), 'INVALID_ARGUMENT', new RegExp(`^t: expected a time in \\[0, ${T}\\]`));
        }
        expect(Number.isFinite(sde[m](T))).toBe(true);
      }
      expect(sde.alpha(0)).toBeCloseTo(1, 12);
    });
  }

  it('checkTimes refuses a time tensor with NaN or values outside [0, T] (one async readback), accepts [0, T]', async () => {
    const sde = createSde('vp');
    const before = tf.memory().numTensors;
    const ok = tf.tensor1d([0, 0.5, 1]);
    await sde.checkTimes(ok);
    const late = tf.tensor1d([0.5, 1.5, 2]);
    await expectRejectsSbm(sde.checkTimes(late), 'INVALID_ARGUMENT', /^t: expected times in \[0, 1\] .*got 1\.5$/);
    const nan = tf.tensor1d([0.5, NaN]);
    await expectRejectsSbm(
      sde.checkTimes(nan, 'times'),
      'INVALID_ARGUMENT',
      /^times: expected times in \[0, 1\] .*got NaN$/,
    );
    tf.dispose([ok, late, nan]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
