import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { withLeakCheck, disposeAll } from '@sbm/core';
import {
  ReverseSde,
  SubVpSde,
  TutorialVeSde,
  VeSde,
  VpSde,
  createSde,
  listSdes,
  registerSde,
  unregisterSde,
  type Sde,
} from '@sbm/sde';
import { describeWithBackends, expectThrowsSbm } from '@sbm/test-harness';

// ---- independent closed forms (REFERENCE.md; Song et al. 2021, eqs. 30–34; Song's MNIST tutorial) -------------

interface Closed {
  f: (t: number) => number; // drift coefficient f(t) in f(x, t) = f(t) x
  g: (t: number) => number;
  alpha: (t: number) => number;
  std: (t: number) => number;
  priorStd: number;
}

function veClosed(sMin = 0.01, sMax = 50, T = 1): Closed {
  const sigma = (t: number): number => sMin * (sMax / sMin) ** (t / T);
  return {
    f: () => 0,
    g: (t) => sigma(t) * Math.sqrt((2 * Math.log(sMax / sMin)) / T),
    alpha: () => 1,
    std: sigma,
    priorStd: sMax,
  };
}

function vpClosed(b0 = 0.1, b1 = 20, T = 1, sub = false): Closed {
  // β is defined per unit of s = t/T, so in t the rates carry 1/T.
  const beta = (t: number): number => b0 + (t / T) * (b1 - b0);
  const logAlpha = (t: number): number => -0.25 * (t / T) ** 2 * (b1 - b0) - 0.5 * (t / T) * b0;
  return {
    f: (t) => (-0.5 * beta(t)) / T,
    g: (t) =>
      sub
        ? Math.sqrt((beta(t) * (1 - Math.exp(-2 * b0 * (t / T) - (b1 - b0) * (t / T) ** 2))) / T)
        : Math.sqrt(beta(t) / T),
    alpha: (t) => Math.exp(logAlpha(t)),
    std: (t) => (sub ? 1 - Math.exp(2 * logAlpha(t)) : Math.sqrt(1 - Math.exp(2 * logAlpha(t)))),
    priorStd: 1,
  };
}

function tutorialClosed(sigma = 25): Closed {
  return {
    f: () => 0,
    g: (t) => sigma ** t,
    alpha: () => 1,
    std: (t) => Math.sqrt((sigma ** (2 * t) - 1) / (2 * Math.log(sigma))),
    priorStd: Math.sqrt((sigma ** 2 - 1) / (2 * Math.log(sigma))),
  };
}

const cases: { name: string; make: () => Sde; closed: Closed }[] = [
  { name: 've', make: () => new VeSde(), closed: veClosed() },
  { name: 'vp', make: () => new VpSde(), closed: vpClosed() },
  { name: 'subvp', make: () => new SubVpSde(), closed: vpClosed(0.1, 20, 1, true) },
  { name: 'tutorial-ve', make: () => new TutorialVeSde(), closed: tutorialClosed() },
  {
    name: 've (T = 2, σ 0.1..20)',
    make: () => new VeSde({ sigmaMin: 0.1, sigmaMax: 20, T: 2 }),
    closed: veClosed(0.1, 20, 2),
  },
  {
    name: 'vp (T = 2, β 0.5..10)',
    make: () => new VpSde({ betaMin: 0.5, betaMax: 10, T: 2 }),
    closed: vpClosed(0.5, 10, 2),
  },
  {
    name: 'subvp (T = 2)',
    make: () => new SubVpSde({ betaMin: 0.1, betaMax: 20, T: 2 }),
    closed: vpClosed(0.1, 20, 2, true),
  },
];

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

describe('reference values', () => {
  it('tutorial VE prior std is ≈ 9.85, not 25', () => {
    expect(new TutorialVeSde().priorStd).toBeCloseTo(9.8451, 3);
  });
  it('VE σ(1) = σ_max, VP α(1) = e^{−5.025}', () => {
    expect(new VeSde().std(1)).toBeCloseTo(50, 10);
    expect(new VpSde().alpha(1)).toBeCloseTo(Math.exp(-0.25 * 19.9 - 0.05), 12);
  });
});

