import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { createSde } from '@sbm/sde';
import { MlpScoreModel } from '@sbm/models';
import { describeWithBackends } from '@sbm/test-harness';
import { loadCheckpoint, train } from '@sbm/training';
import { MemoryStorage } from './helpers';

// Node WebGPU (Dawn on SwiftShader) has no synchronous readback: a run that reads anything with dataSync fails here.
describeWithBackends(
  'train on WebGPU',
  () => {
    it('a tiny MLP trains 6 steps with a checkpoint every 3, reads only asynchronously and leaks nothing', async () => {
      const model = new MlpScoreModel(
        { name: 'mlp', inputDim: 2, hidden: [8], embedding: { type: 'fourier', dim: 8, scale: 16 } },
        3,
      );
      const data = tf.randomNormal([64, 2], 0, 1, 'float32', 5);
      const storage = new MemoryStorage();
      const before = tf.memory().numTensors;
      const steps: number[] = [];
      const res = await train({
        model,
        sde: createSde('vp'),
        data,
        steps: 6,
        batchSize: 16,
        lr: 1e-3,
        warmup: 2,
        seed: 1,
        nanCheckEvery: 4,
        progressEvery: 2,
        checkpoint: { storage, location: 'gpu', every: 3 },
        onProgress: (p) => steps.push(p.step),
      });
      expect(res.step).toBe(6);
      expect(steps).toEqual([2, 4, 6]);
      // With s ≡ 0 the default DSM loss is ½E‖z‖² = D/2 = 1; 6 small steps stay near it (per-step sd ≈ 0.25 for B = 16).
      expect(res.losses).toHaveLength(6);
      for (const l of res.losses) expect(l).toBeGreaterThan(0);
      for (const l of res.losses) expect(l).toBeLessThan(3);
      res.ema.dispose();
      expect(tf.memory().numTensors).toBe(before);
      const loaded = await loadCheckpoint(storage, 'gpu');
      expect(loaded.config.step).toBe(6);
      tf.dispose([loaded.optimizerState.m, loaded.optimizerState.v]);
      loaded.model.dispose();
      loaded.ema.dispose();
      model.dispose();
      data.dispose();
    });
  },
  { backends: ['webgpu'] },
);
