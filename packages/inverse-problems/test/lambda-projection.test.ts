import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SeedStream, countTensors, randomNormal } from '@sbm/core';
import { gaussian2d } from '@sbm/gaussian-mixture';
import { describeWithBackends, expectRejectsSbm } from '@sbm/test-harness';
import { VeSde, VpSde, type ScoreFn } from '@sbm/sde';
import { floorOf, meanSwd } from '@sbm/samplers/testing';
import { conditionalSample, type LinearOperator } from '@sbm/inverse-problems';
import type { LambdaProjectionStats } from '../src/methods/lambda-projection';
import { lambdaStep } from '../src/methods/lambda-projection';
import { T, inv, mul, type M, abortAtStep, veGaussScore } from './helpers';

/** A dense m×D operator with its explicit pseudo-inverse A⁺ = Aᵀ (A Aᵀ)⁻¹ (full row rank), formed in float64. */
function denseOperator(A: M): LinearOperator & { dispose(): void } {
  const At = tf.tensor2d(A);
  // Batched rows: A⁺ y = (A⁺ as D×m) y, i.e. y (A⁺)ᵀ with (A⁺)ᵀ = (A Aᵀ)⁻¹ A, an m×D matrix.
  const P = tf.tensor2d(mul(inv(mul(A, T(A))), A));
  return {
    name: 'test-dense',
    inShape: [A[0].length],
    outShape: [A.length],
    forward: (x) => tf.matMul(x as tf.Tensor2D, At, false, true),
    adjoint: (y) => tf.matMul(y as tf.Tensor2D, At),
    pinv: (y) => tf.matMul(y as tf.Tensor2D, P),
    dispose: () => tf.dispose([At, P]),
  };
}

/** A = M·Q, Q a seeded random orthonormal matrix: decoupled with T = Q, and A⁺ = Aᵀ. */
function orthoOperator(D: number, known: number[], seed: number) {
  const st = new SeedStream(seed);
  const Q: M = [];
  while (Q.length < D) {
    let v = Array.from({ length: D }, () => st.uniform() - 0.5);
    for (const q of Q) {
      const d = q.reduce((s, e, i) => s + e * v[i], 0);
      v = v.map((e, i) => e - d * q[i]);
    }
    const nv = Math.hypot(...v);
    Q.push(v.map((e) => e / nv));
  }
  const Qt = tf.tensor2d(Q);
  const Ak = tf.tensor2d(known.map((i) => Q[i]));
  const m = tf.tensor1d(Array.from({ length: D }, (_, j) => +known.includes(j)));
  const op: LinearOperator & { dispose(): void } = {
    name: 'test-ortho',
    inShape: [D],
    outShape: [known.length],
    forward: (x) => tf.matMul(x as tf.Tensor2D, Ak, false, true),
    adjoint: (y) => tf.matMul(y as tf.Tensor2D, Ak),
    pinv: (y) => tf.matMul(y as tf.Tensor2D, Ak),
    decoupled: {
      transform: (x) => tf.matMul(x as tf.Tensor2D, Qt, false, true),
      inverse: (x) => tf.matMul(x as tf.Tensor2D, Qt),
      mask: m,
    },
    dispose: () => tf.dispose([Qt, Ak, m]),
  };
  return op;
}

const ve = new VeSde();
/** Data N(0, I) under VE: s = −x/(1 + σ(t)²), exact and cheap. */
const gaussScore: ScoreFn = veGaussScore(ve);

