import { describe, expect, it } from 'vitest';
import { SubVpSde, TutorialVeSde, VeSde, VpSde, type Sde } from '@sbm/sde';
import { edmSigmas, makeGrid, SCHEDULES, scheduleName } from '@sbm/samplers';
import { expectThrowsSbm } from '@sbm/test-harness';

// The schedules are pure float64 arithmetic on the SDE's scalar forms: checked against their defining formulas.
const sdes: Sde[] = [new VeSde(), new VpSde(), new SubVpSde(), new TutorialVeSde()];
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('makeGrid', () => {
  for (const sde of sdes) {
    const eps = sde.samplingEps;
    it(`${sde.name}: every schedule spans T → eps, strictly decreasing, with consistent α, σ, λ, σ̃`, () => {
      for (const name of SCHEDULES) {
        for (const steps of [1, 2, 7, 50]) {
          const g = makeGrid(sde, name, steps, eps);
          expect(g.steps).toBe(steps);
          expect(g.t).toHaveLength(steps + 1);
          expect(g.t[0]).toBe(sde.T);
          expect(g.t[steps]).toBe(eps);
          for (let i = 1; i <= steps; i++) expect(g.t[i]).toBeLessThan(g.t[i - 1]);
          for (let i = 0; i <= steps; i++) {
            expect(rel(g.alpha[i], sde.alpha(g.t[i]))).toBeLessThan(1e-15);
            expect(rel(g.sigma[i], sde.std(g.t[i]))).toBeLessThan(1e-15);
            expect(rel(g.lambda[i], Math.log(g.alpha[i] / g.sigma[i]))).toBeLessThan(1e-12);
            expect(rel(g.sigmaEdm[i], g.sigma[i] / g.alpha[i])).toBeLessThan(1e-15);
          }
          expect(g.denoiseToZero).toBe(false);
        }
      }
    });

    it(`${sde.name}: karras is Karras et al. eq. 5 in σ̃, exponential / logsnr-uniform are uniform in log σ̃ = −λ`, () => {
      const n = 12;
      const sMax = sde.edmSigma(sde.T);
      const sMin = sde.edmSigma(eps);
      const k = makeGrid(sde, { type: 'karras', rho: 7 }, n, eps);
      // edmSigmas appends σ = 0; its first n + 1 levels are eq. 5 with N = n + 1 levels, ours uses i / n.
      const ref = edmSigmas(sMin, sMax, n + 1, 7).slice(0, n + 1);
      for (let i = 0; i <= n; i++) expect(rel(k.sigmaEdm[i], ref[i])).toBeLessThan(1e-9);
      const e = makeGrid(sde, 'exponential', n, eps);
      const l = makeGrid(sde, 'logsnr-uniform', n, eps);
      for (let i = 0; i <= n; i++) {
        const want = Math.exp(Math.log(sMax) + (i / n) * (Math.log(sMin) - Math.log(sMax)));
        expect(rel(e.sigmaEdm[i], want)).toBeLessThan(1e-9);
        expect(Math.abs(l.lambda[i] - (l.lambda[0] + (i / n) * (l.lambda[n] - l.lambda[0])))).toBeLessThan(1e-9);
        expect(rel(l.sigmaEdm[i], e.sigmaEdm[i])).toBeLessThan(1e-9);
      }
      // polyexponential with ρ = 1 is the exponential schedule; ρ = 2 puts more levels at small σ̃.
      const p1 = makeGrid(sde, { type: 'polyexponential', rho: 1 }, n, eps);
      for (let i = 0; i <= n; i++) expect(rel(p1.sigmaEdm[i], e.sigmaEdm[i])).toBeLessThan(1e-9);
      const p2 = makeGrid(sde, { type: 'polyexponential', rho: 2 }, n, eps);
      expect(p2.sigmaEdm[n / 2]).toBeLessThan(e.sigmaEdm[n / 2]);
    });

    it(`${sde.name}: time-uniform and time-quadratic (DPM-Solver's skip types)`, () => {
      const n = 10;
      const u = makeGrid(sde, 'time-uniform', n, eps);
      const q = makeGrid(sde, 'time-quadratic', n, eps);
      for (let i = 0; i <= n; i++) {
        expect(Math.abs(u.t[i] - (sde.T + (i / n) * (eps - sde.T)))).toBeLessThan(1e-15);
        const r = Math.sqrt(sde.T) + (i / n) * (Math.sqrt(eps) - Math.sqrt(sde.T));
        expect(Math.abs(q.t[i] - r * r)).toBeLessThan(1e-15);
      }
    });
  }

  it('sigmaMin / sigmaMax move the ends; explicit sigmas and times set the grid and the number of steps', () => {
    const sde = new VpSde();
    const g = makeGrid(sde, { type: 'karras', sigmaMin: 0.01, sigmaMax: 80 }, 10, 1e-3);
    expect(rel(g.sigmaEdm[0], 80)).toBeLessThan(1e-9);
    expect(rel(g.sigmaEdm[10], 0.01)).toBeLessThan(1e-9);
    const s = makeGrid(sde, { sigmas: [80, 10, 1, 0.1, 0] }, undefined, 1e-3);
    expect(s.steps).toBe(3);
    expect(s.denoiseToZero).toBe(true);
    expect(rel(s.sigmaEdm[1], 10)).toBeLessThan(1e-9);
    const t = makeGrid(sde, { times: [1, 0.5, 0.1, 0.01] }, 3, 1e-3);
    expect(t.t).toEqual([1, 0.5, 0.1, 0.01]);
    expect(t.schedule).toBe('times');
  });

  it('aliases resolve; bad schedules, ends and lists give INVALID_ARGUMENT naming the argument', () => {
    const sde = new VeSde();
    expect(scheduleName('logSNR')).toBe('logsnr-uniform');
    expect(scheduleName('time_quadratic')).toBe('time-quadratic');
    expectThrowsSbm(
      () => makeGrid(sde, 'karas' as never, 10, 1e-5),
      'INVALID_ARGUMENT',
      /schedule.*did you mean "karras"/,
    );
    expectThrowsSbm(() => makeGrid(sde, { type: 'karras', rho: -1 }, 10, 1e-5), 'INVALID_ARGUMENT', /schedule\.rho/);
    expectThrowsSbm(
      () => makeGrid(sde, { type: 'karras', sigmaMin: 5, sigmaMax: 1 }, 10, 1e-5),
      'INVALID_ARGUMENT',
      /schedule\.sigmaMax/,
    );
    expectThrowsSbm(
      () => makeGrid(sde, { type: 'karras', rh: 7 } as never, 10, 1e-5),
      'INVALID_ARGUMENT',
      /schedule\.rh/,
    );
    expectThrowsSbm(
      () => makeGrid(sde, { sigmas: [1, 2, 0.5] }, undefined, 1e-5),
      'INVALID_ARGUMENT',
      /schedule\.sigmas/,
    );
    expectThrowsSbm(() => makeGrid(sde, { sigmas: [5, 1] }, 3, 1e-5), 'INVALID_ARGUMENT', /steps: 3 disagrees/);
    expectThrowsSbm(() => makeGrid(sde, { times: [2, 0.5] }, undefined, 1e-5), 'INVALID_ARGUMENT', /schedule\.times/);
    expectThrowsSbm(() => makeGrid(sde, { times: [1, NaN] }, undefined, 1e-5), 'INVALID_ARGUMENT', /schedule\.times/);
    expectThrowsSbm(() => makeGrid(sde, 'karras', 0, 1e-5), 'INVALID_ARGUMENT', /steps/);
  });
});
