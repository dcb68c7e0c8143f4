import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countTensors, isSbmError } from '@sbm/core';
import { VpSde, VeSde, type ScoreFn } from '@sbm/sde';
import { pcSampler } from '@sbm/samplers';
import { GaussianMixture, mixture2d } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectRejectsSbm } from '@sbm/test-harness';
import { conditionalSample, getMethod, type LinearOperator } from '@sbm/inverse-problems';

/** A dense operator y = B x over [b, D] (B: m×D rows). Its matrix is built per call, so it holds no tensors. */
function dense(B: number[][]): LinearOperator {
  const m = B.length;
  const D = B[0].length;
  return {
    name: 'dense-test',
    inShape: [D],
    outShape: [m],
    forward: (x) => tf.tidy(() => tf.matMul(x as tf.Tensor2D, tf.tensor2d(B), false, true)),
    adjoint: (y) => tf.tidy(() => tf.matMul(y as tf.Tensor2D, tf.tensor2d(B))),
  };
}

const rowsOf = async (x: tf.Tensor): Promise<number[][]> => (await x.array()) as number[][];

// A VP SDE with a short β range keeps α(T) ≈ 0.76, so one step from T is well conditioned.
const sde1 = new VpSde({ betaMin: 0.1, betaMax: 1 });
// N(μ, c I) in 2-D: x̂₀(x_t) = (α c x + σ² μ)/v with v = α² c + σ² (Tweedie on the exact score), so ∂x̂₀/∂x_t = (α c/v) I.
const mu = [0.5, -1];
const c = 0.7;
const gauss = new GaussianMixture({ weights: [1], means: [mu], covariances: [c] });
const B = [
  [1, 2],
  [-0.5, 1.5],
];
const X0 = [
  [0.3, -0.2],
  [1.5, 0.7],
  [-2, 1],
];
const Y = [
  [1, 0.5],
  [-1, 2],
  [0.2, -0.3],
];

/** The one DPS step from T (steps = 1, denoise): x̂₀ + ζ k ∇ with the gradient of ‖y − F(x̂₀)‖ at x̂₀, per sample. */
function expectedOneStep(gradAt: (x0: number[], y: number[]) => number[], zeta: number): number[][] {
  const T = sde1.T;
  const a = sde1.alpha(T);
  const s2 = sde1.std(T) ** 2;
  const v = a * a * c + s2;
  const k = (a * c) / v;
  return X0.map((x, b) => {
    const x0 = x.map((xi, i) => (a * c * xi + s2 * mu[i]) / v);
    const g = gradAt(x0, Y[b]);
    return x0.map((e, i) => e - zeta * k * g[i]);
  });
}

