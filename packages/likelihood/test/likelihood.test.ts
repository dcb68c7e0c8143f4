import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { withLeakCheck } from '@sbm/core';
import { createSde, type Sde } from '@sbm/sde';
import { GaussianMixture, mixture2d } from '@sbm/gaussian-mixture';
import { describeWithBackends } from '@sbm/test-harness';
import { registerCosineVp } from '@sbm/sde-cosine';
import { bitsPerDim, bpdOffset, dequantize, logLikelihood } from '@sbm/likelihood';
import { expectRejectsSbm as expectSbmError } from '@sbm/test-harness';

const EPS = 1e-5;
const mix = mixture2d();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function read(t: tf.Tensor): number[] {
  const out = Array.from(t.dataSync());
  t.dispose();
  return out;
}

describe('logLikelihood: exact trace vs the oracle density (2-D mixture)', () => {
  for (const name of ['ve', 'vp', 'subvp']) {
    it(`${name}: within 0.005 nats/dim of −log p_eps, and the ODE part within 1e-3 nats/dim`, async () => {
      const sde = createSde(name);
      const oracle = mix.perturbed(sde);
      const x = mix.sample(12, 21);
      const r = await withLeakCheck(
        () => logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact', returnLatent: true }),
        'logLikelihood',
      );
      const D = r.dim;
      expect(D).toBe(2);
      const exactEps = read(oracle.logProb(x, EPS));
      const exact0 = read(mix.logProb(x));
      // What the ODE computes is log p_T(x_T) + ∫∇·f̃ = log p_eps(x) when the prior is p_T. The SDE's prior
      // N(0, s²I) differs from p_T by a little (VE: σ_max = 50 against a data spread ≈ 7; VP: α(1) ≈ 0.0066 times
      // the means), so the total error = integration error + prior gap log π(x_T) − log p_T(x_T).
      const pT = read(oracle.logProb(r.latent!, sde.T));
      r.latent!.dispose();
      for (let b = 0; b < 12; b++) {
        // Total, as the brief's criterion: the model's log p_eps against the exact one.
        expect(Math.abs(r.nll[b] + exactEps[b]) / D).toBeLessThan(0.005);
        // The integral alone: ∫∇·f̃ dt should equal log p_eps(x) − log p_T(x_T). Observed ≤ 2e-4 nats/dim at
        // rtol = atol = 1e-5 in float32; 1e-3 leaves room for backend rounding.
        expect(Math.abs(r.deltaLogp[b] - (exactEps[b] - pT[b])) / D).toBeLessThan(1e-3);
        // eps = 1e-5 moves the density by < 5e-4 nats/dim here (VE: σ(eps) ≈ 0.01 against component stds ≥ 0.5),
        // so the comparison with p_0 itself passes the same 0.005 bound.
        expect(Math.abs(exactEps[b] - exact0[b]) / D).toBeLessThan(5e-4);
        expect(Math.abs(r.nll[b] + exact0[b]) / D).toBeLessThan(0.005);
      }
      expect(r.nfe).toBeGreaterThan(10);
      expect(r.nllStdErr).toBeUndefined();
      x.dispose();
    });
  }

  it('on 4-D image-shaped input [B, 2, 2, 1] (flattening round-trip)', async () => {
    const g = new GaussianMixture({
      weights: [0.5, 0.5],
      means: [
        [1, 0, -1, 0.5],
        [-1, 0.5, 0, 0],
      ],
      covariances: [0.5, 0.8],
    });
    const sde = createSde('vp');
    const oracle = g.perturbed(sde);
    const x = tf.tidy(() => tf.reshape(g.sample(6, 2), [6, 2, 2, 1]));
    const r = await logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact' });
    const exact = read(oracle.logProb(x, EPS));
    for (let b = 0; b < 6; b++) expect(Math.abs(r.nll[b] + exact[b]) / 4).toBeLessThan(0.005);
    x.dispose();
  });
});

