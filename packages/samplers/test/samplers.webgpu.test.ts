// PC, the probability-flow ODE, DPM-Solver++, UniPC and Euler ancestral on Node WebGPU (Dawn on SwiftShader; `npm run test:webgpu`). Dawn in
// Node has no synchronous readback, so this passes only if nothing on these samplers' paths calls dataSync /
// arraySync: the samplers' NaN checks are FiniteWatch / checkFiniteAsync, and this test reads with `await data()`.
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { describeWithBackends } from '@sbm/test-harness';
import { sample, VpSde, type SampleOptions, type ScoreFn } from '@sbm/samplers';

// Data N(μ, s²) per coordinate: p_t = N(α μ, α² s² + σ²) under the VP SDE, score −(x − α μ)/(α² s² + σ²).
const MU = 0.3;
const S = 0.5;
const sde = new VpSde();
const score: ScoreFn = (x, t) =>
  tf.tidy(() => {
    const a = sde.alphaT(t).reshape([-1, 1]);
    const sd = sde.stdT(t).reshape([-1, 1]);
    return tf.neg(tf.div(tf.sub(x, tf.mul(a, MU)), tf.add(tf.mul(tf.square(a), S * S), tf.square(sd))));
  });

// n = 512 values (256 × 2): the mean's standard error is s/√n = 0.022, the std's ≈ s/√(2n) = 0.016; 4 SE each.
const SHAPE = [256, 2];
const n = SHAPE[0] * SHAPE[1];
const cases: { label: string; opts: Partial<SampleOptions> }[] = [
  { label: 'pc (reverse diffusion + Langevin), 100 steps', opts: { sampler: 'pc', steps: 100 } },
  { label: 'probability-flow ODE, RK45', opts: { sampler: 'ode' } },
  { label: 'DPM-Solver++(2M), 20 steps', opts: { sampler: 'dpm-solver', steps: 20 } },
  { label: 'UniPC, 20 steps', opts: { sampler: 'unipc', steps: 20 } },
  { label: 'Euler ancestral, 100 steps', opts: { sampler: 'euler-ancestral', steps: 100 } },
];

describeWithBackends(
  'samplers on Node WebGPU',
  () => {
    for (const c of cases) {
      it(`${c.label}: the Gaussian's mean and std within 4 SE, no leaks`, async () => {
        const before = countTensors();
        const { samples, stats } = await sample({ ...c.opts, sde, score, shape: SHAPE, seed: 3 } as SampleOptions);
        const v = Array.from(await samples.data());
        samples.dispose();
        expect(countTensors()).toBe(before);
        const m = v.reduce((a, b) => a + b, 0) / n;
        const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
        console.log(`[webgpu] ${c.label}: mean ${m.toFixed(4)} std ${sd.toFixed(4)} nfe ${stats.nfe}`);
        expect(Math.abs(m - MU)).toBeLessThan(4 * (S / Math.sqrt(n)));
        expect(Math.abs(sd - S)).toBeLessThan(4 * (S / Math.sqrt(2 * n)));
      }, 300_000);
    }
  },
  { backends: ['webgpu'] },
);
