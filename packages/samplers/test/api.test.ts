import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { countTensors, isSbmError, withLeakCheck } from '@sbm/core';
import { describeWithBackends } from '@sbm/test-harness';
import { createSde, TutorialVeSde, VeSde, VpSde, SubVpSde, type ScoreFn, type Sde } from '@sbm/sde';
import { registerCosineVp } from '@sbm/sde-cosine';
import {
  DEFAULT_SAMPLER,
  dpmSolverGrid,
  edmSigmas,
  geometricSigmas,
  listCorrectors,
  listPredictors,
  listSamplers,
  ncsnv2StepSize,
  registerPredictor,
  sample,
  unregisterPredictor,
  type SampleOptions,
} from '@sbm/samplers';

// Cheap closed-form target for the API tests: data N(μ, s²) per coordinate, so p_t = N(α μ, α² s² + σ²) under any
// affine SDE and the score is −(x − α μ)/(α² s² + σ²).
// μ is small next to the VE priors' std (50; 9.85 for the tutorial VE), whose mean-zero prior otherwise leaves a bias
// of μ·s/σ_prior in the deterministic samplers that is the SDE's, not the sampler's.
const MU = 0.3;
const S = 0.5;
function gaussScore(sde: Sde): ScoreFn {
  return (x, t) =>
    tf.tidy(() => {
      const a = sde.alphaT(t).reshape([-1, ...new Array(x.rank - 1).fill(1)]);
      const sd = sde.stdT(t).reshape([-1, ...new Array(x.rank - 1).fill(1)]);
      return tf.neg(tf.div(tf.sub(x, tf.mul(a, MU)), tf.add(tf.mul(tf.square(a), S * S), tf.square(sd))));
    });
}
async function moments(x: tf.Tensor): Promise<{ mean: number; std: number }> {
  const v = Array.from(await x.data());
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean: m, std: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) };
}

