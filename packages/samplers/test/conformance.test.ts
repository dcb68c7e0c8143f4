import { it } from 'vitest';
import { describeWithBackends } from '@sbm/test-harness';
import { VeSde, VpSde } from '@sbm/sde';
import { samplerConformance, type SamplerConformanceOptions } from '@sbm/samplers/testing';

// Every built-in sampler through the conformance suite of @sbm/samplers/testing. The cheap cases (batch 16) run on
// every backend; the statistical case (n = 1000 against exact mixture2d draws) on wasm only, where the oracle score
// costs ≈ 4 ms per call at n = 1000 against ≈ 28 ms on cpu. The oracle test covers the four SDEs at full step counts;
// here the step counts are the smallest at which each sampler's bias is below the n = 1000 noise floor. The cheap
// samplers average 4 sample sets (the suite's default); the costly ones (500–1000 NFE at n = 1000) use one set, whose
// own luck alone reaches 1.25 × floor (the probability-flow ODE, an exact sampler, at seed 7), hence 1.5 × for them.
const one = { seeds: [7], swdFactor: 1.5 };
const vp = new VpSde();
const ve = new VeSde();
const suites: { name: string; opts: SamplerConformanceOptions }[] = [
  { name: 'pc', opts: { sde: vp, options: { steps: 500 }, ...one } },
  { name: 'em', opts: { sde: vp, options: { steps: 500 }, ...one } },
  { name: 'ode', opts: { sde: vp } },
  { name: 'dpm-solver', opts: { sde: vp, options: { steps: 20 }, swdFactor: 1.5, nfe: 20 } },
  { name: 'heun', opts: { sde: vp, options: { steps: 18 }, swdFactor: 1.5, nfe: 35 } },
  // The sampler suite of issue 13: deterministic solvers at 20 NFE, stochastic ones at 100 steps (the ancestral
  // noise makes them first order in the weak sense, like EM).
  { name: 'euler', opts: { sde: vp, options: { steps: 50 }, swdFactor: 1.5, nfe: 50 } },
  { name: 'euler-ancestral', opts: { sde: vp, options: { steps: 100 }, swdFactor: 1.5, nfe: 100 } },
  { name: 'dpm2', opts: { sde: vp, options: { steps: 10 }, swdFactor: 1.5 } },
  { name: 'dpm2-ancestral', opts: { sde: vp, options: { steps: 50 }, swdFactor: 1.5 } },
  { name: 'lms', opts: { sde: vp, options: { steps: 20 }, swdFactor: 1.5, nfe: 20 } },
  { name: 'dpmpp-3m', opts: { sde: vp, options: { steps: 20 }, swdFactor: 1.5, nfe: 20 } },
  { name: 'dpmpp-2s-ancestral', opts: { sde: vp, options: { steps: 50 }, swdFactor: 1.5 } },
  { name: 'dpmpp-sde', opts: { sde: vp, options: { steps: 50 }, swdFactor: 1.5 } },
  { name: 'dpmpp-2m-sde', opts: { sde: vp, options: { steps: 100 }, swdFactor: 1.5, nfe: 100 } },
  { name: 'dpmpp-3m-sde', opts: { sde: vp, options: { steps: 100 }, swdFactor: 1.5, nfe: 100 } },
  { name: 'dpm-fast', opts: { sde: vp, options: { steps: 20 }, swdFactor: 1.5 } },
  { name: 'dpm-adaptive', opts: { sde: vp, swdFactor: 1.5 } },
  { name: 'unipc', opts: { sde: vp, options: { steps: 20 }, swdFactor: 1.5, nfe: 20 } },
  { name: 'ddim', opts: { sde: vp, options: { steps: 100, eta: 1 }, swdFactor: 1.5, nfe: 100 } },
  {
    name: 'ald',
    opts: {
      sde: ve,
      ...one,
      options: { sigmaMax: 10, sigmaMin: 0.01, levels: 100, stepsPerLevel: 10, stepRule: 'ncsnv2' },
    },
  },
  {
    name: 'langevin',
    opts: {
      sde: ve,
      ...one,
      options: { sigma: 1, steps: 1000, initStd: 3 },
      target: (mix, sde) => mix.atTime(sde, sde.tFromEdmSigma(1)),
    },
  },
];

describeWithBackends(
  'samplers conformance (@sbm/samplers/testing)',
  ({ backend }) => {
    for (const s of suites) {
      for (const c of samplerConformance(s.name, { ...s.opts, statistics: backend === 'wasm' })) {
        it(c.name, c.run, 120_000);
      }
    }
  },
  { backends: ['cpu', 'wasm'] },
);