describe('logLikelihood: a plugin SDE works unmodified', () => {
  it('cosine-vp (registered by @sbm/sde-cosine, built with createSde): within 0.005 nats/dim of −log p_eps', async () => {
    registerCosineVp({ override: true });
    const sde = createSde('cosine-vp');
    const oracle = mix.perturbed(sde);
    const x = mix.sample(8, 41);
    const r = await logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact', returnLatent: true });
    const exact = read(oracle.logProb(x, EPS));
    const pT = read(oracle.logProb(r.latent!, sde.T));
    r.latent!.dispose();
    for (let b = 0; b < 8; b++) {
      expect(Math.abs(r.nll[b] + exact[b]) / 2).toBeLessThan(0.005);
      expect(Math.abs(r.deltaLogp[b] - (exact[b] - pT[b])) / 2).toBeLessThan(1e-3);
    }
    x.dispose();
  });
});

describe('logLikelihood: Hutchinson vs exact trace', () => {
  // Each probe gives an unbiased estimate of the same integral (E[vᵀJv] = tr J and v is fixed per trajectory, so
  // the integral is linear in vvᵀ). With P probes the per-sample standard error is s_P/√P from the sample itself;
  // over B samples the mean difference has SE √(Σ se_b²)/B. Tolerance: 4 of those standard errors.
  for (const divergence of ['rademacher', 'gaussian'] as const) {
    for (const seed of [1, 2]) {
      it(`${divergence}, seed ${seed}: agrees within its standard error (32 probes, VP)`, async () => {
        const sde = createSde('vp');
        const oracle = mix.perturbed(sde);
        const x = mix.sample(8, 30 + seed);
        const exact = await logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact' });
        const h = await logLikelihood(oracle.scoreFn, x, sde, seed, { divergence, probes: 32 });
        const se = h.nllStdErr!;
        expect(se).toHaveLength(8);
        const diffs = h.nll.map((v, b) => v - exact.nll[b]);
        const meanDiff = diffs.reduce((s, d) => s + d, 0) / 8;
        const pooled = Math.sqrt(se.reduce((s, e) => s + e * e, 0)) / 8;
        expect(pooled).toBeGreaterThan(0);
        expect(Math.abs(meanDiff)).toBeLessThan(4 * pooled);
        for (let b = 0; b < 8; b++) expect(Math.abs(diffs[b])).toBeLessThan(5 * se[b] + 1e-3);
        // bits/dim carries the same standard error scaled by 1/(D ln 2).
        expect(h.bpdStdErr![0]).toBeCloseTo(se[0] / (2 * Math.LN2), 6);
        x.dispose();
      });
    }
  }

  it('is deterministic per seed and the probes differ between seeds', async () => {
    const sde = createSde('vp');
    const oracle = mix.perturbed(sde);
    const x = mix.sample(4, 5);
    const a = await logLikelihood(oracle.scoreFn, x, sde, 7);
    const b = await logLikelihood(oracle.scoreFn, x, sde, 7);
    const c = await logLikelihood(oracle.scoreFn, x, sde, 8, { divergence: 'gaussian' });
    expect(a.nll).toEqual(b.nll);
    expect(a.nll).not.toEqual(c.nll);
    x.dispose();
  });
});

