import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors } from '@sbm/core';
import { mixture2d } from '@sbm/gaussian-mixture';
import { describeWithBackends } from '@sbm/test-harness';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, type Sde } from '@sbm/sde';
import { sample, type SampleOptions } from '@sbm/samplers';
import { floorOf, meanSwd, mixtureOracle, mixtureSwd, momentErrors } from './helpers';

// Oracle tests: the exact score of a 2-D five-component Gaussian mixture under each SDE (@sbm/gaussian-mixture) drives
// every sampler; samples are judged by sliced W2 against true draws and by their moments. n = 1000 with seed 7 for
// every sampler. These run on wasm only: the oracle's broadcasting kernels cost ≈ 28 ms per score call on the cpu
// backend at n = 1000 against ≈ 4 ms on wasm, and EM/PC need 1000–2000 calls.
const N = 1000;
const mix = mixture2d();

describeWithBackends(
  'samplers on the mixture2d oracle',
  () => {
    const oracle = mixtureOracle(mix, N);

    const sdes: Sde[] = [new VeSde(), new VpSde(), new SubVpSde(), new TutorialVeSde()];
    // One sample set's own luck moves its distance as much as the refs' does (at n = 1000 a set whose mean is 2 SE off
    // sits at ≈ 1.25 × floor), so where it is cheap (ODE, DPM-Solver: ≤ 100 NFE) the distance is averaged over 4
    // sample sets (seeds 7–10); EM and PC (1000–2000 NFE) use one set (seed 7).
    const cases: { label: string; opts: Partial<SampleOptions>; factor: number; nfe?: number; seeds: number[] }[] = [
      { label: 'EM, 1000 steps', opts: { sampler: 'em', steps: 1000 }, factor: 1.2, nfe: 1000, seeds: [7] },
      {
        label: 'PC (reverse diffusion + Langevin, snr 0.16), 1000 steps',
        opts: { sampler: 'pc', steps: 1000 },
        factor: 1.2,
        nfe: 2000,
        seeds: [7],
      },
      { label: 'probability-flow ODE, RK45 1e-5', opts: { sampler: 'ode' }, factor: 1.2, seeds: [7, 8, 9, 10] },
      {
        label: 'DPM-Solver++(2M), 20 NFE',
        opts: { sampler: 'dpm-solver', steps: 20 },
        factor: 1.5,
        nfe: 20,
        seeds: [7, 8, 9, 10],
      },
    ];
    for (const sde of sdes) {
      for (const c of cases) {
        it(`${sde.name}: ${c.label} reaches sliced W2 ≤ ${c.factor} × floor and the true moments`, async () => {
          // Moments within 4 standard errors (derived from n in momentErrors).
          const d = await mixtureSwd(oracle, sde, c.opts, c.seeds, { nfe: c.nfe });
          const { floor } = oracle;
          console.log(
            `[oracle] ${sde.name} ${c.label}: swd ${d.toFixed(4)} floor ${floor.toFixed(4)} ratio ${(d / floor).toFixed(3)}`,
          );
          expect(d).toBeLessThanOrEqual(c.factor * floor);
        });
      }
    }
  },
  { backends: ['wasm'] },
);

describeWithBackends(
  'Langevin samplers on the mixture2d oracle (VE score used through σ ↦ t)',
  () => {
    const sde = new VeSde();
    const score = mix.perturbed(sde).scoreFn;
    // NCSN's rule leaves a known excess variance (its last levels take steps α_i far below the component variances, so
    // the noise of the coarser levels is never removed — the failure NCSNv2 Technique 4 fixes): measured 1.09 and
    // 1.34 × floor against two independent reference draws, so it is held to 1.5 × floor; NCSNv2 and plain
    // Langevin to 1.2 ×.
    const cases: { label: string; opts: Record<string, unknown>; sigma?: number; factor?: number }[] = [
      // NCSN (Song & Ermon 2019) settings except σ_1 = 10 ≈ the mixture's largest pairwise distance (NCSNv2's rule):
      // L = 10 geometric levels 10 → 0.01, T = 100 steps per level, ε = 2e-5. 1000 NFE.
      {
        label: 'annealed Langevin, NCSN rule (L 10, T 100, ε 2e-5)',
        opts: { sampler: 'ald', sigmaMax: 10, sigmaMin: 0.01, levels: 10, stepsPerLevel: 100, stepSize: 2e-5 },
        factor: 1.5,
      },
      // NCSNv2 (Song & Ermon 2020): many close levels (γ = 1.072), few steps each, ε from Technique 4, final denoise.
      {
        label: 'annealed Langevin, NCSNv2 rule (L 100, T 10, Technique-4 ε, denoise)',
        opts: { sampler: 'ald', sigmaMax: 10, sigmaMin: 0.01, levels: 100, stepsPerLevel: 10, stepRule: 'ncsnv2' },
      },
      // Plain Langevin targets p_σ at its fixed σ = 1 (the mixture convolved with N(0, I)); step 2 (snr σ)² = 0.0512.
      {
        label: 'plain Langevin at σ = 1 (ε = 2 (0.16 σ)², 1000 steps)',
        opts: { sampler: 'langevin', sigma: 1, steps: 1000, initStd: 3 },
        sigma: 1,
      },
    ];
    for (const c of cases) {
      it(`${c.label} reproduces the target within ${c.factor ?? 1.2} × floor`, async () => {
        // Target: the mixture itself, or p_σ = the VE marginal at σ(t) = σ for plain Langevin.
        const t = c.sigma === undefined ? undefined : sde.tFromEdmSigma(c.sigma);
        const target = t === undefined ? mix : mix.perturbed(sde).atTime(t);
        const before = countTensors();
        const refs = [0, 1, 2, 3].map((i) => target.sample(N, 3000 + i));
        const floor = floorOf(refs);
        const { samples } = await sample({ ...c.opts, sde, score, shape: [N, 2], seed: 7 } as SampleOptions);
        const d = meanSwd(samples, refs);
        const { meanZ, covZ } = momentErrors(samples, target.mean(), target.covariance());
        samples.dispose();
        tf.dispose(refs);
        expect(countTensors()).toBe(before);
        console.log(
          `[oracle] ve ${c.label}: swd ${d.toFixed(4)} floor ${floor.toFixed(4)} ratio ${(d / floor).toFixed(3)}`,
        );
        expect(d).toBeLessThanOrEqual((c.factor ?? 1.2) * floor);
        expect(meanZ).toBeLessThan(4);
        expect(covZ).toBeLessThan(4);
      });
    }
  },
  { backends: ['wasm'] },
);
