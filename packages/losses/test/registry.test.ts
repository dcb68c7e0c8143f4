import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SbmError, isSbmError, listRegistered } from '@sbm/core';
import { VeSde, createSde } from '@sbm/sde';
import {
  ddpmLoss,
  dsmLoss,
  getLoss,
  implicitScoreMatchingLoss,
  listLosses,
  registerLoss,
  slicedScoreMatchingLoss,
  smldLoss,
  tutorialDsmLoss,
  unregisterLoss,
  type EpsilonModel,
  type NoiseConditionalScoreModel,
} from '@sbm/losses';

function sbmError(fn: () => unknown): SbmError {
  try {
    fn();
  } catch (e) {
    if (isSbmError(e)) return e;
    throw e;
  }
  throw new Error('expected a throw');
}

const bytes = async (t: tf.Tensor) => Array.from(new Uint8Array(new Float32Array(await t.data()).buffer));

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterEach(() => {
  unregisterLoss('test-plugin');
});

describe('loss registry', () => {
  const sde = createSde('vp');
  // A closed-form score (of N(0, I) under VP: the marginal stays N(0, I)) keeps the comparisons cheap.
  const score = (x: tf.Tensor) => tf.neg(x);

  it('lists the built-ins, each from @sbm/losses', () => {
    expect(listLosses()).toEqual(expect.arrayContaining(['dsm', 'tutorial-dsm', 'ssm', 'ism', 'smld', 'ddpm']));
    const sources = listRegistered().filter((e) => e.kind === 'loss' && listLosses().includes(e.name));
    expect(sources.every((e) => e.source.startsWith('@sbm/losses@'))).toBe(true);
  });

  it('a built-in through the registry gives the bits of the direct call, and leaks nothing', async () => {
    const x0 = tf.randomNormal([16, 2], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    const pairs: [string, Record<string, unknown>, () => tf.Scalar][] = [
      ['dsm', { weighting: 'likelihood' }, () => dsmLoss(score, x0, sde, 7, { weighting: 'likelihood' })],
      ['tutorial-dsm', {}, () => tutorialDsmLoss(score, x0, sde, 7)],
      [
        'ssm',
        { projection: 'rademacher' },
        () => slicedScoreMatchingLoss(score, x0, 7, { sde, projection: 'rademacher' }),
      ],
      ['ism', {}, () => implicitScoreMatchingLoss(score, x0, 7, { sde })],
    ];
    for (const [name, options, direct] of pairs) {
      const a = getLoss(name).compute({ score, x0, sde, seed: 7, options });
      const b = direct();
      expect(await bytes(a), name).toEqual(await bytes(b));
      tf.dispose([a, b]);
    }
    expect(tf.memory().numTensors).toBe(before);
    x0.dispose();
  });

  it('SMLD and DDPM declare the model they need and fail clearly without it', async () => {
    const ve = new VeSde({ N: 10 });
    const x0 = tf.randomNormal([8, 2], 0, 1, 'float32', 1);
    expect(getLoss('smld').requires).toBe('noise-conditional');
    const e = sbmError(() => getLoss('smld').compute({ score, x0, sde: ve, seed: 1, options: {} }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/^loss "smld": noiseConditional: expected a noise-conditional model .* got undefined/);
    const nc: NoiseConditionalScoreModel = (x, sigma) =>
      tf.div(tf.neg(x), tf.reshape(tf.add(1, tf.square(sigma)), [-1, 1]));
    const a = getLoss('smld').compute({ score, x0, sde: ve, seed: 2, options: {}, noiseConditional: nc });
    const b = smldLoss(nc, x0, ve, 2);
    expect(await bytes(a)).toEqual(await bytes(b));
    const eps: EpsilonModel = (x) => tf.mul(x, 0.5);
    expect(sbmError(() => getLoss('ddpm').compute({ score, x0, sde, seed: 1, options: {} })).message).toMatch(
      /epsilon: expected an epsilon-prediction model/,
    );
    const c = getLoss('ddpm').compute({ score, x0, sde: sde, seed: 3, options: { reduceMean: false }, epsilon: eps });
    const d = ddpmLoss(eps, x0, sde as never, 3, { reduceMean: false });
    expect(await bytes(c)).toEqual(await bytes(d));
    tf.dispose([x0, a, b, c, d]);
  });

  it('unknown names and option keys are rejected with a did-you-mean, through the registry and directly', () => {
    const x0 = tf.zeros([4, 2]);
    const e = sbmError(() => getLoss('dms'));
    expect(e.code).toBe('UNKNOWN_NAME');
    expect(e.message).toMatch(/^loss: expected one of .*"dsm".* got "dms" \(did you mean "dsm"\?\)/);
    const o = sbmError(() => getLoss('dsm').compute({ score, x0, sde, seed: 1, options: { weigthing: 'likelihood' } }));
    expect(o.code).toBe('INVALID_ARGUMENT');
    expect(o.message).toMatch(/unknown option "weigthing" \(did you mean "weighting"\?\)/);
    // `sde` is the trainer's to give for SSM, not an option of the registered loss.
    expect(sbmError(() => getLoss('ssm').compute({ score, x0, sde, seed: 1, options: { sde } })).message).toMatch(
      /unknown option "sde"/,
    );
    expect(sbmError(() => dsmLoss(score, x0, sde, 1, { reduce_mean: true } as never)).message).toMatch(
      /^dsmLoss: unknown option "reduce_mean" \(did you mean "reduceMean"\?\)/,
    );
    expect(sbmError(() => slicedScoreMatchingLoss(score, x0, 1, { nProjectons: 2 } as never)).message).toMatch(
      /did you mean "nProjections"/,
    );
    expect(sbmError(() => smldLoss(score as never, x0, new VeSde(), 1, { idx: 1 } as never)).message).toMatch(
      /^smldLoss: unknown option "idx"/,
    );
    x0.dispose();
  });

  it('through the registry nothing is read back: a NaN batch gives a NaN loss instead of a synchronous check', async () => {
    const nan = tf.tensor2d([[NaN, 1]]);
    // Called directly, the loss validates x0 with one synchronous read (its documented contract) ...
    expect(sbmError(() => dsmLoss(score, nan, sde, 1)).code).toBe('NON_FINITE');
    // ... through the registry the caller checks (train() does it asynchronously, batched).
    const l = getLoss('dsm').compute({ score, x0: nan, sde, seed: 1, options: {} });
    expect(Number.isNaN((await l.data())[0])).toBe(true);
    tf.dispose([nan, l]);
  });

  it('a plugin loss registers once, is found by name, and checks its own option keys', async () => {
    // ½·mean‖s(x0, t)‖² at t = 0.5: with s = −x on x0 = 1 everywhere the value is ½·D·1 = 1 for D = 2.
    registerLoss(
      'test-plugin',
      ({ score: s, x0, options }) =>
        tf.tidy(() =>
          tf.mul(
            tf.mean(tf.sum(tf.square(s(x0, tf.fill([x0.shape[0]], 0.5) as tf.Tensor1D)), 1)),
            (options.scale as number) ?? 0.5,
          ),
        ) as tf.Scalar,
      { optionKeys: ['scale'], description: 'test' },
    );
    expect(listLosses()).toContain('test-plugin');
    expect(sbmError(() => registerLoss('test-plugin', () => tf.scalar(0))).code).toBe('DUPLICATE_NAME');
    const x0 = tf.ones([3, 2]);
    const l = getLoss('test-plugin').compute({ score, x0, sde, seed: 0, options: {} });
    expect((await l.data())[0]).toBe(1);
    expect(
      sbmError(() => getLoss('test-plugin').compute({ score, x0, sde, seed: 0, options: { scal: 1 } })).message,
    ).toMatch(/did you mean "scale"/);
    expect(unregisterLoss('test-plugin')).toBe(true);
    expect(sbmError(() => getLoss('test-plugin')).code).toBe('UNKNOWN_NAME');
    tf.dispose([x0, l]);
  });
});