describe('scalar coefficients (float64) vs closed forms', () => {
  for (const c of cases) {
    it(c.name, () => {
      const sde = c.make();
      const T = sde.T;
      for (const s of [0, 1e-5, 1e-3, 0.1, 0.37, 0.5, 0.9, 1]) {
        const t = s * T;
        expect(rel(sde.driftCoef(t), c.closed.f(t)) < 1e-12 || Math.abs(sde.driftCoef(t)) < 1e-300).toBe(true);
        expect(rel(sde.diffusion(t), c.closed.g(t))).toBeLessThan(1e-11);
        expect(rel(sde.alpha(t), c.closed.alpha(t))).toBeLessThan(1e-12);
        if (c.closed.std(t) === 0) expect(sde.std(t)).toBe(0);
        else expect(rel(sde.std(t), c.closed.std(t))).toBeLessThan(1e-9);
      }
      expect(rel(sde.priorStd, c.closed.priorStd)).toBeLessThan(1e-12);
    });
  }
});

describe('the variance ODE holds (a check of f, g, α, σ together)', () => {
  // For dx = f x dt + g dw with x_0 fixed, the kernel N(α x_0, Σ I) satisfies dα/dt = f α and dΣ/dt = 2 f Σ + g²
  // (Särkkä & Solin 2019, eq. 6.2). VE: dσ²/dt = g²; VP: Σ = 1 − α²; sub-VP: Σ = (1 − α²)²; tutorial: dσ²/dt = g².
  // Central differences with h = 1e-5·T: truncation error O(h²) ≈ 1e-10 relative, round-off ≈ 1e-16/h ≈ 1e-11.
  for (const c of cases) {
    it(c.name, () => {
      const sde = c.make();
      const T = sde.T;
      const h = 1e-5 * T;
      for (const s of [0.01, 0.1, 0.3, 0.5, 0.8, 0.99]) {
        const t = s * T;
        const v = (u: number): number => sde.std(u) ** 2;
        const dv = (v(t + h) - v(t - h)) / (2 * h);
        const rhs = 2 * sde.driftCoef(t) * v(t) + sde.diffusion(t) ** 2;
        expect(rel(dv, rhs)).toBeLessThan(1e-6);
        const da = (sde.alpha(t + h) - sde.alpha(t - h)) / (2 * h);
        expect(Math.abs(da - sde.driftCoef(t) * sde.alpha(t))).toBeLessThan(1e-6 * Math.max(1, Math.abs(da)));
      }
    });
  }
});

describe('lambda / edmSigma and their inverses', () => {
  for (const c of cases) {
    it(`${c.name}: λ = ln α − ln σ, σ_EDM = σ/α, and both round-trip through t`, () => {
      const sde = c.make();
      const T = sde.T;
      let prevL = Infinity;
      let prevS = 0;
      for (const s of [1e-3, 0.05, 0.2, 0.5, 0.75, 1]) {
        const t = s * T;
        const lam = sde.lambda(t);
        expect(lam).toBeCloseTo(Math.log(c.closed.alpha(t) / c.closed.std(t)), 8);
        expect(lam).toBeLessThan(prevL);
        prevL = lam;
        const es = sde.edmSigma(t);
        expect(rel(es, c.closed.std(t) / c.closed.alpha(t))).toBeLessThan(1e-9);
        expect(es).toBeGreaterThan(prevS);
        prevS = es;
        expect(Math.abs(sde.tFromLambda(lam) - t)).toBeLessThan(1e-8 * T);
        expect(Math.abs(sde.tFromEdmSigma(es) - t)).toBeLessThan(1e-8 * T);
      }
      // the ends and beyond: clamped to [0, T]; NaN and negative σ rejected
      expect(sde.tFromLambda(Infinity)).toBe(0);
      expect(sde.tFromLambda(-Infinity)).toBe(T);
      expect(sde.tFromEdmSigma(0)).toBe(0);
      expect(sde.tFromEdmSigma(Infinity)).toBe(T);
      expectThrowsSbm(
        () => sde.tFromLambda(NaN),
        'INVALID_ARGUMENT',
        /lambda: expected a number \(half log-SNR\), got NaN/,
      );
      expectThrowsSbm(
        () => sde.tFromEdmSigma(-1),
        'INVALID_ARGUMENT',
        /sigma: expected a number >= 0 \(EDM noise level\), got -1/,
      );
      expectThrowsSbm(() => sde.tFromEdmSigma(NaN), 'INVALID_ARGUMENT', /sigma: expected a number >= 0/);
      expect(sde.tFromLambda(sde.lambda(T) - 5)).toBe(T);
      expect(sde.tFromEdmSigma(sde.edmSigma(T) * 10)).toBe(T);
    });
  }
  it('VP closed-form tFromLambda agrees with the generic bisection', () => {
    const vp = new VpSde();
    const sub = new SubVpSde(); // same α, different σ: uses the generic bisection; compare via VP's α alone
    for (const t of [0.01, 0.3, 0.9]) {
      const lam = vp.lambda(t);
      const bisect = (Object.getPrototypeOf(Object.getPrototypeOf(vp)) as Sde).tFromLambda.call(vp, lam);
      expect(Math.abs(vp.tFromLambda(lam) - bisect)).toBeLessThan(1e-9);
      expect(sub.alpha(t)).toBe(vp.alpha(t));
    }
    // very negative λ: e^{−2λ} overflows float64 unless computed as a softplus
    expect(vp.tFromLambda(-400)).toBe(1);
    expect(vp.tFromLambda(-3)).toBeCloseTo(
      (Object.getPrototypeOf(Object.getPrototypeOf(vp)) as Sde).tFromLambda.call(vp, -3),
      9,
    );
  });
});

