import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countTensors, isSbmError, type SbmError } from '@sbm/core';
import { VpSde } from '@sbm/sde';
import { mixture2d } from '@sbm/gaussian-mixture';
import { describeWithBackends } from '@sbm/test-harness';
import { conditionalSample, type ConditionalSampleOptions, type LinearOperator } from '@sbm/inverse-problems';

// conditionalSample's common validation (method-registry.ts checkCommon, the strict option keys) and the guidance /
// DPS settings it hands on: each bad input is one SbmError with a stable code, naming the argument (details.argument
// and the message's first word), and leaves no tensor behind.

/** y = B x over [b, 2] (B 1×2); `adjointScale` ≠ 1 breaks the adjoint. Holds no tensors. */
function dense(adjointScale = 1): LinearOperator {
  const B = [[1, -2]];
  return {
    name: 'dense-test',
    inShape: [2],
    outShape: [1],
    forward: (x) => tf.tidy(() => tf.matMul(x as tf.Tensor2D, tf.tensor2d(B), false, true)),
    adjoint: (y) => tf.tidy(() => tf.mul(tf.matMul(y as tf.Tensor2D, tf.tensor2d(B)), adjointScale)),
  };
}

const linearClassifier = (x: tf.Tensor) => tf.tidy(() => tf.matMul(x as tf.Tensor2D, tf.ones([2, 3])));

