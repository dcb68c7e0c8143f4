import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { createSde } from '@sbm/sde';
import { GaussianMixture } from '@sbm/gaussian-mixture';
import { describeWithBackends } from '@sbm/test-harness';
import { logLikelihood } from '@sbm/likelihood';

// Node WebGPU (Dawn on SwiftShader) has no synchronous readback: the likelihood must read only with `await data()`.
describeWithBackends(
  'logLikelihood on WebGPU',
  () => {
    it('single Gaussian, VP, exact trace, D = 2: within 0.005 nats/dim of −log p_eps, no leaks', async () => {
      const g = new GaussianMixture({
        weights: [1],
        means: [[0.3, -0.2]],
        covariances: [
          [
            [0.5, 0.2],
            [0.2, 0.7],
          ],
        ],
      });
      const sde = createSde('vp');
      const oracle = g.perturbed(sde);
      // Fixed points (GaussianMixture.sample reads back synchronously).
      const x = tf.tensor2d([
        [0.1, 0.2],
        [-0.5, 0.4],
        [1.0, -0.3],
      ]);
      const before = tf.memory().numTensors;
      const r = await logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact' });
      expect(tf.memory().numTensors).toBe(before);
      const lp = oracle.logProb(x, 1e-5);
      const exact = Array.from(await lp.data());
      // RK45 at rtol = atol = 1e-5 (as the cpu/wasm suite): the error is far below 0.005 nats per dimension.
      for (let b = 0; b < 3; b++) expect(Math.abs(r.nll[b] + exact[b]) / 2).toBeLessThan(0.005);
      tf.dispose([x, lp]);
    });
  },
  { backends: ['webgpu'] },
);
