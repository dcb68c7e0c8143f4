import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSED_GROUP_NORM, FUSED_GROUP_NORM_GRAD } from '@sbm/core';
import { ScoreNet, type ScoreNetConfig } from '@sbm/models';
import { registerWasmTrainingKernels } from '@sbm/wasm-kernels';

// Training through the fused GroupNorm + swish kernels on wasm (@sbm/wasm-kernels): the same gradients as the
// composite form, and a deterministic step, which is what @sbm/training's bit-for-bit resume relies on.

// A small tutorial ScoreNet (group counts 4/32/32/32 need multiples of 32 channels; 22 is the smallest image size).
const CONFIG: ScoreNetConfig = {
  name: 'scorenet',
  imageSize: 22,
  channels: [32, 32, 32, 32],
  embedDim: 32,
  marginalProbStd: { name: 'tutorial-ve', sigma: 25 },
};
const B = 4;
const SIGMA = 25;

function uniform(n: number, seed: number): Float32Array {
  // mulberry32: data independent of any backend's RNG.
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  return out;
}

/** The tutorial DSM loss of one fixed batch: mean over the batch of Σ (s(x + σ(t) z, t)·σ(t) + z)². */
function batch(step: number) {
  const shape = [B, 22, 22, 1];
  const n = B * 22 * 22;
  const x = tf.tensor4d(uniform(n, 100 + step), shape as [number, number, number, number]);
  const z = tf.tensor4d(
    uniform(n, 200 + step).map((u) => 2 * u - 1),
    shape as [number, number, number, number],
  );
  const t = tf.tensor1d(uniform(B, 300 + step).map((u) => 1e-3 + (1 - 1e-3) * u));
  return { x, z, t };
}

function lossOf(model: ScoreNet, step: number): tf.Scalar {
  return tf.tidy(() => {
    const { x, z, t } = batch(step);
    // σ(t) = √((σ^(2t) − 1) / (2 ln σ)), the tutorial VE marginal std.
    const std = tf.sqrt(tf.div(tf.sub(tf.pow(SIGMA, tf.mul(2, t)), 1), 2 * Math.log(SIGMA)));
    const s4 = tf.reshape(std, [B, 1, 1, 1]);
    const score = model.apply(tf.add(x, tf.mul(z, s4)), t);
    return tf.mean(tf.sum(tf.square(tf.add(tf.mul(score, s4), z)), [1, 2, 3])) as tf.Scalar;
  });
}

/** `steps` Adam steps; the losses, the first step's gradients and the final weights. */
async function run(steps: number) {
  const model = new ScoreNet(CONFIG, 7);
  const trainable = model.getWeights().filter((w) => (w.tensor as tf.Variable).trainable);
  const vars = trainable.map((w) => w.tensor as tf.Variable);
  const opt = tf.train.adam(1e-3);
  const losses: number[] = [];
  let firstGrads: Float32Array[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      const { value, grads } = tf.variableGrads(() => lossOf(model, s), vars);
      if (s === 0) firstGrads = await Promise.all(vars.map(async (v) => Float32Array.from(await grads[v.name].data())));
      losses.push((await value.data())[0]);
      opt.applyGradients(grads as unknown as Parameters<typeof opt.applyGradients>[0]);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const weights = await Promise.all(vars.map(async (v) => Float32Array.from(await v.data())));
    return { losses, firstGrads, weights, names: trainable.map((w) => w.name) };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});
afterAll(() => {
  registerWasmTrainingKernels();
});

describe('ScoreNet training through the fused group norm on wasm', () => {
  it('runs the fused kernels, matches the composite gradients and losses, and repeats bit for bit', async () => {
    const before = tf.memory().numTensors;
    const prof = await tf.profile(() => {
      const model = new ScoreNet(CONFIG, 7);
      const vars = model
        .getWeights()
        .map((w) => w.tensor as tf.Variable)
        .filter((v) => v.trainable);
      const { value, grads } = tf.variableGrads(() => lossOf(model, 0), vars);
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
      return tf.scalar(0);
    });
    (prof.result as tf.Tensor).dispose();
    const names = prof.kernels.map((k) => k.name);
    // Seven norm + swish layers: seven fused forwards, seven fused backwards, no composite statistics.
    expect(names.filter((n) => n === FUSED_GROUP_NORM).length).toBe(7);
    expect(names.filter((n) => n === FUSED_GROUP_NORM_GRAD).length).toBe(7);
    // (tf.moments' SquaredDifference and the Rsqrt are the composite norm's; Sigmoid stays for the time embedding.)
    for (const n of ['SquaredDifference', 'Rsqrt']) expect(names).not.toContain(n);

    const steps = 3;
    const fused = await run(steps);
    const again = await run(steps);
    // Same inputs, same kernels: identical to the bit (the trainer's exact resume needs nothing more of a kernel).
    expect(again.losses).toEqual(fused.losses);
    for (let i = 0; i < fused.weights.length; i++) expect(again.weights[i]).toEqual(fused.weights[i]);

    // The composite form on the same backend: without the backward kernel groupNorm falls back under a tape.
    tf.unregisterKernel(FUSED_GROUP_NORM_GRAD, 'wasm');
    let composite: Awaited<ReturnType<typeof run>>;
    try {
      composite = await run(steps);
    } finally {
      registerWasmTrainingKernels();
    }
    // Every parameter gradient of the first step within 1e-4 of the tensor's largest entry (float32 sums over
    // ≤ 4·20·20 terms per group: errors of order 1e-6 relative). Gradients that vanish identically — the Dense(embed)
    // bias of a norm whose groups hold one channel each (32 groups of 32 channels), everything at the 1×1 level —
    // are rounding noise in both forms (≤ 1e-3 here against entries of ~10²); they are held to 1e-4 of the largest
    // gradient of the model instead.
    const scale = Math.max(...composite.firstGrads.map(maxAbs));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < fused.firstGrads.length; i++) {
      const ref = composite.firstGrads[i];
      const own = maxAbs(ref);
      const err = maxDiff(fused.firstGrads[i], ref) / (own > 1e-6 * scale ? own : scale);
      expect(err, fused.names[i]).toBeLessThanOrEqual(1e-4);
    }
    // The losses of all steps within 1e-4 relative (Adam's steps from gradients that agree that closely differ by
    // ≪ lr; the weights behind the vanishing gradients move differently but do not reach the loss).
    for (let s = 0; s < steps; s++) {
      expect(Math.abs(fused.losses[s] - composite.losses[s]) / composite.losses[s]).toBeLessThanOrEqual(1e-4);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
