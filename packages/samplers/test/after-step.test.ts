import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { describeWithBackends, expectRejectsSbm } from '@sbm/test-harness';
import { VeSde, type ScoreFn } from '@sbm/sde';
import { sample, type AfterStepFn } from '@sbm/samplers';

// LoopOptions.afterStep: the per-step hook of the shared loop that conditional sampling rides on. Data N(0, I) under
// the VE SDE is N(0, (1 + σ(t)²) I), so s(x, t) = −x/(1 + σ(t)²) exactly and every run is cheap (VE: PC's SMLD grid
// takes any N, where the VP DDPM grid needs N > β_max).
const sde = new VeSde();
const score: ScoreFn = (x, t) =>
  tf.tidy(() => {
    const sigma = tf.mul(sde.sigmaMin, tf.exp(tf.mul(t, Math.log(sde.sigmaMax / sde.sigmaMin))));
    return tf.div(x, tf.reshape(tf.neg(tf.add(1, tf.square(sigma))), [-1, 1]));
  });
const shape = [4, 3];

describeWithBackends('afterStep hook', () => {
  it("pc: called once per step, after the step, at the step's grid time t_i = linspace(T, eps, N) with x and x_mean", async () => {
    const steps = 5;
    const eps = 1e-5;
    const calls: { t: number; step: number; hasMean: boolean }[] = [];
    const before = countTensors();
    const hook: AfterStepFn = (state, t, step) => {
      calls.push({ t, step, hasMean: state.xMean !== undefined });
      return state;
    };
    const withHook = await sample({ sampler: 'pc', sde, score, shape, seed: 3, steps, eps, afterStep: hook });
    const plain = await sample({ sampler: 'pc', sde, score, shape, seed: 3, steps, eps });
    expect(calls.map((c) => c.step)).toEqual([1, 2, 3, 4, 5]);
    const grid = [0, 1, 2, 3, 4].map((i) => (i === 4 ? eps : 1 + ((eps - 1) * i) / 4));
    calls.forEach((c, i) => expect(c.t).toBeCloseTo(grid[i], 12));
    expect(calls.every((c) => c.hasMean)).toBe(true);
    // Handing the state back unchanged leaves the run bit-identical to one without the hook (same seed).
    expect(Array.from(await withHook.samples.data())).toEqual(Array.from(await plain.samples.data()));
    tf.dispose([withHook.samples, plain.samples]);
    expect(countTensors()).toBe(before);
  });

  it('euler on an explicit time grid: called once per step at the time reached, t_{i+1}, with x only', async () => {
    const times = [1, 0.7, 0.4, 0.1, 0.01];
    const calls: { t: number; step: number; hasMean: boolean }[] = [];
    const before = countTensors();
    const res = await sample({
      sampler: 'euler',
      sde,
      score,
      shape,
      seed: 4,
      schedule: { times },
      afterStep: (state, t, step) => {
        calls.push({ t, step, hasMean: state.xMean !== undefined });
        return state;
      },
    });
    expect(calls.map((c) => c.step)).toEqual([1, 2, 3, 4]);
    calls.forEach((c, i) => expect(c.t).toBeCloseTo(times[i + 1], 6));
    expect(calls.some((c) => c.hasMean)).toBe(false);
    expect(res.stats.nfe).toBe(4);
    res.samples.dispose();
    expect(countTensors()).toBe(before);
  });

  it("the hook's output replaces the state: a hook that zeroes x gives zero samples (pc, em, euler, dpm-solver)", async () => {
    const zero: AfterStepFn = ({ x }) => ({ x: tf.zerosLike(x) });
    const before = countTensors();
    for (const sampler of ['pc', 'em', 'euler', 'dpm-solver'] as const) {
      const res = await sample({ sampler, sde, score, shape, seed: 5, steps: 4, afterStep: zero } as never);
      const v = Array.from(await res.samples.data());
      // A zero state stays zero only if every later step reads it: −x and 0 noise at the end (the last step's
      // x_mean for pc / em, x itself for the grid solvers) prove the hook's tensor became the state.
      expect(
        v.every((e) => e === 0),
        sampler,
      ).toBe(true);
      res.samples.dispose();
    }
    // And a hook that changes only the last step changes the output (the last hook's output is what is returned).
    const shift: AfterStepFn = ({ x }, _t, step) => (step === 4 ? { x: tf.add(x, 100) } : { x: tf.clone(x) });
    const base = await sample({ sampler: 'euler', sde, score, shape, seed: 6, steps: 4 });
    const moved = await sample({ sampler: 'euler', sde, score, shape, seed: 6, steps: 4, afterStep: shift });
    const d = tf.tidy(() => tf.sub(moved.samples, base.samples));
    const dv = Array.from(await d.data());
    expect(dv.every((e) => Math.abs(e - 100) < 1e-3)).toBe(true);
    tf.dispose([base.samples, moved.samples, d]);
    expect(countTensors()).toBe(before);
  });

  it('a non-tensor or wrongly shaped return is an SbmError naming afterStep; a throwing hook frees every tensor', async () => {
    const before = countTensors();
    for (const sampler of ['pc', 'euler'] as const) {
      await expectRejectsSbm(
        sample({ sampler, sde, score, shape, seed: 1, steps: 3, afterStep: () => 42 as never } as never),
        'INVALID_ARGUMENT',
        /afterStep: expected it to return \{ x: Tensor, xMean\? \}, got 42/,
      );
      await expectRejectsSbm(
        sample({ sampler, sde, score, shape, seed: 1, steps: 3, afterStep: () => ({ x: 'x' }) as never } as never),
        'INVALID_ARGUMENT',
        /afterStep: expected it to return/,
      );
      await expectRejectsSbm(
        sample({
          sampler,
          sde,
          score,
          shape,
          seed: 1,
          steps: 3,
          afterStep: () => ({ x: tf.zeros([4, 2]) }),
        } as never),
        'INVALID_SHAPE',
        /afterStep: expected .* \[4, 3\], got \[4, 2\]/,
      );
      expect(countTensors(), sampler).toBe(before);
      let n = 0;
      await expect(
        sample({
          sampler,
          sde,
          score,
          shape,
          seed: 1,
          steps: 5,
          afterStep: (s: { x: tf.Tensor }) => {
            if (++n === 3) throw new Error('user hook failed');
            return s;
          },
        } as never),
      ).rejects.toThrow('user hook failed');
      expect(n).toBe(3);
      expect(countTensors(), sampler).toBe(before);
    }
    await expectRejectsSbm(
      sample({ sampler: 'pc', sde, score, shape, seed: 1, steps: 3, afterStep: 'x' as never }),
      'INVALID_ARGUMENT',
      /afterStep: expected a function, got/,
    );
    expect(countTensors()).toBe(before);
  });

  it("'ode' and 'dpm-adaptive' refuse the hook (their steps are chosen adaptively) without leaking", async () => {
    const before = countTensors();
    const hook: AfterStepFn = (s) => s;
    for (const sampler of ['ode', 'dpm-adaptive'] as const) {
      await expectRejectsSbm(
        sample({ sampler, sde, score, shape, seed: 1, afterStep: hook } as never),
        'INVALID_ARGUMENT',
        new RegExp(`afterStep: the adaptive "${sampler}" sampler takes no per-step hook`),
      );
    }
    expect(countTensors()).toBe(before);
  });
});