describeWithBackends('samplers: API, validation, determinism, leaks', () => {
  const sde = new VpSde();
  const score = gaussScore(sde);
  const base = { sde, score, shape: [64, 3], seed: 11 };

  it('registries list the built-ins', () => {
    expect(listSamplers()).toEqual(
      expect.arrayContaining(['pc', 'em', 'ode', 'dpm-solver', 'heun', 'ald', 'langevin']),
    );
    expect(listPredictors()).toEqual(
      expect.arrayContaining(['euler-maruyama', 'reverse-diffusion', 'ancestral', 'none']),
    );
    expect(listCorrectors()).toEqual(expect.arrayContaining(['langevin', 'ald', 'none']));
  });

  it('without a sampler name sample() runs DEFAULT_SAMPLER (dpmpp-3m-sde, 20 NFE: the best measured at 20 NFE)', async () => {
    expect(DEFAULT_SAMPLER).toBe('dpmpp-3m-sde');
    const r = await withLeakCheck(() => sample({ ...base }));
    expect(r.stats.sampler).toBe('dpmpp-3m-sde');
    expect(r.stats.nfe).toBe(20);
    expect(r.stats.schedule).toBe('logsnr-uniform');
    r.samples.dispose();
  });

  it('same seed ⇒ same samples; another seed ⇒ different ones; nothing leaks', async () => {
    const run = (seed: number) => sample({ ...base, sampler: 'pc', steps: 40, seed });
    const a = await withLeakCheck(() => run(1));
    const b = await run(1);
    const c = await run(2);
    expect(await a.samples.data()).toEqual(await b.samples.data());
    expect(await a.samples.data()).not.toEqual(await c.samples.data());
    tf.dispose([a.samples, b.samples, c.samples]);
  });

  it('reports progress per step, streams the trajectory and counts NFE', async () => {
    const steps: number[] = [];
    const traj: number[] = [];
    const r = await sample({
      ...base,
      sampler: 'pc',
      steps: 30,
      correctorSteps: 2,
      onProgress: (p) => steps.push(p.step),
      onTrajectory: (p) => {
        expect(p.x.shape).toEqual([64, 3]);
        traj.push(p.t);
      },
      trajectoryEvery: 5,
    });
    expect(steps).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(traj.length).toBe(6);
    expect(traj[5]).toBeCloseTo(sde.samplingEps, 12);
    expect(r.stats.nfe).toBe(90);
    r.samples.dispose();
  });

  it('an AbortSignal stops every sampler with ABORTED and frees its tensors', async () => {
    const names: Partial<SampleOptions>[] = [
      { sampler: 'pc', steps: 50 },
      { sampler: 'em', steps: 50 },
      { sampler: 'ode' },
      { sampler: 'ode', method: 'rk4', steps: 50 },
      { sampler: 'dpm-solver', steps: 20 },
      { sampler: 'heun', steps: 18 },
      { sampler: 'ald', stepsPerLevel: 10, sde: new VeSde() } as never,
      { sampler: 'langevin', sigma: 0.5, steps: 50 } as never,
    ];
    for (const o of names) {
      const ac = new AbortController();
      const before = countTensors();
      const p = sample({
        ...base,
        ...o,
        signal: ac.signal,
        onProgress: (q) => {
          if (q.step === 3) ac.abort('test');
        },
      } as SampleOptions);
      await expect(p, String(o.sampler)).rejects.toSatisfy((e) => isSbmError(e, 'ABORTED'));
      expect(countTensors(), String(o.sampler)).toBe(before);
    }
  });

  it('rejects bad input with SbmErrors naming the argument', async () => {
    const bad = async (o: Record<string, unknown>, code: string, arg?: string) => {
      const before = countTensors();
      await expect(sample({ sampler: 'pc', ...base, ...o } as SampleOptions)).rejects.toSatisfy(
        (e) => isSbmError(e) && e.code === code && (arg === undefined || e.message.includes(arg)),
      );
      expect(countTensors()).toBe(before);
    };
    await bad({ sampler: 'nope' }, 'UNKNOWN_NAME', 'sampler');
    await bad({ predictor: 'nope' }, 'UNKNOWN_NAME', 'predictor');
    await bad({ corrector: 'nope' }, 'UNKNOWN_NAME', 'corrector');
    await bad({ eps: 0 }, 'INVALID_ARGUMENT', 'eps');
    await bad({ sampler: 'pc', denoiseToZero: 'yes' }, 'INVALID_ARGUMENT', 'denoiseToZero');
    await bad({ sampler: 'em', denoiseToZero: 1 }, 'INVALID_ARGUMENT', 'denoiseToZero');
    await bad({ eps: 1 }, 'INVALID_ARGUMENT', 'eps');
    await bad({ steps: 0 }, 'INVALID_ARGUMENT', 'steps');
    await bad({ steps: 2.5 }, 'INVALID_ARGUMENT', 'steps');
    await bad({ shape: [4] }, 'INVALID_SHAPE', 'shape');
    await bad({ seed: 1.5 }, 'INVALID_ARGUMENT', 'seed');
    await bad({ sde: {} }, 'INVALID_ARGUMENT', 'sde');
    await bad({ score: 3 }, 'INVALID_ARGUMENT', 'score');
    await bad({ snr: -1 }, 'INVALID_ARGUMENT', 'snr');
    await bad({ sampler: 'ode', method: 'midpoint' }, 'UNKNOWN_NAME', 'method');
    await bad({ sampler: 'dpm-solver', skipType: 'quadratic' }, 'UNKNOWN_NAME', 'skipType');
    await bad({ sampler: 'dpm-solver', order: 4 }, 'INVALID_ARGUMENT', 'order');
    await bad({ sampler: 'ald', stepRule: 'x' }, 'UNKNOWN_NAME', 'stepRule');
    await bad({ sampler: 'ald', sigmas: [0.1, 1] }, 'INVALID_ARGUMENT', 'sigmas');
    await bad({ sampler: 'langevin' }, 'INVALID_ARGUMENT', 'sigma');
    await bad({ score: () => tf.zeros([2]) }, 'INVALID_SHAPE', 'score');
    await bad({ score: (x: tf.Tensor) => tf.mul(x, NaN), sampler: 'dpm-solver' }, 'NON_FINITE');
    const nan = tf.fill([64, 3], NaN);
    await bad({ init: nan }, 'NON_FINITE', 'init');
    const wrong = tf.zeros([2, 3]);
    await bad({ init: wrong }, 'INVALID_SHAPE', 'init');
    tf.dispose([nan, wrong]);
    await bad(
      { predictor: 'ancestral', sde: new SubVpSde(), score: gaussScore(new SubVpSde()) },
      'UNSUPPORTED',
      'ancestral',
    );
    await bad(
      { predictor: 'ancestral', sde: new TutorialVeSde(), score: gaussScore(new TutorialVeSde()) },
      'UNSUPPORTED',
    );
    await bad({ predictor: 'ancestral', probabilityFlow: true }, 'UNSUPPORTED');
  });

  it('a registered predictor is usable by name (plugin path)', async () => {
    let calls = 0;
    registerPredictor('test-identity', () => ({
      update: (x) => {
        calls++;
        return { x: tf.mul(x, 1), xMean: x };
      },
    }));
    expect(() => registerPredictor('test-identity', () => ({ update: (x) => ({ x, xMean: x }) }))).toThrow(/already/);
    const r = await sample({ ...base, sampler: 'pc', predictor: 'test-identity', corrector: 'none', steps: 5 });
    expect(calls).toBe(5);
    expect(r.stats.nfe).toBe(0);
    r.samples.dispose();
    unregisterPredictor('test-identity');
  });
});

