import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@sbm/backend-node';
import { createSde } from '@sbm/sde';
import { MlpScoreModel, createScoreFn } from '@sbm/models';
import { toy } from '@sbm/datasets';
import { sample } from '@sbm/samplers';
import { slicedWasserstein } from '@sbm/metrics';
import { train } from '@sbm/training';

/**
 * End-to-end check on wasm: train the MLP on the swiss roll for a reduced budget, sample with reverse diffusion
 * from the EMA weights and compare with fresh data by the sliced Wasserstein distance (256 projections). The noise
 * floor is the distance between two independent data sets of the same size N (it shrinks like 1/√N); a perfect
 * model sits at the floor. Measured on the 2-core dev machine (wasm, 2 threads, seeds as below):
 *   300 steps (≈ 35 s of training):  swd 0.114, floor 0.054 → 2.12 × floor   (this test: bound 3×)
 *  1000 steps (≈ 78 s of training):  swd 0.073, floor 0.054 → 1.35 × floor   (the issue's ≤ 2× in a ≤ 2-min run)
 * Same seed + backend ⇒ same numbers, so the bound is not a statistical tolerance but a margin for other thread
 * counts / backends changing the last bits. SBM_SWISS_STEPS / SBM_SWISS_BOUND reproduce the longer run.
 */
const STEPS = Number(process.env.SBM_SWISS_STEPS ?? 300);
const BOUND = Number(process.env.SBM_SWISS_BOUND ?? 3);
const N = 1000;
const BATCH = 512;
const LR = 5e-3;

let previous: string;
beforeAll(async () => {
  previous = tf.getBackend();
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(async () => {
  if (previous) await tf.setBackend(previous);
});

describe('swiss roll on wasm', () => {
  it(`a ${STEPS}-step MLP run samples within ${BOUND}× the sliced-Wasserstein noise floor`, async () => {
    const before = tf.memory().numTensors;
    const x = toy('swiss-roll', 10_000, 0);
    const sde = createSde('vp');
    // cond = t ∈ [0, 1] and the output divided by the VP std (the tutorial's form): Fourier features of t at scale
    // 16 resolve the time axis, whereas the noise-time label 999·t would alias them.
    const model = new MlpScoreModel({ name: 'mlp', inputDim: 2, marginalProbStd: sde.toConfig() }, 1);
    const t0 = Date.now();
    const res = await train({
      model,
      sde,
      data: x,
      steps: STEPS,
      batchSize: BATCH,
      lr: LR,
      warmup: 50,
      ema: { decay: 0.99 },
      seed: 3,
    });
    const trainMs = Date.now() - t0;
    res.ema.copyTo(model);
    // Reverse-diffusion predictor, no corrector, 200 steps: cheap and accurate enough at this sample size.
    const { samples } = await sample({
      sampler: 'pc',
      corrector: 'none',
      steps: 200,
      sde,
      score: createScoreFn(model, sde),
      shape: [N, 2],
      seed: 9,
    });
    const truth = toy('swiss-roll', N, 101);
    const swd = slicedWasserstein(samples, truth, { projections: 256, seed: 5 });
    // Floor: average over three independent reference sets, so one lucky draw does not set the bar.
    let floor = 0;
    for (const s of [102, 103, 104]) {
      const other = toy('swiss-roll', N, s);
      floor += slicedWasserstein(other, truth, { projections: 256, seed: 5 }) / 3;
      other.dispose();
    }
    console.log(
      `swiss-roll: ${STEPS} steps in ${trainMs} ms, swd ${swd.toFixed(4)}, floor ${floor.toFixed(4)}, ratio ${(swd / floor).toFixed(2)}`,
    );
    expect(swd).toBeLessThan(BOUND * floor);
    tf.dispose([x, samples, truth]);
    res.ema.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);
});