describeWithBackends('conditionalSample: common validation', () => {
  const sde = new VpSde();
  const score = mixture2d().perturbed(sde).scoreFn;
  const t: Record<string, tf.Tensor> = {};
  beforeAll(() => {
    t.y = tf.ones([4, 1]);
    t.yWide = tf.ones([4, 2]);
    t.yBatch = tf.ones([3, 1]);
    t.yNaN = tf.tensor2d([[1], [NaN], [0], [2]]);
    t.yRank = tf.ones([4]);
  });
  afterAll(() => tf.dispose(Object.values(t)));

  const dps = (o: Record<string, unknown> = {}) =>
    ({ method: 'dps', sde, score, shape: [4, 2], seed: 1, operator: dense(), y: t.y, steps: 25, ...o }) as never;
  const guidance = (o: Record<string, unknown> = {}) =>
    ({
      method: 'guidance',
      sde,
      score,
      shape: [4, 2],
      seed: 1,
      classifier: linearClassifier,
      label: 1,
      sampler: 'em',
      samplerOptions: { steps: 3 },
      ...o,
    }) as never;

  async function expectFails(
    opts: () => ConditionalSampleOptions,
    code: string,
    argument: string | undefined,
    message: RegExp,
  ): Promise<void> {
    const before = countTensors();
    let err: unknown;
    try {
      const r = await conditionalSample(opts());
      r.samples.dispose();
    } catch (e) {
      err = e;
    }
    expect(err, `expected an SbmError matching ${message}`).toBeDefined();
    expect(isSbmError(err), String(err)).toBe(true);
    const e = err as SbmError;
    expect(e.code, e.message).toBe(code);
    expect(e.message).toMatch(message);
    if (argument !== undefined) expect(e.details?.argument, e.message).toBe(argument);
    expect(countTensors(), `leak after: ${e.message}`).toBe(before);
  }

  it('unknown method, with a did-you-mean', async () => {
    await expectFails(() => dps({ method: 'dsp' }), 'UNKNOWN_NAME', undefined, /"dsp".*did you mean "dps"/);
  });

  it('unknown option key, with a did-you-mean (per method)', async () => {
    await expectFails(
      () => dps({ zetta: 1 }),
      'INVALID_ARGUMENT',
      'zetta',
      /unknown option "zetta" \(did you mean "zeta"\?\)/,
    );
    await expectFails(
      () => guidance({ sacle: 2 }),
      'INVALID_ARGUMENT',
      'sacle',
      /unknown option "sacle" \(did you mean "scale"\?\)/,
    );
    // A key another method takes is still unknown to this one.
    await expectFails(() => guidance({ zeta: 1 }), 'INVALID_ARGUMENT', 'zeta', /guidance: unknown option "zeta"/);
  });

  it('y: missing, not a tensor, wrong shape, wrong rank, wrong batch, NaN', async () => {
    await expectFails(
      () => dps({ y: undefined }),
      'INVALID_ARGUMENT',
      'y',
      /^y: method "dps" needs the measurements y/,
    );
    await expectFails(() => dps({ y: [[1]] }), 'INVALID_ARGUMENT', 'y', /^y: expected a tensor \[batch, 1\]/);
    await expectFails(
      () => dps({ y: t.yWide }),
      'INVALID_SHAPE',
      'y',
      /^y: expected the measurements of shape \[batch, 1\], got \[4, 2\]/,
    );
    await expectFails(() => dps({ y: t.yRank }), 'INVALID_SHAPE', 'y', /^y: .*got \[4\]/);
    await expectFails(() => dps({ y: t.yBatch }), 'INVALID_SHAPE', 'y', /^y: expected batch 4 \(shape\[0\]\), got 3/);
    await expectFails(() => dps({ y: t.yNaN }), 'NON_FINITE', 'y', /^y: expected finite values, got NaN or Inf/);
  });

  it('operator: missing, not an operator, adjoint failing the dot-product test, forward of the wrong shape; shape vs inShape', async () => {
    await expectFails(
      () => dps({ operator: undefined }),
      'INVALID_ARGUMENT',
      'operator',
      /^operator: method "dps" needs/,
    );
    await expectFails(
      () => dps({ operator: 'mask' }),
      'INVALID_ARGUMENT',
      'operator',
      /^operator: expected a LinearOperator/,
    );
    await expectFails(
      () => dps({ operator: dense(2) }),
      'INVALID_ARGUMENT',
      'operator',
      /^operator: adjoint fails the dot-product test/,
    );
    await expectFails(
      () => dps({ operator: { ...dense(), forward: (x: tf.Tensor) => x } }),
      'INVALID_SHAPE',
      'operator.forward(x)',
      /^operator\.forward\(x\): expected A x of shape \[batch, 1\], got \[1, 2\]/,
    );
    await expectFails(
      () => dps({ shape: [4, 3] }),
      'INVALID_SHAPE',
      'shape',
      /^shape: expected \[batch, 2\] \(the operator's inShape\), got \[4, 3\]/,
    );
  });

  it('noiseStd < 0 or not finite; sde, score, shape, samplerOptions', async () => {
    await expectFails(
      () => dps({ noiseStd: -0.1 }),
      'INVALID_ARGUMENT',
      'noiseStd',
      /^noiseStd: expected a finite number >= 0, got -0\.1/,
    );
    await expectFails(() => dps({ noiseStd: NaN }), 'INVALID_ARGUMENT', 'noiseStd', /^noiseStd: /);
    await expectFails(() => dps({ sde: 'vp' }), 'INVALID_ARGUMENT', 'sde', /^sde: expected an Sde instance/);
    await expectFails(() => dps({ score: 1 }), 'INVALID_ARGUMENT', 'score', /^score: expected a function/);
    await expectFails(() => dps({ shape: [4] }), 'INVALID_ARGUMENT', 'shape', /^shape: expected \[batch, \.\.\.dims\]/);
    await expectFails(
      () => dps({ samplerOptions: 3 }),
      'INVALID_ARGUMENT',
      'samplerOptions',
      /^samplerOptions: expected an object/,
    );
  });

  it('guidance: negative or non-finite scale, wrong number of classes, bad label, a measurement given', async () => {
    await expectFails(
      () => guidance({ scale: -1 }),
      'INVALID_ARGUMENT',
      'scale',
      /^scale: expected a finite number >= 0, got -1/,
    );
    await expectFails(() => guidance({ scale: Infinity }), 'INVALID_ARGUMENT', 'scale', /^scale: /);
    // The classifier gives 3 classes; numClasses says 4: found at the first score call, inside the sampler.
    await expectFails(
      () => guidance({ numClasses: 4 }),
      'INVALID_SHAPE',
      'classifier',
      /^classifier: expected 4 classes \(numClasses\), got logits \[4, 3\]/,
    );
    await expectFails(
      () => guidance({ classifier: (x: tf.Tensor) => tf.sum(x, 1) }),
      'INVALID_SHAPE',
      'classifier',
      /^classifier: expected logits of shape \[4, classes\], got \[4\]/,
    );
    await expectFails(() => guidance({ label: 3 }), 'INVALID_ARGUMENT', 'label', /^label: .*\[0, 3\).*got 3/);
    await expectFails(() => guidance({ label: 0.5 }), 'INVALID_ARGUMENT', 'label', /^label: expected an integer class/);
    await expectFails(
      () => guidance({ label: [1, 2] }),
      'INVALID_SHAPE',
      'label',
      /^label: expected one class per sample/,
    );
    await expectFails(
      () => guidance({ classifier: undefined }),
      'INVALID_ARGUMENT',
      'classifier',
      /^classifier: expected a function/,
    );
    await expectFails(
      () => guidance({ y: t.y }),
      'INVALID_ARGUMENT',
      'y',
      /^y: method "guidance" takes no measurement/,
    );
    await expectFails(
      () => guidance({ operator: dense() }),
      'INVALID_ARGUMENT',
      'operator',
      /^operator: method "guidance" takes no measurement/,
    );
  });

  it('not an options object', async () => {
    const before = countTensors();
    await expect(conditionalSample(null as never)).rejects.toSatisfy(
      (e) => isSbmError(e, 'INVALID_ARGUMENT') && /options: expected an object/.test((e as Error).message),
    );
    expect(countTensors()).toBe(before);
  });
});