describe('bits/dim and dequantization', () => {
  it('offsets: 8 for [0, 1], 7 for [−1, 1], 0 for [0, 256]', () => {
    expect(bpdOffset([0, 1])).toBe(8);
    expect(bpdOffset([-1, 1])).toBe(7);
    expect(bpdOffset([0, 256])).toBe(0);
    expect(bitsPerDim(Math.LN2 * 3 * 10, 3, 8)).toBeCloseTo(18, 12);
  });

  it('the offset makes bits/dim invariant to the data scaling (change of variables on an exact density)', () => {
    // Density of y ∈ [0,1]^D and of x = 2y − 1 (means 2μ − 1, covariances 4Σ): log p_x = log p_y − D ln 2.
    const py = new GaussianMixture({
      weights: [0.6, 0.4],
      means: [
        [0.3, 0.6, 0.5],
        [0.7, 0.2, 0.4],
      ],
      covariances: [0.01, 0.02],
    });
    const px = new GaussianMixture({
      weights: [0.6, 0.4],
      means: [
        [-0.4, 0.2, 0],
        [0.4, -0.6, -0.2],
      ],
      covariances: [0.04, 0.08],
    });
    const y = py.sample(16, 3);
    const x = tf.tidy(() => tf.sub(tf.mul(y, 2), 1));
    const ly = read(py.logProb(y));
    const lx = read(px.logProb(x));
    for (let b = 0; b < 16; b++) {
      const bpdY = bitsPerDim(-ly[b], 3, bpdOffset([0, 1]));
      const bpdX = bitsPerDim(-lx[b], 3, bpdOffset([-1, 1]));
      expect(bpdX).toBeCloseTo(bpdY, 4);
    }
    tf.dispose([x, y]);
  });

  it('logLikelihood applies the offset of dataRange (bpd = nll/(D ln 2) + 7 for [−1, 1])', async () => {
    const sde = createSde('vp');
    const g = new GaussianMixture({ weights: [1], means: [[0.1, -0.2]], covariances: [0.05] });
    const x = g.sample(3, 1);
    const r = await logLikelihood(g.perturbed(sde).scoreFn, x, sde, 0, { divergence: 'exact', dataRange: [-1, 1] });
    expect(r.bpdOffset).toBe(7);
    r.nll.forEach((n, b) => expect(r.bpd[b]).toBeCloseTo(n / (2 * Math.LN2) + 7, 10));
    const plain = await logLikelihood(g.perturbed(sde).scoreFn, x, sde, 0, { divergence: 'exact' });
    expect(plain.bpdOffset).toBe(0);
    x.dispose();
  });

  it('dequantize puts level k uniformly inside its bin [k/256, (k+1)/256), for [0, 1] and [−1, 1]', async () => {
    const levels = Array.from({ length: 256 }, (_, k) => k);
    const img = tf.tensor2d([levels, levels, levels, levels].flat(), [16, 64]).div(255);
    const y = await withLeakCheck(() => dequantize(img, 9));
    const yv = y.dataSync();
    const kv = img.dataSync();
    const frac: number[] = [];
    for (let i = 0; i < yv.length; i++) {
      const k = Math.round(kv[i] * 255);
      expect(Math.floor(yv[i] * 256)).toBe(k);
      frac.push(yv[i] * 256 - k);
    }
    // U(0, 1) offsets: mean ½ and variance 1/12, within 4 standard errors (SE of the mean √(1/12/n)).
    const n = frac.length;
    const mean = frac.reduce((s, f) => s + f, 0) / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    const centered = tf.tidy(() => tf.sub(tf.mul(img, 2), 1));
    const y2 = dequantize(centered, 9, [-1, 1]);
    const y2v = y2.dataSync();
    for (let i = 0; i < y2v.length; i++) expect(y2v[i]).toBeCloseTo(2 * yv[i] - 1, 5);
    const again = dequantize(img, 9).dataSync();
    expect(Array.from(again)).toEqual(Array.from(yv));
    tf.dispose([img, y, centered, y2]);
  });

  it('logLikelihood with dequantize: seeded, offset 8 by default, and the data moved by < 1/256', async () => {
    const sde = createSde('vp');
    const g = new GaussianMixture({ weights: [1], means: [[0.5, 0.4]], covariances: [0.02] });
    const oracle = g.perturbed(sde);
    const x = tf.tensor2d([
      [128 / 255, 100 / 255],
      [90 / 255, 140 / 255],
    ]);
    const a = await logLikelihood(oracle.scoreFn, x, sde, 4, {
      divergence: 'exact',
      dequantize: true,
      returnLatent: false,
    });
    const b = await logLikelihood(oracle.scoreFn, x, sde, 4, { divergence: 'exact', dequantize: true });
    expect(a.nll).toEqual(b.nll);
    expect(a.bpdOffset).toBe(8);
    const plain = await logLikelihood(oracle.scoreFn, x, sde, 4, { divergence: 'exact' });
    // Moving x by at most 1/256 per coordinate changes log p by at most ‖∇log p‖·√2/256 (+ curvature); the score
    // here is ≤ |x − μ|/0.02 ≈ 5 per coordinate, so the change is well below 0.1 nats.
    a.nll.forEach((n, i) => {
      expect(n).not.toBe(plain.nll[i]);
      expect(Math.abs(n - plain.nll[i])).toBeLessThan(0.1);
    });
    x.dispose();
  });
});