describe('registry', () => {
  it('has the four built-in SDEs and creates them from JSON', () => {
    expect(listSdes()).toEqual(expect.arrayContaining(['ve', 'vp', 'subvp', 'tutorial-ve']));
    const vp = createSde({ name: 'vp', betaMin: 0.2, betaMax: 10, N: 500 }) as VpSde;
    expect(vp).toBeInstanceOf(VpSde);
    expect([vp.betaMin, vp.betaMax, vp.N, vp.T]).toEqual([0.2, 10, 500, 1]);
    expect(createSde('subvp')).toBeInstanceOf(SubVpSde);
    expect(createSde(JSON.parse('{"name":"tutorial-ve","sigma":10}')).priorStd).toBeCloseTo(
      tutorialClosed(10).priorStd,
      10,
    );
  });
  it('toConfig round-trips through createSde', () => {
    for (const c of cases) {
      const sde = c.make();
      const again = createSde(JSON.parse(JSON.stringify(sde.toConfig())));
      expect(again.name).toBe(sde.name);
      expect(again.toConfig()).toEqual(sde.toConfig());
      expect(again.std(0.3 * sde.T)).toBe(sde.std(0.3 * sde.T));
    }
  });
  it('names the unknown SDE and lists the known ones', () => {
    expectThrowsSbm(
      () => createSde({ name: 'vpp' }),
      'UNKNOWN_NAME',
      /sde\.name: expected one of .*"ve", "vp".*got "vpp"/,
    );
    expectThrowsSbm(
      () => createSde(42 as unknown as string),
      'INVALID_ARGUMENT',
      /sde: expected a config \{ name: string/,
    );
  });
  it('rejects an unknown option, naming it and the allowed ones', () => {
    expectThrowsSbm(
      () => createSde({ name: 'vp', beta: 3 }),
      'INVALID_ARGUMENT',
      /sde\.beta: not an option of the "vp" SDE \(expected one of betaMin, betaMax, N, T\)/,
    );
  });
  it('rejects invalid option values with the option name', () => {
    expectThrowsSbm(
      () => createSde({ name: 've', sigmaMax: 0.001 }),
      'INVALID_ARGUMENT',
      /sigmaMax: expected a finite number > 0.01, got 0.001/,
    );
    expectThrowsSbm(() => new VpSde({ N: 2.5 }), 'INVALID_ARGUMENT', /N: expected an integer >= 1, got 2.5/);
    expectThrowsSbm(
      () => new TutorialVeSde({ sigma: 1 }),
      'INVALID_ARGUMENT',
      /sigma: expected a finite number > 1, got 1/,
    );
  });
  it('refuses duplicate names unless overriding, and validates names', () => {
    const factory = (): Sde => new VpSde({ betaMax: 7 });
    expectThrowsSbm(() => registerSde('vp', factory), 'DUPLICATE_NAME', /an SDE named "vp" is already registered/);
    registerSde('test-vp7', factory);
    try {
      expect((createSde('test-vp7') as VpSde).betaMax).toBe(7);
      expectThrowsSbm(() => registerSde('test-vp7', factory), 'DUPLICATE_NAME', /"test-vp7"/);
      registerSde('test-vp7', () => new VpSde({ betaMax: 9 }), { override: true });
      expect((createSde('test-vp7') as VpSde).betaMax).toBe(9);
    } finally {
      expect(unregisterSde('test-vp7')).toBe(true);
    }
    expect(listSdes()).not.toContain('test-vp7');
    expectThrowsSbm(
      () => registerSde('has space', factory),
      'INVALID_ARGUMENT',
      /name: expected a name like "cosine-vp", got "has space"/,
    );
    expectThrowsSbm(
      () => registerSde('ok', 3 as unknown as () => Sde),
      'INVALID_ARGUMENT',
      /factory: expected a function, got 3/,
    );
  });
});

// ---- tensor API, on every backend -------------------------------------------------------------------------------

const TS = [0, 1e-3, 0.1, 0.37, 0.5, 0.9, 1];

describeWithBackends('Sde tensor API', () => {
  for (const c of cases) {
    it(`${c.name}: tensor coefficients match the closed forms (float32)`, () => {
      const sde = c.make();
      const ts = TS.map((s) => s * sde.T);
      const [f, g, a, s] = tf.tidy(() => {
        const t = tf.tensor1d(ts);
        return [sde.driftCoefT(t), sde.diffusionT(t), sde.alphaT(t), sde.stdT(t)].map((x) => Array.from(x.dataSync()));
      });
      ts.forEach((t, i) => {
        expect(Math.abs(f[i] - c.closed.f(t))).toBeLessThan(2e-6 * Math.max(1, Math.abs(c.closed.f(t))));
        expect(rel(g[i], c.closed.g(t))).toBeLessThan(2e-5);
        expect(rel(a[i], c.closed.alpha(t))).toBeLessThan(2e-5);
        // σ near t = 0 loses relative accuracy to the float32 rounding of t itself; compare absolutely there
        expect(Math.abs(s[i] - c.closed.std(t))).toBeLessThan(2e-5 * Math.max(c.closed.std(t), 1e-3));
      });
    });
  }

  for (const c of cases) {
    it(`${c.name}: sde(), marginalProb(), perturb()`, () => {
      const sde = c.make();
      const ts = [0.05, 0.5, 0.95].map((s) => s * sde.T);
      const x0v = [
        [1, -2, 0.5, 3],
        [0, 1, 2, -1],
        [4, 4, -4, 0.25],
      ];
      const out = tf.tidy(() => {
        const x0 = tf.tensor3d(x0v.map((r) => [r.slice(0, 2), r.slice(2)]));
        const t = tf.tensor1d(ts);
        const co = sde.sde(x0, t);
        const mp = sde.marginalProb(x0, t);
        const p1 = sde.perturb(x0, t, 7);
        const p2 = sde.perturb(x0, t, 7);
        return {
          drift: co.drift.arraySync() as number[][][],
          diffusion: Array.from(co.diffusion.dataSync()),
          mean: mp.mean.arraySync() as number[][][],
          std: Array.from(mp.std.dataSync()),
          xt: p1.xt.dataSync(),
          z: p1.z.dataSync(),
          pstd: Array.from(p1.std.dataSync()),
          xt2: p2.xt.dataSync(),
          shape: p1.xt.shape,
        };
      });
      expect(out.shape).toEqual([3, 2, 2]);
      ts.forEach((t, b) => {
        const flatX = x0v[b];
        const drift = out.drift[b].flat();
        const mean = out.mean[b].flat();
        flatX.forEach((x, j) => {
          expect(Math.abs(drift[j] - c.closed.f(t) * x)).toBeLessThan(1e-4 * Math.max(1, Math.abs(c.closed.f(t) * x)));
          expect(Math.abs(mean[j] - c.closed.alpha(t) * x)).toBeLessThan(1e-5 * Math.max(1, Math.abs(x)));
          // x_t = α x_0 + σ z with the noise it returns
          const xt = out.xt[b * 4 + j];
          expect(Math.abs(xt - (c.closed.alpha(t) * x + c.closed.std(t) * out.z[b * 4 + j]))).toBeLessThan(
            1e-4 * Math.max(1, Math.abs(xt)),
          );
        });
        expect(rel(out.diffusion[b], c.closed.g(t))).toBeLessThan(2e-5);
        expect(rel(out.std[b], c.closed.std(t))).toBeLessThan(2e-5);
        expect(out.pstd[b]).toBe(out.std[b]);
      });
      expect(Array.from(out.xt2)).toEqual(Array.from(out.xt)); // seeded
    });
  }

  it('discretize: SMLD chain for VE (score_sde VESDE.discretize)', () => {
    const sde = new VeSde({ N: 10 });
    // t = (i + 0.3)/(N − 1) lands in bin i = ⌊t (N − 1)⌋
    const idx = [0, 1, 5, 9];
    const ts = idx.map((i) => Math.min(1, (i + 0.3) / 9));
    const sig = (i: number): number => 0.01 * 5000 ** (i / 9);
    const { f, G } = tf.tidy(() => {
      const d = sde.discretize(tf.ones([4, 3]), tf.tensor1d(ts));
      return { f: Array.from(d.f.dataSync()), G: Array.from(d.G.dataSync()) };
    });
    expect(f.every((v) => v === 0)).toBe(true);
    idx.forEach((i, b) => {
      const expected = Math.sqrt(sig(i) ** 2 - (i === 0 ? 0 : sig(i - 1) ** 2));
      expect(rel(G[b], expected)).toBeLessThan(2e-5);
    });
  });

  it('discretize: DDPM chain for VP (score_sde VPSDE.discretize)', () => {
    const N = 100; // β_max/N < 1, as DDPM needs
    const sde = new VpSde({ N });
    const idx = [0, 37, 98];
    const ts = idx.map((i) => (i + 0.5) / (N - 1));
    const betaI = (i: number): number => 0.1 / N + (i / (N - 1)) * (20 / N - 0.1 / N);
    const x = [
      [1, 2],
      [-3, 0.5],
      [2, 2],
    ];
    const { f, G, ca } = tf.tidy(() => {
      const t = tf.tensor1d(ts);
      const d = sde.discretize(tf.tensor2d(x), t);
      return {
        f: d.f.arraySync() as number[][],
        G: Array.from(d.G.dataSync()),
        ca: Array.from(sde.correctorAlphaT(t).dataSync()),
      };
    });
    idx.forEach((i, b) => {
      const bi = betaI(i);
      x[b].forEach((v, j) => expect(Math.abs(f[b][j] - (Math.sqrt(1 - bi) - 1) * v)).toBeLessThan(1e-6));
      expect(rel(G[b], Math.sqrt(bi))).toBeLessThan(1e-5);
      expect(Math.abs(ca[b] - (1 - bi))).toBeLessThan(1e-6);
    });
  });

  it('discretize: Euler–Maruyama for sub-VP and tutorial VE (f = drift·Δt, G = g √Δt); corrector α = 1 for VE', () => {
    for (const c of [cases[2], cases[3]]) {
      const sde = c.make();
      const dt = sde.T / sde.N;
      const ts = [0.2, 0.7];
      const { f, G } = tf.tidy(() => {
        const d = sde.discretize(
          tf.tensor2d([
            [1, -1],
            [2, 0.5],
          ]),
          tf.tensor1d(ts),
        );
        return { f: d.f.arraySync() as number[][], G: Array.from(d.G.dataSync()) };
      });
      expect(Math.abs(f[0][0] - c.closed.f(0.2) * dt)).toBeLessThan(1e-7);
      expect(Math.abs(f[1][1] - c.closed.f(0.7) * 0.5 * dt)).toBeLessThan(1e-7);
      expect(rel(G[1], c.closed.g(0.7) * Math.sqrt(dt))).toBeLessThan(2e-5);
    }
    const ca = tf.tidy(() => Array.from(new VeSde().correctorAlphaT(tf.tensor1d([0.1, 0.9])).dataSync()));
    expect(ca).toEqual([1, 1]);
  });

  for (const c of cases.slice(0, 4)) {
    it(`${c.name}: priorLogp is −D/2 ln(2π s²) − ‖z‖²/(2s²)`, () => {
      const sde = c.make();
      const s2 = c.closed.priorStd ** 2;
      const zv = [
        [0.5, -1, 2, 0, 1, 3],
        [10, 0, -7, 1, 1, 1],
      ];
      const lp = tf.tidy(() =>
        Array.from(sde.priorLogp(tf.tensor3d(zv.map((r) => [r.slice(0, 3), r.slice(3)]))).dataSync()),
      );
      zv.forEach((z, b) => {
        const expected = -3 * Math.log(2 * Math.PI * s2) - z.reduce((a, v) => a + v * v, 0) / (2 * s2);
        expect(Math.abs(lp[b] - expected)).toBeLessThan(1e-5 * Math.abs(expected));
      });
    });

    it(`${c.name}: priorSampling has mean 0 and variance s² (n = 40000; 5 standard errors)`, () => {
      const sde = c.make();
      const s = c.closed.priorStd;
      const n = 10000;
      const v = tf.tidy(() => sde.priorSampling([n, 2, 2], 3).dataSync());
      const N = v.length;
      let sum = 0;
      let sq = 0;
      for (const x of v) {
        sum += x;
        sq += x * x;
      }
      // mean of N draws: sd s/√N; variance estimate: sd s²√(2/N) (Gaussian fourth moment)
      expect(Math.abs(sum / N)).toBeLessThan((5 * s) / Math.sqrt(N));
      expect(Math.abs(sq / N - s * s)).toBeLessThan(5 * s * s * Math.sqrt(2 / N));
      const again = tf.tidy(() => sde.priorSampling([3, 2], 3).dataSync());
      const again2 = tf.tidy(() => sde.priorSampling([3, 2], 3).dataSync());
      expect(Array.from(again)).toEqual(Array.from(again2));
    });
  }

  it('reverse(): drift f − g² s, flow f − ½ g² s with zero diffusion; discretize likewise', () => {
    for (const c of cases.slice(0, 4)) {
      const sde = c.make();
      // a non-trivial score that depends on x and t
      const score = (x: tf.Tensor, t: tf.Tensor1D): tf.Tensor =>
        tf.tidy(() => tf.add(tf.mul(x, -0.7), tf.reshape(t, [t.shape[0], 1])));
      const xv = [
        [1, 2],
        [-1, 0.5],
      ];
      const ts = [0.25, 0.8];
      const res = tf.tidy(() => {
        const x = tf.tensor2d(xv);
        const t = tf.tensor1d(ts);
        const r = sde.reverse(score);
        const p = sde.reverse(score, { probabilityFlow: true });
        const fwd = sde.discretize(x, t);
        return {
          rd: r.sde(x, t).drift.arraySync() as number[][],
          rg: Array.from(r.sde(x, t).diffusion.dataSync()),
          pd: p.sde(x, t).drift.arraySync() as number[][],
          pg: Array.from(p.sde(x, t).diffusion.dataSync()),
          rf: r.discretize(x, t).f.arraySync() as number[][],
          rG: Array.from(r.discretize(x, t).G.dataSync()),
          pf: p.discretize(x, t).f.arraySync() as number[][],
          pG: Array.from(p.discretize(x, t).G.dataSync()),
          ff: fwd.f.arraySync() as number[][],
          fG: Array.from(fwd.G.dataSync()),
        };
      });
      ts.forEach((t, b) => {
        const g2 = c.closed.g(t) ** 2;
        xv[b].forEach((x, j) => {
          const s = -0.7 * x + t;
          const tol = 1e-5 * Math.max(1, g2 * Math.abs(s));
          expect(Math.abs(res.rd[b][j] - (c.closed.f(t) * x - g2 * s))).toBeLessThan(tol);
          expect(Math.abs(res.pd[b][j] - (c.closed.f(t) * x - 0.5 * g2 * s))).toBeLessThan(tol);
          const G2 = res.fG[b] ** 2;
          expect(Math.abs(res.rf[b][j] - (res.ff[b][j] - G2 * s))).toBeLessThan(1e-5 * Math.max(1, G2 * Math.abs(s)));
          expect(Math.abs(res.pf[b][j] - (res.ff[b][j] - 0.5 * G2 * s))).toBeLessThan(
            1e-5 * Math.max(1, G2 * Math.abs(s)),
          );
        });
        expect(rel(res.rg[b], c.closed.g(t))).toBeLessThan(2e-5);
        expect(res.pg[b]).toBe(0);
        expect(res.rG[b]).toBe(res.fG[b]);
        expect(res.pG[b]).toBe(0);
      });
      const r = sde.reverse(score);
      expect(r).toBeInstanceOf(ReverseSde);
      expect([r.T, r.N, r.probabilityFlow]).toEqual([sde.T, sde.N, false]);
    }
  });

  it('input checks: shapes of x, t and the score', () => {
    const sde = new VpSde();
    const x = tf.zeros([4, 3]);
    const t3 = tf.zeros([3]) as tf.Tensor1D;
    const t4 = tf.zeros([4]) as tf.Tensor1D;
    const v = tf.zeros([4]);
    expectThrowsSbm(() => sde.marginalProb(x, t3), 'INVALID_SHAPE', /t: expected shape \[4\], got \[3\]/);
    expectThrowsSbm(() => sde.sde(v, t4), 'INVALID_SHAPE', /x: expected a tensor of rank >= 2, got shape \[4\]/);
    expectThrowsSbm(() => sde.perturb(v, t4, 1), 'INVALID_SHAPE', /x0: expected a tensor of rank >= 2/);
    expectThrowsSbm(() => sde.discretize(x, t3), 'INVALID_SHAPE', /t: expected shape \[4\]/);
    expectThrowsSbm(
      () => sde.marginalProb(x, [0, 1] as unknown as tf.Tensor1D),
      'INVALID_ARGUMENT',
      /t: expected a tf.Tensor, got array of length 2/,
    );
    expectThrowsSbm(
      () => sde.priorSampling([4], 1),
      'INVALID_SHAPE',
      /shape: expected \[batch, \.\.\.dims\] of positive integers, got \[4\]/,
    );
    expectThrowsSbm(() => sde.priorLogp(v), 'INVALID_SHAPE', /z: expected a tensor of rank >= 2/);
    expectThrowsSbm(() => sde.perturb(x, t4, 0.5), 'INVALID_ARGUMENT', /seed: expected a safe integer, got 0.5/);
    expectThrowsSbm(
      () => sde.reverse(undefined as unknown as () => tf.Tensor),
      'INVALID_ARGUMENT',
      /score: expected a function/,
    );
    const bad = sde.reverse(() => tf.zeros([4, 2]));
    expectThrowsSbm(
      () => bad.sde(x, t4),
      'INVALID_SHAPE',
      /score: expected the score function to return a tensor of shape \[4, 3\], got \[4, 2\]/,
    );
    tf.dispose([x, t3, t4, v]);
  });

  it('leaks no tensors', async () => {
    const x = tf.ones([3, 2, 2]);
    const t = tf.tensor1d([0.1, 0.5, 0.9]);
    const score = (xx: tf.Tensor): tf.Tensor => tf.neg(xx);
    for (const c of cases) {
      const sde = c.make();
      const check = async (label: string, fn: () => unknown): Promise<void> => {
        disposeAll(await withLeakCheck(fn, `${c.name} ${label}`));
      };
      await check('sde', () => sde.sde(x, t));
      await check('marginalProb', () => sde.marginalProb(x, t));
      await check('perturb', () => sde.perturb(x, t, 1));
      await check('priorSampling', () => sde.priorSampling([2, 3], 1));
      await check('priorLogp', () => sde.priorLogp(x));
      await check('discretize', () => sde.discretize(x, t));
      await check('correctorAlphaT', () => sde.correctorAlphaT(t));
      await check('coefficients', () => [sde.driftCoefT(t), sde.diffusionT(t), sde.alphaT(t), sde.stdT(t)]);
      await check('scalars', () => [
        sde.alpha(0.3),
        sde.std(0.3),
        sde.lambda(0.3),
        sde.tFromLambda(0),
        sde.tFromEdmSigma(1),
      ]);
      for (const probabilityFlow of [false, true]) {
        const r = sde.reverse(score, { probabilityFlow });
        await check('reverse.sde', () => r.sde(x, t));
        await check('reverse.discretize', () => r.discretize(x, t));
      }
    }
    tf.dispose([x, t]);
  });
});

describe('VP discrete grid guard', () => {
  it('refuses a DDPM grid with beta_i >= 1 instead of returning NaN', () => {
    const vp = new VpSde({ N: 10 });
    const x = tf.zeros([2, 3]);
    const t = tf.tensor1d([0.5, 0.9]);
    expect(() => vp.discretize(x, t)).toThrow(
      /N: the discrete DDPM grid needs betaMax \/ N < 1, got betaMax 20 and N 10/,
    );
    expect(() => vp.correctorAlphaT(t)).toThrow(/betaMax \/ N < 1/);
    tf.dispose([x, t]);
  });
});
