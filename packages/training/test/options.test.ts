import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isSbmError } from '@sbm/core';
import { createSde } from '@sbm/sde';
import { MlpScoreModel } from '@sbm/models';
import { train, type TrainOptions } from '@sbm/training';

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isSbmError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('train options', () => {
  it('unknown keys of train() and of the named loss are rejected with a did-you-mean, before any tensor is made', async () => {
    const model = new MlpScoreModel({ name: 'mlp', inputDim: 2, hidden: [4] }, 1);
    const data = tf.zeros([8, 2]);
    const base = { model, sde: createSde('vp'), data, steps: 1, batchSize: 4, seed: 1 };
    const before = tf.memory().numTensors;
    expect(await messageOf(train({ ...base, batch_size: 4 } as unknown as TrainOptions))).toMatch(
      /^INVALID_ARGUMENT: train: unknown option "batch_size" \(did you mean "batchSize"\?\)/,
    );
    expect(await messageOf(train({ ...base, nanCheckEvry: 5 } as unknown as TrainOptions))).toMatch(
      /did you mean "nanCheckEvery"\?/,
    );
    expect(await messageOf(train({ ...base, loss: 'dms' }))).toMatch(/^UNKNOWN_NAME: loss: .*did you mean "dsm"\?/);
    expect(await messageOf(train({ ...base, lossOptions: { weigthing: 'likelihood' } }))).toMatch(
      /^INVALID_ARGUMENT: train: lossOptions of "dsm": unknown option "weigthing" \(did you mean "weighting"\?\)/,
    );
    expect(await messageOf(train({ ...base, loss: 'smld' }))).toMatch(
      /noiseConditional: expected a noise-conditional model/,
    );
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    data.dispose();
  });
});