describeWithBackends('lambda-projection: the cs.py merge, hooks, errors, leaks', () => {
  const A = [
    [0.9, -0.4, 0.3, 0.5],
    [0.1, 0.7, -0.6, 0.2],
  ];
  const b = 5;
  let op: ReturnType<typeof denseOperator>;
  let y: tf.Tensor;
  beforeAll(() => {
    op = denseOperator(A);
    y = tf.tensor2d(Array.from({ length: b }, (_, i) => [0.5 * i - 1, 1 - 0.3 * i]));
  });
  afterAll(() => {
    op.dispose();
    y.dispose();
  });
  const base = () => ({ method: 'lambda-projection', sde: ve, score: gaussScore, shape: [b, 4], operator: op, y });

  it("for A = M·T (T orthonormal) the step x + λ A⁺(ŷ_t − A x) is cs.py's x̃ ← λ m ŷ_t + (1 − λ m) x̃", () => {
    const D = 5;
    const known = [1, 3, 4];
    const rot = orthoOperator(D, known, 21);
    const vp = new VpSde();
    const before = countTensors();
    for (const lambda of [1, 0.841, 0.3]) {
      for (const t of [0.9, 0.2, 1e-3]) {
        const err = tf.tidy(() => {
          const x = randomNormal([3, D], new SeedStream(1));
          const yk = randomNormal([3, known.length], new SeedStream(2));
          const z = randomNormal([3, D], new SeedStream(3));
          const ours = lambdaStep(rot, vp, x, yk, t, lambda, z);
          // cs.py: known in T-space, mean = α·known, noisy_known = mean + std·T(z), merged with the mask · λ.
          const dec = rot.decoupled!;
          const knownT = rot.adjoint(yk); // T Aᵀ y = Mᵀ y in T-space; Aᵀ y itself is in x-space
          const kT = dec.transform(knownT);
          const noisy = tf.add(tf.mul(kT, vp.alpha(t)), tf.mul(dec.transform(z), vp.std(t)));
          const lm = tf.mul(dec.mask, lambda);
          const merged = tf.add(tf.mul(noisy, lm), tf.mul(dec.transform(x), tf.sub(1, lm)));
          const theirs = dec.inverse(merged);
          return tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0];
        });
        expect(err, `λ ${lambda}, t ${t}`).toBeLessThan(2e-6);
      }
    }
    expect(countTensors()).toBe(before);
    rot.dispose();
  });

  it('PC: 2N data-consistency steps (x_T, then after each corrector and each predictor but the last), N + 1 NFE, ‖A x − y‖ ≈ 0', async () => {
    const before = countTensors();
    const res = await conditionalSample({ ...base(), seed: 3, samplerOptions: { steps: 6 } });
    expect((res.stats as LambdaProjectionStats).projections).toBe(12);
    expect(res.stats.nfe).toBe(2 * 6 + 1);
    expect((res.stats as LambdaProjectionStats).lambda).toBe(1);
    // The hard merge leaves A x = y up to float32 rounding of the two matrix products (entries of size ≈ 1).
    expect(Math.max(...res.residual)).toBeLessThan(1e-5);
    res.samples.dispose();
    const raw = await conditionalSample({ ...base(), seed: 3, finalDenoise: false, samplerOptions: { steps: 6 } });
    // Without the final merge the last predictor's noise (σ ≈ σ_min·√(2 ln(σ_max/σ_min)/N)) stays in A x.
    expect(Math.max(...raw.residual)).toBeGreaterThan(1e-3);
    expect(raw.stats.nfe).toBe(12);
    raw.samples.dispose();
    expect(countTensors()).toBe(before);
  });

  it("rides 'euler' and 'dpm-solver' through afterStep: x_T plus one step per solver step, residual ≈ 0", async () => {
    const before = countTensors();
    for (const sampler of ['euler', 'dpm-solver']) {
      const res = await conditionalSample({ ...base(), seed: 4, sampler, lambda: 0.841, samplerOptions: { steps: 5 } });
      expect((res.stats as LambdaProjectionStats).projections, sampler).toBe(6);
      expect(res.stats.nfe, sampler).toBe(6);
      expect(Math.max(...res.residual), sampler).toBeLessThan(1e-5);
      res.samples.dispose();
    }
    expect(countTensors()).toBe(before);
  });

  it('same seed ⇒ same samples; another seed ⇒ others', async () => {
    const go = async (seed: number) => {
      const r = await conditionalSample({ ...base(), seed, lambda: 0.5, samplerOptions: { steps: 4 } });
      const v = Array.from(await r.samples.data());
      r.samples.dispose();
      return v;
    };
    const [a, a2, c] = [await go(8), await go(8), await go(9)];
    expect(a2).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('frees every tensor when the score throws mid-run or in the final Tweedie step, and when aborted', async () => {
    const before = countTensors();
    for (const failAt of [4, 9]) {
      let calls = 0;
      const failing: ScoreFn = (x, t) => {
        if (++calls === failAt) throw new Error(`score failed at call ${failAt}`);
        return gaussScore(x, t);
      };
      // steps 4: 8 carrier calls, the 9th is the final Tweedie step.
      await expect(
        conditionalSample({ ...base(), score: failing, seed: 1, samplerOptions: { steps: 4 } }),
      ).rejects.toThrow(`score failed at call ${failAt}`);
      expect(calls).toBe(failAt);
      expect(countTensors(), `fail at ${failAt}`).toBe(before);
    }
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, samplerOptions: { steps: 10 }, ...abortAtStep(3) }),
      'ABORTED',
      /pc/,
    );
    expect(countTensors()).toBe(before);
  });

  it('bad input: one SbmError naming the argument, nothing leaked', async () => {
    const before = countTensors();
    const noPinv: LinearOperator = { ...op, name: 'no-pinv', pinv: undefined };
    await expectRejectsSbm(
      conditionalSample({ ...base(), operator: noPinv, seed: 1 }),
      'INVALID_ARGUMENT',
      /operator: method "lambda-projection" needs the pseudo-inverse operator\.pinv .* got "no-pinv"/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, lambda: 1.5 }),
      'INVALID_ARGUMENT',
      /lambda: expected a finite number >= 0 <= 1, got 1\.5/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, finalDenoise: 'yes' }),
      'INVALID_ARGUMENT',
      /finalDenoise: expected a boolean, got "yes"/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, lamda: 0.5 }),
      'INVALID_ARGUMENT',
      /unknown option "lamda".*lambda/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, sampler: 'ode' }),
      'INVALID_ARGUMENT',
      /sampler: method "lambda-projection" needs a fixed-step SDE sampler/,
    );
    await expectRejectsSbm(
      conditionalSample({ ...base(), seed: 1, samplerOptions: { init: y } }),
      'INVALID_ARGUMENT',
      /samplerOptions\.init: method "lambda-projection" sets init/,
    );
    expect(countTensors()).toBe(before);
  });
});