describe('dps: the update (Chung et al. 2023, Algorithm 1 with the norm)', () => {
  it('one step from T: x̂₀ − ζ ∇_{x_T} ‖y − B x̂₀‖ per sample, the gradient through the score (float64 closed form)', async () => {
    const zeta = 0.8;
    const init = tf.tensor2d(X0);
    const y = tf.tensor2d(Y);
    const before = countTensors();
    const out = await conditionalSample({
      method: 'dps',
      sde: sde1,
      score: gauss.perturbed(sde1).scoreFn,
      shape: [3, 2],
      seed: 1,
      operator: dense(B),
      y,
      zeta,
      steps: 1,
      init,
    });
    // ∇_{x̂₀} ‖y − B x̂₀‖ = −Bᵀ r/‖r‖.
    const exp = expectedOneStep((x0, yy) => {
      const r = yy.map((yi, j) => yi - B[j][0] * x0[0] - B[j][1] * x0[1]);
      const n = Math.hypot(...r);
      return [0, 1].map((i) => -(B[0][i] * r[0] + B[1][i] * r[1]) / n);
    }, zeta);
    const got = await rowsOf(out.samples);
    for (let b = 0; b < 3; b++) for (let i = 0; i < 2; i++) expect(got[b][i]).toBeCloseTo(exp[b][i], 5);
    // Without the score's Jacobian (∂x̂₀/∂x_t = I/α) the step would differ by far more than that precision.
    const a = sde1.alpha(1);
    expect(Math.abs((1 / a - (a * c) / (a * a * c + sde1.std(1) ** 2)) * zeta)).toBeGreaterThan(0.1);
    expect(out.stats).toMatchObject({ method: 'dps', sampler: 'reverse-diffusion', nfe: 1, vjp: 1, steps: 1 });
    // conditionalSample's residual is ‖B x − y‖ of the returned samples.
    const r0 = got[0].map((_, j) => B[j][0] * got[0][0] + B[j][1] * got[0][1] - Y[0][j]);
    expect(out.residual[0]).toBeCloseTo(Math.hypot(...r0), 4);
    out.samples.dispose();
    expect(countTensors()).toBe(before);
    tf.dispose([init, y]);
  });

  it('a nonlinear `forward` replaces operator.forward in the DPS term: F(x) = (B x)² (float64 closed form)', async () => {
    const zeta = 0.5;
    const init = tf.tensor2d(X0);
    const y = tf.tensor2d(Y);
    const out = await conditionalSample({
      method: 'dps',
      sde: sde1,
      score: gauss.perturbed(sde1).scoreFn,
      shape: [3, 2],
      seed: 1,
      operator: dense(B),
      forward: (x: tf.Tensor) => tf.square(tf.matMul(x as tf.Tensor2D, tf.tensor2d(B), false, true)),
      y,
      zeta,
      steps: 1,
      init,
    });
    // r = y − (B x̂₀)², ∇_{x̂₀} ‖r‖ = −Bᵀ (2 (B x̂₀) ⊙ r)/‖r‖.
    const exp = expectedOneStep((x0, yy) => {
      const bx = [0, 1].map((j) => B[j][0] * x0[0] + B[j][1] * x0[1]);
      const r = yy.map((yi, j) => yi - bx[j] ** 2);
      const n = Math.hypot(...r);
      return [0, 1].map((i) => -(B[0][i] * 2 * bx[0] * r[0] + B[1][i] * 2 * bx[1] * r[1]) / n);
    }, zeta);
    const got = await rowsOf(out.samples);
    for (let b = 0; b < 3; b++) for (let i = 0; i < 2; i++) expect(got[b][i]).toBeCloseTo(exp[b][i], 5);
    tf.dispose([out.samples, init, y]);
  });

  it('an exact fit (zero operator, y = 0) adds no gradient, not NaN: DPS is then the unconditional sampler', async () => {
    const zero: LinearOperator = { ...dense([[0, 0]]), name: 'zero' };
    const init = tf.tensor2d(X0);
    const y = tf.zeros([3, 1]);
    const out = await conditionalSample({
      method: 'dps',
      sde: sde1,
      score: gauss.perturbed(sde1).scoreFn,
      shape: [3, 2],
      seed: 1,
      operator: zero,
      y,
      steps: 1,
      init,
    });
    const exp = expectedOneStep(() => [0, 0], 1);
    const got = await rowsOf(out.samples);
    for (let b = 0; b < 3; b++) for (let i = 0; i < 2; i++) expect(got[b][i]).toBeCloseTo(exp[b][i], 5);
    tf.dispose([out.samples, init, y]);
  });

  // With ζ → 0 DPS is its unconditional chain: the same grid, noise order and Tweedie ending as the PC sampler with
  // corrector 'none' (score_sde's discretisation), so the two agree to float32 rounding.
  for (const predictor of ['reverse-diffusion', 'ancestral', 'euler-maruyama'] as const) {
    it(`ζ → 0 with sampler '${predictor}' is pc({ predictor: '${predictor}', corrector: 'none', denoiseToZero }) (VP, 25 steps)`, async () => {
      const sde = new VpSde();
      const mix = mixture2d();
      const score = mix.perturbed(sde).scoreFn;
      const init = sde.priorSampling([16, 2], 3);
      const y = tf.zeros([16, 1]);
      const dps = await conditionalSample({
        method: 'dps',
        sde,
        score,
        shape: [16, 2],
        seed: 11,
        operator: dense([[1, 1]]),
        y,
        zeta: 1e-12,
        steps: 25,
        init,
        sampler: predictor,
      });
      const pc = await pcSampler({
        sde,
        score,
        shape: [16, 2],
        seed: 11,
        steps: 25,
        init,
        predictor,
        corrector: 'none',
        denoiseToZero: true,
      });
      const a = await dps.samples.data();
      const b = await pc.samples.data();
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
      expect(err).toBeLessThan(1e-4);
      expect(dps.stats).toMatchObject({ sampler: predictor, nfe: 25, vjp: 25, steps: 25 });
      expect(pc.stats.nfe).toBe(25);
      tf.dispose([dps.samples, pc.samples, init, y]);
    });
  }

  it('denoise: false ends on the last noisy step (differs from the Tweedie ending; both finite)', async () => {
    const sde = new VeSde();
    const score = mixture2d().perturbed(sde).scoreFn;
    const y = tf.fill([8, 1], 2);
    const base = { method: 'dps', sde, score, shape: [8, 2], seed: 4, operator: dense([[1, 0]]), y, steps: 20 };
    const a = await conditionalSample({ ...base });
    const b = await conditionalSample({ ...base, samplerOptions: { denoise: false } });
    const va = Array.from(await a.samples.data());
    const vb = Array.from(await b.samples.data());
    expect(va.every(Number.isFinite) && vb.every(Number.isFinite)).toBe(true);
    // The noisy ending adds σ(eps)-scale noise (VE: G ≈ √(σ_1² − σ_0²) ≈ 0.01 per coordinate on the 20-step grid).
    expect(Math.max(...va.map((v, i) => Math.abs(v - vb[i])))).toBeGreaterThan(1e-4);
    tf.dispose([a.samples, b.samples, y]);
  });
});

