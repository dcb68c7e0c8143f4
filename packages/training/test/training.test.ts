import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, truncateSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSde } from '@sbm/sde';
import { MlpScoreModel, modelFromConfig } from '@sbm/models';
import { toy } from '@sbm/datasets';
import { FileCheckpointStorage } from '@sbm/backend-node';
import { isSbmError } from '@sbm/core';
import { loadCheckpoint, train, readCheckpoint, type TrainOptions } from '@sbm/training';
import { MemoryStorage, nanFromStep6, snapshot } from './helpers';

// A small network keeps each cpu step to a few milliseconds.
const MLP = { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } } as const;
const newModel = (seed = 3) => new MlpScoreModel({ ...MLP, hidden: [...MLP.hidden] }, seed);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isSbmError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

let x: tf.Tensor2D;
let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  x = toy('ring8', 512, 1);
  dir = mkdtempSync(join(tmpdir(), 'sbm-training-'));
});
afterAll(() => {
  x.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function base(extra: Partial<TrainOptions> = {}): TrainOptions {
  const { model, ...rest } = extra;
  return {
    model: model ?? newModel(),
    sde: createSde('vp'),
    data: x,
    batchSize: 32,
    lr: 3e-3,
    warmup: 5,
    seed: 11,
    ...rest,
  };
}

describe('train (cpu)', () => {
  it('decreases the DSM loss below the zero-score value D/2 and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const model = newModel();
    const res = await train({
      ...base({ model, steps: 200, batchSize: 64 }),
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    // With s ≡ 0 the default DSM loss is ½E‖z‖² = D/2 = 1 exactly (reduceMean false: ½·sum). A per-step loss has
    // sd ≈ √(D/2)/√64 ≈ 0.13, so the mean of the last 50 steps has sd ≈ 0.02; 0.75 is > 10 sd below 1.
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(res.losses.slice(0, 20));
    const last = mean(res.losses.slice(-50));
    expect(first).toBeGreaterThan(0.85);
    expect(last).toBeLessThan(0.75);
    expect(res.step).toBe(200);
    // Tensor count is flat from step to step (no per-step leak) ...
    expect(counts.slice(1)).toEqual(counts.slice(1).map(() => counts[1]));
    res.ema.dispose();
    model.dispose();
    // ... and the trainer frees everything it made (Adam moments, EMA disposed above).
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resumes exactly: k steps + resume to 2k == 2k steps, bit for bit (losses, weights, EMA)', async () => {
    const storage = new MemoryStorage();
    const full = await train(base({ steps: 30 }));
    const a = await train(base({ steps: 15, checkpoint: { storage, location: 'run', every: 4 } }));
    a.model.dispose();
    a.ema.dispose();
    const model = newModel(99); // other initial weights: everything must come from the checkpoint
    const b = await train(base({ model, steps: 30, resume: true, checkpoint: { storage, location: 'run', every: 4 } }));
    expect(b.firstStep).toBe(15);
    expect([...a.losses, ...b.losses]).toEqual(full.losses);
    expect(snapshot(b.model.getWeights())).toEqual(snapshot(full.model.getWeights()));
    expect(snapshot(b.ema.getWeights())).toEqual(snapshot(full.ema.getWeights()));
    expect(b.lossHistory).toEqual(full.lossHistory);
    for (const r of [full, b]) {
      r.model.dispose();
      r.ema.dispose();
    }
  });

  it('an interrupted save leaves the previous checkpoint loadable and unchanged', async () => {
    const ref = await train(base({ steps: 5 }));
    const refWeights = snapshot(ref.model.getWeights());
    ref.model.dispose();
    ref.ema.dispose();
    for (const [kind, n] of [
      ['save', 5], // second checkpoint: its ema weights (saves 1-3 are checkpoint 1, 4-6 checkpoint 2)
      ['writeFile', 3], // second checkpoint: its config.json (writes: config, pointer, config, ...)
      ['writeFile', 4], // second checkpoint: the pointer itself
    ] as const) {
      const storage = new MemoryStorage();
      storage.failOn(kind, n);
      const model = newModel();
      const err = await codeOf(train(base({ model, steps: 10, checkpoint: { storage, location: 'run', every: 5 } })));
      expect(err).toBe('IO_ERROR');
      const loaded = await loadCheckpoint(storage, 'run');
      expect(loaded.config.step).toBe(5);
      expect(snapshot(loaded.model.getWeights())).toEqual(refWeights);
      tf.dispose([loaded.optimizerState.m, loaded.optimizerState.v]);
      loaded.model.dispose();
      loaded.ema.dispose();
      model.dispose();
    }
  });

  it('corrupt, truncated or missing checkpoint files give CORRUPT_CHECKPOINT / FILE_NOT_FOUND', async () => {
    const storage = new FileCheckpointStorage();
    const loc = join(dir, 'corrupt');
    const r = await train(base({ steps: 6, checkpoint: { storage, location: loc, every: 3 } }));
    r.model.dispose();
    r.ema.dispose();
    const slot = JSON.parse(readFileSync(join(loc, 'checkpoint.json'), 'utf8')).slot as string;
    const weights = join(loc, slot, 'model', 'weights.bin');
    const good = readFileSync(weights);
    const check = async (label: string, expected: string) => {
      const before = tf.memory().numTensors;
      // Strict: the other slot (step 3) is intact, and the default load would fall back to it (tested below).
      expect(`${label}: ${await codeOf(loadCheckpoint(storage, loc, { fallback: false }))}`).toBe(
        `${label}: ${expected}`,
      );
      expect(`${label}: ${tf.memory().numTensors}`).toBe(`${label}: ${before}`);
    };
    expect(await codeOf(loadCheckpoint(storage, join(dir, 'nothing-here')))).toBe('FILE_NOT_FOUND');
    truncateSync(weights, good.length - 4);
    await check('truncated weights.bin', 'CORRUPT_CHECKPOINT');
    const flipped = Buffer.from(good);
    flipped[7] ^= 0x40;
    writeFileSync(weights, flipped);
    await check('one flipped byte', 'CORRUPT_CHECKPOINT');
    writeFileSync(weights, good);
    const ema = join(loc, slot, 'ema', 'weights.bin');
    const emaGood = readFileSync(ema);
    rmSync(ema);
    await check('missing ema weights', 'CORRUPT_CHECKPOINT');
    writeFileSync(ema, emaGood);
    const cfgPath = join(loc, slot, 'config.json');
    const cfg = readFileSync(cfgPath, 'utf8');
    writeFileSync(cfgPath, cfg.slice(0, cfg.length / 2));
    await check('truncated config.json', 'CORRUPT_CHECKPOINT');
    writeFileSync(cfgPath, cfg);
    const ptr = readFileSync(join(loc, 'checkpoint.json'), 'utf8');
    writeFileSync(join(loc, 'checkpoint.json'), '{"format":"sbm-checkpoint-pointer"');
    await check('truncated pointer', 'CORRUPT_CHECKPOINT');
    writeFileSync(join(loc, 'checkpoint.json'), ptr);
    const ok = await loadCheckpoint(storage, loc);
    expect(ok.config.step).toBe(6);
    tf.dispose([ok.optimizerState.m, ok.optimizerState.v]);
    ok.model.dispose();
    ok.ema.dispose();
  });

  it('resume with another model or SDE is CONFIG_MISMATCH and changes neither the model nor the files', async () => {
    const storage = new FileCheckpointStorage();
    const loc = join(dir, 'mismatch');
    const r = await train(base({ steps: 4, checkpoint: { storage, location: loc, every: 2 } }));
    r.model.dispose();
    r.ema.dispose();
    const mtime = statSync(join(loc, 'checkpoint.json')).mtimeMs;
    const other = new MlpScoreModel({ ...MLP, hidden: [16, 8] }, 3);
    const otherBefore = snapshot(other.getWeights());
    expect(
      await codeOf(train(base({ model: other, steps: 8, resume: true, checkpoint: { storage, location: loc } }))),
    ).toBe('CONFIG_MISMATCH');
    expect(snapshot(other.getWeights())).toEqual(otherBefore);
    const same = newModel();
    const sameBefore = snapshot(same.getWeights());
    const ve = createSde('ve');
    expect(
      await codeOf(
        train(base({ model: same, sde: ve, steps: 8, resume: true, checkpoint: { storage, location: loc } })),
      ),
    ).toBe('CONFIG_MISMATCH');
    expect(
      await codeOf(
        train(base({ model: same, batchSize: 16, steps: 8, resume: true, checkpoint: { storage, location: loc } })),
      ),
    ).toBe('CONFIG_MISMATCH');
    expect(snapshot(same.getWeights())).toEqual(sameBefore);
    expect(statSync(join(loc, 'checkpoint.json')).mtimeMs).toBe(mtime);
    other.dispose();
    same.dispose();
  });

  it('NaN data stops with NON_FINITE naming the step and the last good checkpoint, which stays intact', async () => {
    const storage = new MemoryStorage();
    const good = toy('ring8', 64, 2);
    // Batches are clean up to step 6 (0-based), then contain a NaN.
    const source = nanFromStep6(good);
    const model = newModel();
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      await train(base({ model, data: source, steps: 20, checkpoint: { storage, location: 'nan', every: 4 } }));
    } catch (e) {
      error = e;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(isSbmError(error, 'NON_FINITE')).toBe(true);
    const details = (error as { details: { step: number; lastGoodCheckpoint: { step: number; location: string } } })
      .details;
    expect(details.step).toBe(7);
    expect(details.lastGoodCheckpoint).toEqual({ step: 4, location: 'nan/slot-a' });
    expect((error as Error).message).toMatch(/step 7.*nan\/slot-a \(step 4\)/);
    const loaded = await loadCheckpoint(storage, 'nan');
    expect(loaded.config.step).toBe(4);
    // The model in memory holds the weights of step 6 (the bad update was never applied): all finite.
    for (const w of model.getWeights()) expect(Number.isFinite(tf.sum(w.tensor).dataSync()[0])).toBe(true);
    tf.dispose([loaded.optimizerState.m, loaded.optimizerState.v]);
    loaded.model.dispose();
    loaded.ema.dispose();
    model.dispose();
    good.dispose();
  });

  it('a non-finite loss from the objective is NON_FINITE too, and the weights keep their last finite values', async () => {
    const model = newModel();
    const weightsAt: Record<string, Float32Array>[] = [];
    let error: unknown;
    try {
      await train(
        base({
          model,
          steps: 10,
          loss: ({ score, x0, step }) =>
            tf.tidy(() =>
              tf.mul(
                tf.mean(tf.square(score(x0, tf.fill([x0.shape[0]], 0.5) as tf.Tensor1D))),
                step === 3 ? Infinity : 1,
              ),
            ) as tf.Scalar,
          onProgress: () => weightsAt.push(snapshot(model.getWeights())),
        }),
      );
    } catch (e) {
      error = e;
    }
    expect(isSbmError(error, 'NON_FINITE')).toBe(true);
    expect((error as { details: { step: number } }).details.step).toBe(4);
    expect(weightsAt.length).toBe(3);
    expect(snapshot(model.getWeights())).toEqual(weightsAt[2]);
    model.dispose();
  });

  it('an AbortSignal ends training cleanly with a checkpoint of the last step', async () => {
    const storage = new MemoryStorage();
    const ctrl = new AbortController();
    const res = await train(
      base({
        steps: 1000,
        signal: ctrl.signal,
        checkpoint: { storage, location: 'abort', every: 100 },
        onProgress: (p) => {
          if (p.step === 7) ctrl.abort();
        },
      }),
    );
    expect(res.aborted).toBe(true);
    expect(res.step).toBe(7);
    const data = await readCheckpoint(storage, 'abort');
    expect(data.config.step).toBe(7);
    expect(snapshot(Object.entries(data.model).map(([name, tensor]) => ({ name, tensor })))).toEqual(
      snapshot(res.model.getWeights()),
    );
    tf.dispose([data.model, data.ema, data.optimizer.m, data.optimizer.v]);
    res.model.dispose();
    res.ema.dispose();
  });

  it("named losses: 'tutorial-dsm' is exactly twice 'dsm' on the same step (sum vs ½·sum); 'ssm' trains leak-free", async () => {
    const dsm = await train(base({ steps: 1 }));
    const tut = await train(base({ steps: 1, loss: 'tutorial-dsm' }));
    expect(tut.losses[0]).toBeCloseTo(2 * dsm.losses[0], 5);
    const counts: number[] = [];
    const ssm = await train(base({ steps: 5, loss: 'ssm', onProgress: () => counts.push(tf.memory().numTensors) }));
    expect(ssm.losses.every(Number.isFinite)).toBe(true);
    expect(counts.slice(1)).toEqual(counts.slice(1).map(() => counts[1]));
    for (const r of [dsm, tut, ssm]) {
      r.model.dispose();
      r.ema.dispose();
    }
  });

  it('loadCheckpoint rebuilds the model from its config with the trained and averaged weights', async () => {
    const storage = new MemoryStorage();
    const r = await train(base({ steps: 8, checkpoint: { storage, location: 'load' } }));
    const loaded = await loadCheckpoint(storage, 'load');
    expect(loaded.model.toConfig()).toEqual(r.model.toConfig());
    expect(snapshot(loaded.model.getWeights())).toEqual(snapshot(r.model.getWeights()));
    expect(snapshot(loaded.ema.getWeights())).toEqual(snapshot(r.ema.getWeights()));
    expect(loaded.ema.numUpdates).toBe(8);
    expect(loaded.optimizerState.step).toBe(8);
    expect(loaded.config.sde).toEqual(createSde('vp').toConfig());
    expect(loaded.config.next).toEqual(r.next);
    expect(modelFromConfig(loaded.config.model).name).toBe('mlp');
    tf.dispose([loaded.optimizerState.m, loaded.optimizerState.v]);
    for (const o of [loaded.model, loaded.ema, r.model, r.ema]) o.dispose();
    expect(existsSync(dir)).toBe(true);
  });
});
