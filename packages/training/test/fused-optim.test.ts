import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@sbm/backend-node';
import { FUSED_ADAM, FUSED_EMA, isSbmError } from '@sbm/core';
import { toy } from '@sbm/datasets';
import { MlpScoreModel } from '@sbm/models';
import { train, type TrainOptions, type TrainResult } from '@sbm/training';
import { MemoryStorage, nanFromStep6, smallVpRun, snapshot } from './helpers';

/**
 * The trainer on wasm with @sbm/wasm-kernels' fused Adam and EMA kernels (one kernel call each per step) against the
 * composite forms (the same run with those two kernels unregistered): the kernels round every operation to float32
 * in the composite's order, so whole runs agree bit for bit — weights, EMA, losses, gradient norms — also through
 * clipping (a tensor gradient scale), skipped non-finite steps (apply = false) and a checkpoint resume.
 */
const MLP = { name: 'mlp', inputDim: 2, hidden: [16, 16], embedding: { type: 'fourier', dim: 16, scale: 16 } } as const;
const newModel = (seed = 3) => new MlpScoreModel({ ...MLP, hidden: [...MLP.hidden] }, seed);

let previous: string;
let x: tf.Tensor2D;
const saved = new Map<string, tf.KernelConfig>();
beforeAll(async () => {
  previous = tf.getBackend();
  // One thread: the frugal choice on a 2-core machine; both paths run the same gradient kernels either way.
  await initBackend({ backend: 'wasm', wasmThreads: 1, log: false });
  for (const k of [FUSED_ADAM, FUSED_EMA]) {
    const config = tf.getKernel(k, 'wasm');
    if (config) saved.set(k, config);
  }
  x = toy('ring8', 512, 1);
});
afterEach(() => setFused(true));
afterAll(async () => {
  x.dispose();
  if (previous) await tf.setBackend(previous);
});

function setFused(on: boolean): void {
  for (const [k, config] of saved) {
    const registered = tf.getKernel(k, 'wasm') !== undefined;
    if (on && !registered) tf.registerKernel(config);
    if (!on && registered) tf.unregisterKernel(k, 'wasm');
  }
}

function base(extra: Partial<TrainOptions> = {}): TrainOptions {
  const { model, ...rest } = extra;
  return smallVpRun(model ?? newModel(), x, rest);
}

const bits = (w: Record<string, Float32Array>): Record<string, number[]> =>
  Object.fromEntries(
    Object.entries(w).map(([k, v]) => [k, Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length))]),
  );

async function run(fused: boolean, opts: Partial<TrainOptions>) {
  setFused(fused);
  const norms: number[] = [];
  const res: TrainResult = await train({ ...base(opts), onProgress: (p) => norms.push(p.gradNorm) });
  const out = {
    losses: res.losses,
    norms,
    weights: bits(snapshot(res.model.getWeights())),
    ema: bits(snapshot(res.ema.getWeights())),
  };
  res.model.dispose();
  res.ema.dispose();
  return out;
}

describe('fused Adam + EMA on wasm (SbmAdam, SbmEma) == the composite forms', () => {
  it('the kernels are registered on wasm (else this file would test nothing)', () => {
    expect([...saved.keys()].sort()).toEqual([FUSED_ADAM, FUSED_EMA].sort());
  });

  it('12 steps without clipping (gradScale 1) and 12 with clipping engaged (a tensor scale): bit for bit', async () => {
    for (const gradClip of [null, 0.05]) {
      const before = tf.memory().numTensors;
      const fused = await run(true, { steps: 12, gradClip });
      const composite = await run(false, { steps: 12, gradClip });
      expect(tf.memory().numTensors).toBe(before);
      // Clipping is engaged when it should be (else the tensor-scale path would not be exercised).
      if (gradClip !== null) expect(fused.norms.every((n) => n > gradClip)).toBe(true);
      expect(fused.losses).toEqual(composite.losses);
      expect(fused.norms).toEqual(composite.norms);
      expect(fused.weights).toEqual(composite.weights);
      expect(fused.ema).toEqual(composite.ema);
    }
  });

  it('NaN data: the skipped updates (apply = false) keep the weights of the last finite step, as the composite does', async () => {
    const good = toy('ring8', 64, 2);
    // Batches are clean up to step 6 (0-based), then contain a NaN.
    const source = nanFromStep6(good);
    const weightsAfter: Record<string, number[]>[] = [];
    for (const fused of [true, false]) {
      setFused(fused);
      const model = newModel();
      const before = tf.memory().numTensors;
      let error: unknown;
      try {
        await train(base({ model, data: source, steps: 20 }));
      } catch (e) {
        error = e;
      }
      expect(isSbmError(error, 'NON_FINITE')).toBe(true);
      // The failure path frees everything the trainer made (Adam moments, EMA, the kernels' outputs).
      expect(tf.memory().numTensors).toBe(before);
      weightsAfter.push(bits(snapshot(model.getWeights())));
      model.dispose();
    }
    // The clean 6-step run's weights: what the guarded updates after the bad step must leave untouched.
    const clean = await run(true, { data: source, steps: 6 });
    expect(weightsAfter[0]).toEqual(weightsAfter[1]);
    expect(weightsAfter[0]).toEqual(clean.weights);
    good.dispose();
  });

  it('resumes exactly on the fused path: 10 steps + resume to 20 == 20 composite steps, bit for bit', async () => {
    const composite = await run(false, { steps: 20 });
    setFused(true);
    const storage = new MemoryStorage();
    const a = await train(base({ steps: 10, checkpoint: { storage, location: 'run', every: 5 } }));
    a.model.dispose();
    a.ema.dispose();
    const b = await train(
      base({ model: newModel(99), steps: 20, resume: true, checkpoint: { storage, location: 'run', every: 5 } }),
    );
    expect(b.firstStep).toBe(10);
    expect([...a.losses, ...b.losses]).toEqual(composite.losses);
    expect(bits(snapshot(b.model.getWeights()))).toEqual(composite.weights);
    expect(bits(snapshot(b.ema.getWeights()))).toEqual(composite.ema);
    b.model.dispose();
    b.ema.dispose();
  });
});