describeWithBackends(
  'samplers on a 1-D Gaussian (closed form)',
  () => {
    // n = 4000 draws: the sample mean has standard error S/√n = 0.0079 and the sample std ≈ S/√(2n) = 0.0056; we allow
    // 4 standard errors plus the sampler's own discretization bias (0.02 absolute, far below what a wrong update gives:
    // e.g. a missing ½ in the flow or a wrong noise scale moves the std by > 0.1).
    const n = 4000;
    const tolMean = 4 * (S / Math.sqrt(n)) + 0.02;
    const tolStd = 4 * (S / Math.sqrt(2 * n)) + 0.02;
    const sdes: Sde[] = [new VeSde(), new VpSde(), new SubVpSde(), new TutorialVeSde()];
    const configs: { label: string; o: Partial<SampleOptions>; only?: string[] }[] = [
      {
        label: 'ancestral + none, 300 steps',
        o: { sampler: 'pc', predictor: 'ancestral', corrector: 'none', steps: 300 },
        only: ['ve', 'vp'],
      },
      {
        label: 'EM + ALD corrector, 300 steps',
        o: { sampler: 'pc', predictor: 'euler-maruyama', corrector: 'ald', steps: 300 },
      },
      {
        label: 'PC probability flow (reverse diffusion), 300 steps',
        o: { sampler: 'pc', corrector: 'none', probabilityFlow: true, steps: 300 },
      },
      { label: 'ODE Heun fixed-step, 100 steps', o: { sampler: 'ode', method: 'heun', steps: 100 } },
      { label: 'ODE RK4 fixed-step, 50 steps', o: { sampler: 'ode', method: 'rk4', steps: 50 } },
      { label: 'EDM Heun, 18 steps', o: { sampler: 'heun' } },
      {
        label: 'DPM-Solver++ time-uniform, 50 steps',
        o: { sampler: 'dpm-solver', skipType: 'time', steps: 50, lowerOrderFinal: true },
      },
    ];
    for (const sde of sdes) {
      for (const c of configs) {
        if (c.only && !c.only.includes(sde.name)) continue;
        it(`${sde.name}: ${c.label}`, async () => {
          const r = await withLeakCheck(() =>
            sample({ ...c.o, sde, score: gaussScore(sde), shape: [n, 1], seed: 3 } as SampleOptions),
          );
          const m = await moments(r.samples);
          r.samples.dispose();
          expect(Math.abs(m.mean - MU)).toBeLessThan(tolMean);
          expect(Math.abs(m.std - S)).toBeLessThan(tolStd);
        });
      }
    }

    it('EDM Heun takes 2N − 1 score calls; DPM-Solver++ one per step', async () => {
      const sde = new VpSde();
      const h = await sample({ sampler: 'heun', sde, score: gaussScore(sde), shape: [8, 1], seed: 1, steps: 18 });
      expect(h.stats.nfe).toBe(35);
      const d = await sample({
        sampler: 'dpm-solver',
        sde,
        score: gaussScore(sde),
        shape: [8, 1],
        seed: 1,
        steps: 10,
        denoiseToZero: true,
      });
      expect(d.stats.nfe).toBe(11);
      tf.dispose([h.samples, d.samples]);
    });

    it("pc / em denoiseToZero replace the last step by Tweedie's E[x₀ | x_eps], at the same NFE", async () => {
      // steps = 2 with predictor and corrector 'none': the grid is [T, eps], the step at T is the identity and the
      // one at eps is the denoiser, so the output is E[x₀ | x_eps = init] exactly. For data N(μ, s²) under an affine
      // SDE (x_t = α x₀ + σ z) that is μ + α s² (x − α μ) / (α² s² + σ²): α ≠ 1 checks the division by α.
      for (const sde of [new VpSde(), new TutorialVeSde()]) {
        const eps = 0.3;
        const a = sde.alpha(eps);
        const v = a * a * S * S + sde.std(eps) ** 2;
        const init = tf.tensor2d([-1, -0.2, 0.3, 0.9, 2.5], [5, 1]);
        const o = { sde, score: gaussScore(sde), shape: [5, 1], seed: 1, steps: 2, eps, init };
        const r = await withLeakCheck(() =>
          sample({ sampler: 'pc', predictor: 'none', corrector: 'none', denoiseToZero: true, ...o }),
        );
        expect(r.stats.nfe).toBe(1);
        const got = Array.from(await r.samples.data());
        const want = [-1, -0.2, 0.3, 0.9, 2.5].map((x) => MU + (a * S * S * (x - a * MU)) / v);
        got.forEach((g, k) => expect(Math.abs(g - want[k])).toBeLessThan(1e-5 * (1 + Math.abs(want[k]))));
        r.samples.dispose();
        // The full samplers: the denoiser takes the place of the last predictor's score call.
        for (const [sampler, perStep] of [
          ['pc', 2],
          ['em', 1],
        ] as const) {
          const base = { sampler, sde, score: gaussScore(sde), shape: [4, 1], seed: 2, steps: 30 };
          const d = await withLeakCheck(() => sample({ ...base, denoiseToZero: true }));
          expect(d.stats.nfe).toBe(perStep * 30);
          expect(Array.from(await d.samples.data()).every(Number.isFinite)).toBe(true);
          d.samples.dispose();
        }
        init.dispose();
      }
    });

    it('em, ode, dpm-solver and heun need no DDPM grid: VP at 10 steps works; pc with reverse diffusion says N', async () => {
      // β_max/N = 20/10 ≥ 1: the DDPM grid of VP / sub-VP with N = 10 does not exist, but the continuous-time
      // samplers never read it. An SDE that createSde cannot rebuild (unregistered name) must work with em too.
      class UnregisteredVp extends VpSde {
        override readonly name: string = 'unregistered-vp';
      }
      for (const sde of [new VpSde(), new SubVpSde()]) {
        const score = gaussScore(sde);
        for (const o of [
          { sampler: 'em', steps: 10 },
          { sampler: 'pc', predictor: 'euler-maruyama', corrector: 'none', steps: 10 },
          { sampler: 'ode', method: 'rk4', steps: 10 },
          { sampler: 'dpm-solver', steps: 10 },
          // EDM Heun at 5–10 levels is genuinely too coarse for this check (std 1.34 / 0.62 for 0.5 on VP: its σ steps cross
          // the data scale), so it runs at its default 18 levels (35 NFE), still a step count with no DDPM grid.
          { sampler: 'heun', steps: 18 },
        ]) {
          const r = await withLeakCheck(() => sample({ ...o, sde, score, shape: [n, 1], seed: 3 } as SampleOptions));
          const m = await moments(r.samples);
          r.samples.dispose();
          // 10 steps are coarse: only the order of magnitude is checked here (a wrong sign or a missing noise term
          // moves the mean or the std by more than 0.3); accuracy per step count is the samplers bench's job.
          expect(Math.abs(m.mean - MU), `${sde.name} ${JSON.stringify(o)} mean`).toBeLessThan(0.15);
          expect(Math.abs(m.std - S), `${sde.name} ${JSON.stringify(o)} std`).toBeLessThan(0.15);
        }
        const before = countTensors();
        await expect(sample({ sampler: 'pc', sde, score, shape: [8, 1], seed: 3, steps: 10 })).rejects.toSatisfy(
          (e) => isSbmError(e, 'INVALID_ARGUMENT') && e.message.includes('N') && e.message.includes('betaMax'),
        );
        expect(countTensors()).toBe(before);
      }
      // Same seed ⇒ same draws: EM on an SDE that createSde cannot rebuild equals EM on the registered VP.
      const vp = new VpSde();
      const a = await sample({ sampler: 'em', sde: vp, score: gaussScore(vp), shape: [64, 1], seed: 5, steps: 10 });
      const u = new UnregisteredVp();
      const b = await sample({ sampler: 'em', sde: u, score: gaussScore(u), shape: [64, 1], seed: 5, steps: 10 });
      expect(Array.from(await b.samples.data())).toEqual(Array.from(await a.samples.data()));
      tf.dispose([a.samples, b.samples]);
    });
  },
  { backends: ['cpu'] },
);