describe('logLikelihood: control and input checks', () => {
  const sde = createSde('vp');
  const oracle = mix.perturbed(sde);

  it('reports progress, honours an AbortSignal and leaks nothing when aborted', async () => {
    const x = mix.sample(2, 1);
    const ts: number[] = [];
    const done = await logLikelihood(oracle.scoreFn, x, sde, 0, { onProgress: (p) => ts.push(p.t) });
    expect(ts.length).toBe(done.steps);
    expect(ts.every((t, i) => i === 0 || t > ts[i - 1])).toBe(true);
    expect(ts[ts.length - 1]).toBe(sde.T);
    const ac = new AbortController();
    const before = tf.memory().numTensors;
    await expectSbmError(
      logLikelihood(oracle.scoreFn, x, sde, 0, { signal: ac.signal, onProgress: (p) => p.step >= 2 && ac.abort() }),
      'ABORTED',
      /aborted/,
    );
    expect(tf.memory().numTensors).toBe(before);
    const pre = new AbortController();
    pre.abort();
    await expectSbmError(logLikelihood(oracle.scoreFn, x, sde, 0, { signal: pre.signal }), 'ABORTED', /aborted/);
    x.dispose();
  });

  it('rejects bad input with SbmError naming the argument', async () => {
    const x = mix.sample(2, 1);
    const s = oracle.scoreFn;
    await expectSbmError(logLikelihood(s, x, sde, 0, { eps: 0 }), 'INVALID_ARGUMENT', /^eps/);
    await expectSbmError(logLikelihood(s, x, sde, 0, { eps: 1 }), 'INVALID_ARGUMENT', /^eps/);
    await expectSbmError(
      logLikelihood(s, x, sde, 0, { divergence: 'skilling' as never }),
      'UNKNOWN_NAME',
      /^divergence/,
    );
    await expectSbmError(logLikelihood(s, x, sde, 0, { probes: 0 }), 'INVALID_ARGUMENT', /^probes/);
    await expectSbmError(
      logLikelihood(s, x, sde, 0, { divergence: 'exact', probes: 2 }),
      'INVALID_ARGUMENT',
      /^probes/,
    );
    await expectSbmError(
      logLikelihood(s, x, sde, 0, { divergence: 'exact', maxExactDim: 1 }),
      'INVALID_SHAPE',
      /^x: the exact divergence/,
    );
    await expectSbmError(logLikelihood(s, x, sde, 0, { dataRange: [1, 0] }), 'INVALID_ARGUMENT', /^dataRange/);
    await expectSbmError(logLikelihood(s, x, sde, 1.5), 'INVALID_ARGUMENT', /^seed/);
    await expectSbmError(logLikelihood('s' as never, x, sde, 0), 'INVALID_ARGUMENT', /^score/);
    await expectSbmError(logLikelihood(s, x, {} as Sde, 0), 'INVALID_ARGUMENT', /^sde/);
    await expectSbmError(logLikelihood(s, tf.tensor1d([1, 2]), sde, 0), 'INVALID_SHAPE', /^x/);
    const nan = tf.tensor2d([[NaN, 0]]);
    await expectSbmError(logLikelihood(s, nan, sde, 0), 'NON_FINITE', /^x/);
    // Strict option keys, with a did-you-mean (score_sde's own spelling maps to ours).
    await expectSbmError(
      logLikelihood(s, x, sde, 0, { probe: 2 } as never),
      'INVALID_ARGUMENT',
      /^logLikelihood: unknown option "probe" \(did you mean "probes"\?\)/,
    );
    await expectSbmError(
      logLikelihood(s, x, sde, 0, { hutchinson_type: 'gaussian' } as never),
      'INVALID_ARGUMENT',
      /did you mean "divergence"\?/,
    );
    await expectSbmError(
      logLikelihood((xx) => tf.sum(xx, 1), x, sde, 0),
      'INVALID_SHAPE',
      /^score/,
    );
    tf.dispose([x, nan]);
  });
});

describeWithBackends('logLikelihood: small exact case (all backends)', () => {
  it('single Gaussian, VP, exact trace: within 0.005 nats/dim of −log p_eps', async () => {
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
    const x = g.sample(3, 11);
    const r = await withLeakCheck(() => logLikelihood(oracle.scoreFn, x, sde, 0, { divergence: 'exact' }));
    const exact = read(oracle.logProb(x, EPS));
    for (let b = 0; b < 3; b++) expect(Math.abs(r.nll[b] + exact[b]) / 2).toBeLessThan(0.005);
    x.dispose();
  });
});