// Against the exact posterior of the 2-D Gaussian prior (GaussianMixture#condition with noise 0: the posterior lives
// on the line A x = y). wasm only, as projection.test.ts: the oracle score is ≈ 7× faster there. The multimodal case
// is in projection.test.ts (λ = 1 on a mask is the same replacement, and gives the same samples within rounding).
describeWithBackends(
  'lambda-projection against the exact posterior',
  () => {
    const n = 1000;

    /** Runs λ-projection with operator A on y; returns the coordinate along the posterior line (unit vector u). */
    async function run(a: M, yv: number, u: number[], extra: Record<string, unknown>) {
      const prior = gaussian2d();
      const op = denseOperator(a);
      const before = countTensors();
      const y = tf.fill([n, 1], yv);
      const res = await conditionalSample({
        method: 'lambda-projection',
        sde: ve,
        score: prior.perturbed(ve).scoreFn,
        shape: [n, 2],
        seed: 7,
        operator: op,
        y,
        ...extra,
      });
      const post = prior.condition({ A: a, y: [yv], noise: 0 });
      const refs = [0, 1, 2, 3].map((k) => post.sample(n, 100 + k));
      const floor = floorOf(refs);
      const d = meanSwd(res.samples, refs);
      const priorSet = prior.sample(n, 5);
      const dPrior = meanSwd(priorSet, refs);
      const v = await res.samples.data();
      tf.dispose([...refs, priorSet, res.samples, y]);
      expect(countTensors()).toBe(before);
      op.dispose();
      const c = Array.from({ length: n }, (_, i) => u[0] * v[2 * i] + u[1] * v[2 * i + 1]);
      const mean = c.reduce((s, e) => s + e, 0) / n;
      const variance = c.reduce((s, e) => s + (e - mean) ** 2, 0) / (n - 1);
      const along = (m: number[]) => u[0] * m[0] + u[1] * m[1];
      const pc = post.covariance();
      const exactVar = u[0] * (pc[0][0] * u[0] + pc[0][1] * u[1]) + u[1] * (pc[1][0] * u[0] + pc[1][1] * u[1]);
      return {
        mean,
        variance,
        exactMean: along(post.mean()),
        priorMean: along(prior.mean()),
        exactVar,
        d,
        floor,
        dPrior,
        res,
      };
    }
    const report = (label: string, r: Awaited<ReturnType<typeof run>>) => {
      const se = Math.sqrt(r.exactVar / n);
      console.log(
        `[lambda-projection] ${label}: mean ${r.mean.toFixed(4)} (exact ${r.exactMean.toFixed(4)}, z ${((r.mean - r.exactMean) / se).toFixed(2)}, prior ${r.priorMean.toFixed(2)}) var ${r.variance.toFixed(4)} (${r.exactVar.toFixed(4)}) swd ${r.d.toFixed(4)} floor ${r.floor.toFixed(4)} prior ${r.dPrior.toFixed(3)} nfe ${r.res.stats.nfe} residual ${Math.max(...r.res.residual).toExponential(1)}`,
      );
    };

    it('x₀ = 1.5 observed (A = [1, 0]), λ = 1 on PC (60 steps): mean within 4 SE, variance within 10 %, A x = y', async () => {
      // As projection.test.ts: exact-ish, with the replacement's small variance inflation (declared 10 % allowance).
      const r = await run([[1, 0]], 1.5, [0, 1], { samplerOptions: { steps: 60 } });
      report('gaussian2d, A = [1, 0], PC 60', r);
      const seMean = Math.sqrt(r.exactVar / n);
      const seVar = r.exactVar * Math.sqrt(2 / (n - 1));
      expect(Math.max(...r.res.residual)).toBeLessThan(1e-6);
      expect(Math.abs(r.mean - r.exactMean)).toBeLessThan(4 * seMean);
      expect(Math.abs(r.variance - r.exactVar)).toBeLessThan(4 * seVar + 0.1 * r.exactVar);
      expect(r.res.stats.nfe).toBe(121);
    });

    it('a rotated measurement (A = [0.8, −0.6]), λ = 1 on PC (60 steps): A x = y, but strongly under-conditioned', async () => {
      // The measured direction has prior variance 0.24, the unseen one 1.26 with correlation 0.74: the measurement
      // informs the unseen coordinate only once σ_t ≲ 0.5, too late for it to move (observed at 100 steps: mean
      // −0.28 where the prior has 0.40 and the posterior −1.10, variance 0.92 against 0.57; swd 0.61 against the
      // prior's 1.35). Asserted, honestly: the constraint holds, and the mean moves from the prior's towards the
      // posterior's by more than 4 SE.
      const r = await run([[0.8, -0.6]], 1.3, [0.6, 0.8], { samplerOptions: { steps: 60 } });
      report('gaussian2d, A = [0.8, -0.6], PC 60', r);
      const seMean = Math.sqrt(r.exactVar / n);
      expect(Math.max(...r.res.residual)).toBeLessThan(1e-5);
      expect(r.mean).toBeLessThan(r.priorMean - 4 * seMean);
      expect(r.d).toBeLessThan(r.dPrior);
    });
  },
  { backends: ['wasm'] },
);