describeWithBackends(
  'deterministic samplers converge to the RK45 flow from the same prior draw',
  () => {
    // The same seed gives the same x_T, so few-step solvers must approach the accurate probability-flow solution
    // sample by sample as their step count grows (their order shows in the error ratio).
    it('DPM-Solver++(2M) and EDM Heun errors shrink with steps and are small at the default step counts', async () => {
      const sde = new VpSde();
      const score = gaussScore(sde);
      const o = { sde, score, shape: [256, 2], seed: 9 };
      const ref = await sample({ ...o, sampler: 'ode', rtol: 1e-6, atol: 1e-6, denoise: false });
      const err = async (opts: Partial<SampleOptions>) => {
        const r = await sample({ ...o, ...opts } as SampleOptions);
        const e = tf.tidy(() => tf.sqrt(tf.mean(tf.square(tf.sub(r.samples, ref.samples)))).dataSync()[0]);
        r.samples.dispose();
        return e;
      };
      const d10 = await err({ sampler: 'dpm-solver', steps: 10, lowerOrderFinal: false });
      const d20 = await err({ sampler: 'dpm-solver', steps: 20, lowerOrderFinal: false });
      const h10 = await err({ sampler: 'heun', steps: 10, sigmaMin: sde.edmSigma(sde.samplingEps) });
      const h20 = await err({ sampler: 'heun', steps: 20 });
      ref.samples.dispose();
      // Second-order methods: halving the step divides the error by ≈ 4 (allow ≥ 2.5).
      expect(d10 / d20).toBeGreaterThan(2.5);
      expect(h10 / h20).toBeGreaterThan(2.5);
      expect(d20).toBeLessThan(0.02);
    });
  },
  { backends: ['cpu'] },
);