describeWithBackends('dps: seeds, progress', () => {
  it('same seed ⇒ same samples; another seed ⇒ others; progress per step; no leaks', async () => {
    const sde = new VpSde();
    const score = mixture2d().perturbed(sde).scoreFn;
    const y = tf.fill([8, 1], 3);
    const before = countTensors();
    const steps: number[] = [];
    const run = (seed: number) =>
      conditionalSample({
        method: 'dps',
        sde,
        score,
        shape: [8, 2],
        seed,
        operator: dense([[1, 1]]),
        y,
        noiseStd: 0.1,
        zeta: 0.5,
        steps: 25,
        onProgress: (p) => steps.push(p.step),
      });
    const [a, b, d] = [await run(5), await run(5), await run(6)];
    const [va, vb, vd] = await Promise.all([a, b, d].map(async (r) => Array.from(await r.samples.data())));
    expect(va).toEqual(vb);
    expect(va).not.toEqual(vd);
    expect(steps.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    tf.dispose([a.samples, b.samples, d.samples]);
    expect(countTensors()).toBe(before);
    y.dispose();
  });
});

describe('dps: failures free every tensor', () => {
  const sde = new VpSde();
  const score = mixture2d().perturbed(sde).scoreFn;
  const op = dense([[1, 1]]);
  const base = { method: 'dps', sde, shape: [4, 2], seed: 1, operator: op, steps: 25 };

  it('a throwing score, a throwing forward, a NaN score, an abort, a forward of the wrong shape', async () => {
    const y = tf.fill([4, 1], 1);
    const before = countTensors();
    let calls = 0;
    const throwing: ScoreFn = (x, t) => {
      if (++calls === 5) throw new Error('score boom');
      return score(x, t);
    };
    await expect(conditionalSample({ ...base, y, score: throwing })).rejects.toThrow('score boom');
    expect(countTensors()).toBe(before);
    let fcalls = 0;
    const fwd = (x: tf.Tensor) => {
      if (++fcalls === 3) throw new Error('forward boom');
      return op.forward(x);
    };
    await expect(conditionalSample({ ...base, y, score, forward: fwd })).rejects.toThrow('forward boom');
    expect(countTensors()).toBe(before);
    await expect(conditionalSample({ ...base, y, score: (x: tf.Tensor) => tf.mul(x, NaN) })).rejects.toSatisfy((e) =>
      isSbmError(e, 'NON_FINITE'),
    );
    expect(countTensors()).toBe(before);
    const ac = new AbortController();
    await expect(
      conditionalSample({ ...base, y, score, signal: ac.signal, onProgress: (p) => p.step === 2 && ac.abort('stop') }),
    ).rejects.toSatisfy((e) => isSbmError(e, 'ABORTED'));
    expect(countTensors()).toBe(before);
    await expectRejectsSbm(
      conditionalSample({ ...base, y, score, forward: (x: tf.Tensor) => tf.concat([x, x], 1) }),
      'INVALID_SHAPE',
      /forward\(x\): expected A\(x̂₀\) of shape \[batch, 1\], got \[4, 4\]/,
    );
    expect(countTensors()).toBe(before);
    y.dispose();
  });

  it('its own options: zeta, steps, eps, denoise, forward, init, sampler, samplerOptions', async () => {
    const y = tf.fill([4, 1], 1);
    const badInit = tf.zeros([3, 2]);
    const before = countTensors();
    const o = { ...base, y, score };
    await expectRejectsSbm(conditionalSample({ ...o, zeta: 0 }), 'INVALID_ARGUMENT', /zeta: expected .*> 0, got 0/);
    await expectRejectsSbm(conditionalSample({ ...o, zeta: NaN }), 'INVALID_ARGUMENT', /zeta/);
    await expectRejectsSbm(conditionalSample({ ...o, steps: 0 }), 'INVALID_ARGUMENT', /steps: expected an integer/);
    await expectRejectsSbm(conditionalSample({ ...o, eps: 2 }), 'INVALID_ARGUMENT', /eps: expected .*< 1, got 2/);
    await expectRejectsSbm(
      conditionalSample({ ...o, denoise: 'yes' }),
      'INVALID_ARGUMENT',
      /denoise: expected a boolean/,
    );
    await expectRejectsSbm(conditionalSample({ ...o, forward: 3 }), 'INVALID_ARGUMENT', /forward: expected a function/);
    await expectRejectsSbm(conditionalSample({ ...o, init: badInit }), 'INVALID_SHAPE', /init/);
    await expectRejectsSbm(
      conditionalSample({ ...o, sampler: 'reverse-difusion' }),
      'INVALID_ARGUMENT',
      /sampler: method "dps" takes .*did you mean "reverse-diffusion"/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...o, samplerOptions: { snr: 0.1 } }),
      'INVALID_ARGUMENT',
      /samplerOptions\.snr: method "dps" runs its own loop/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...o, samplerOptions: { steps: 5 } }),
      'INVALID_ARGUMENT',
      /samplerOptions\.steps: given twice/,
    );
    // The DDPM chain needs β_max/N < 1 for ancestral sampling: the samplers' own check, before anything is allocated.
    await expectRejectsSbm(
      conditionalSample({ ...o, steps: 12, sampler: 'ancestral' }),
      'INVALID_ARGUMENT',
      /betaMax \/ N < 1/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...o, steps: 12 }),
      'INVALID_ARGUMENT',
      /^steps: sampler 'reverse-diffusion' runs on the "vp" SDE's 12-step chain, which refuses it \(.*betaMax \/ N < 1.*\); use more steps or sampler 'euler-maruyama'/,
    );
    // Euler–Maruyama is continuous-time: 12 steps are fine.
    const em = await conditionalSample({ ...o, steps: 12, sampler: 'euler-maruyama' });
    expect(em.stats).toMatchObject({ sampler: 'euler-maruyama', nfe: 12 });
    em.samples.dispose();
    expect(countTensors()).toBe(before);
    expect(getMethod('dps').samplers).toEqual(['reverse-diffusion', 'ancestral', 'euler-maruyama']);
    tf.dispose([y, badInit]);
  });
});