describeWithBackends(
  'cosine-VP plugin works unmodified with every sampler',
  () => {
    it('createSde("cosine-vp") samples the 1-D Gaussian with pc, em, ode, dpm-solver, heun, ald, langevin', async () => {
      registerCosineVp({ override: true });
      const sde = createSde('cosine-vp');
      const score = gaussScore(sde);
      const n = 4000;
      const runs: Partial<SampleOptions>[] = [
        { sampler: 'pc', steps: 200 },
        { sampler: 'pc', steps: 100, predictor: 'euler-maruyama', corrector: 'ald' },
        { sampler: 'em', steps: 200 },
        { sampler: 'ode' },
        { sampler: 'dpm-solver' },
        { sampler: 'heun' },
        { sampler: 'ald', sigmaMax: 3, sigmaMin: 0.01, levels: 10, stepsPerLevel: 100, stepSize: 2e-5 } as never,
      ];
      for (const o of runs) {
        const r = await withLeakCheck(() => sample({ ...o, sde, score, shape: [n, 1], seed: 4 } as SampleOptions));
        const m = await moments(r.samples);
        r.samples.dispose();
        // Tolerances as in the 1-D Gaussian suite above.
        expect(Math.abs(m.mean - MU), JSON.stringify(o)).toBeLessThan(4 * (S / Math.sqrt(n)) + 0.02);
        expect(Math.abs(m.std - S), JSON.stringify(o)).toBeLessThan(4 * (S / Math.sqrt(2 * n)) + 0.02);
      }
      await expect(
        sample({ sampler: 'pc', sde, score, shape: [4, 1], seed: 1, predictor: 'ancestral' }),
      ).rejects.toSatisfy((e) => isSbmError(e, 'UNSUPPORTED'));
    });
  },
  { backends: ['cpu'] },
);

it('schedules: EDM σ ladder, DPM-Solver logSNR grid, geometric σ and the NCSNv2 step', () => {
  const s = edmSigmas(0.002, 80, 18, 7);
  expect(s.length).toBe(19);
  expect(s[0]).toBeCloseTo(80, 10);
  expect(s[17]).toBeCloseTo(0.002, 12);
  expect(s[18]).toBe(0);
  const sde = new VpSde();
  const g = dpmSolverGrid(sde, 1e-3, 10, 'logSNR');
  expect(g[0]).toBe(1);
  expect(g[10]).toBe(1e-3);
  const l = g.map((t) => sde.lambda(t));
  for (let i = 1; i < 10; i++) expect(l[i] - l[i - 1]).toBeCloseTo((l[10] - l[0]) / 10, 5);
  const sig = geometricSigmas(1, 0.01, 10);
  expect(sig[9]).toBe(0.01);
  expect(sig[1] / sig[0]).toBeCloseTo(sig[9] / sig[8], 12);
  // NCSNv2 Technique 4 at σ 1 → 0.01, L = 10, T = 100: the expression is closest to 1 near ε ≈ 3e-6 (scanned in
  // float64 offline: |expr − 1| = 0.019 at 3.2e-6, 0.053 at 1e-5, 0.24 at 1e-6).
  const e = ncsnv2StepSize(sig, 100);
  expect(e).toBeGreaterThan(1.5e-6);
  expect(e).toBeLessThan(6e-6);
});
