import * as tf from '@tensorflow/tfjs';
import { isSde, type Sde } from './sde';
import { createSde, listSdes } from './registry';

/** One check of the suite: a name and a function that throws (a plain Error with a clear message) on failure. */
export interface ConformanceCase {
  name: string;
  run: () => void | Promise<void>;
}

export interface SdeConformanceOptions {
  /** Times to check at, as fractions of T (default 0.01, 0.1, 0.3, 0.5, 0.8, 0.99). */
  times?: number[];
  /**
   * Relative tolerance of the float32 tensor forms against the float64 forms (default 3e-5). Both are evaluated at
   * the same float32-rounded t, so this is float32 arithmetic alone: 2^-24 ≈ 6e-8 per operation, amplified by the
   * condition number of the schedule (exp of a log-scale up to ~10, tan near π/2 in a cosine schedule: ~200).
   */
  float32Tolerance?: number;
  /**
   * How far the prior may sit from the marginal of x_T for data of std `dataStd`: |√(α(T)² d² + σ(T)²)/priorStd − 1|
   * (default 0.01). VP-type SDEs meet it exactly; VE-type ones by σ_max ≫ d.
   */
  priorTolerance?: number;
  /** Data scale of the prior check (default 1). */
  dataStd?: number;
  /** Check the config round trip through createSde: default when `sde.name` is registered. */
  roundTrip?: boolean;
  /** Prefix of every case name (default the SDE's name). */
  label?: string;
}

const EPS64 = 2 ** -52;

class ConformanceError extends Error {
  constructor(label: string, message: string) {
    super(`${label}: ${message}`);
    this.name = 'ConformanceError';
  }
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toPrecision(8) : String(x));

/**
 * A runner-agnostic conformance suite for an SDE (built-in or plugin): closed-form identities, the variance ODE,
 * tensor vs float64 forms, λ / σ_EDM inverses, the prior, the reverse SDE and probability flow, the discretization,
 * the config round trip and tensor leaks. It imports no test framework; with vitest:
 *
 * ```ts
 * for (const c of sdeConformance(() => new OuSde())) it(c.name, c.run);
 * ```
 */
export function sdeConformance(make: () => Sde, opts: SdeConformanceOptions = {}): ConformanceCase[] {
  const fracs = opts.times ?? [0.01, 0.1, 0.3, 0.5, 0.8, 0.99];
  const tol32 = opts.float32Tolerance ?? 3e-5;
  const priorTol = opts.priorTolerance ?? 0.01;
  const dataStd = opts.dataStd ?? 1;
  const get = (): Sde => {
    const sde = make();
    if (!isSde(sde)) throw new Error(`sdeConformance: make() must return an Sde, got ${typeof sde}`);
    return sde;
  };
  // names must exist before any case runs (test runners read them when collecting)
  const label = opts.label ?? get().name;
  const fail = (msg: string): never => {
    throw new ConformanceError(label, msg);
  };
  const check = (ok: boolean, msg: () => string): void => {
    if (!ok) fail(msg());
  };
  const times = (sde: Sde): number[] => fracs.map((s) => s * sde.T);
  /** Float32-relative comparison with an absolute floor `scale` (for values that cross or touch 0). */
  const close32 = (what: string, got: number, want: number, scale = 0): void =>
    check(Math.abs(got - want) <= tol32 * Math.max(Math.abs(want), scale), () => {
      return `${what}: tensor form ${fmt(got)} vs float64 form ${fmt(want)} (tolerance ${tol32} relative)`;
    });
  const read = async (x: tf.Tensor): Promise<number[]> => Array.from(await x.data());
  const withCount = async (what: string, fn: () => Promise<void>): Promise<void> => {
    const before = tf.memory().numTensors;
    await fn();
    const after = tf.memory().numTensors;
    check(after === before, () => `${what}: ${after - before} tensor(s) leaked`);
  };

  const cases: ConformanceCase[] = [];
  const add = (name: string, run: (sde: Sde) => void | Promise<void>): void => {
    cases.push({
      name: `${label} conformance: ${name}`,
      run: () => run(get()),
    });
  };

  add('basic properties (T, N, samplingEps, priorStd, α(0) = 1, σ(0) ≈ 0, name, toConfig)', (sde) => {
    check(typeof sde.name === 'string' && sde.name.length > 0, () => `name: expected a non-empty string`);
    check(sde.T > 0 && Number.isFinite(sde.T), () => `T: expected > 0, got ${sde.T}`);
    check(Number.isInteger(sde.N) && sde.N >= 1, () => `N: expected an integer >= 1, got ${sde.N}`);
    check(
      sde.samplingEps > 0 && sde.samplingEps < sde.T,
      () => `samplingEps: expected in (0, T), got ${sde.samplingEps}`,
    );
    check(sde.priorStd > 0 && Number.isFinite(sde.priorStd), () => `priorStd: expected > 0, got ${sde.priorStd}`);
    // p_00 is (nearly) the data: α(0) = 1; σ(0) ≤ σ(samplingEps) (score_sde's VE has σ(0) = σ_min > 0)
    check(Math.abs(sde.alpha(0) - 1) <= 4 * EPS64, () => `alpha(0): expected 1, got ${fmt(sde.alpha(0))}`);
    check(sde.std(0) <= sde.std(sde.samplingEps), () => `std(0) ${sde.std(0)} > std(samplingEps)`);
    const cfg = sde.toConfig();
    check(
      cfg !== null && typeof cfg === 'object' && cfg.name === sde.name,
      () => `toConfig().name must be "${sde.name}"`,
    );
    const json = JSON.parse(JSON.stringify(cfg)) as unknown;
    check(
      JSON.stringify(json) === JSON.stringify(cfg),
      () => `toConfig() must be plain JSON, got ${JSON.stringify(cfg)}`,
    );
  });

  add('tensor forms (driftCoefT, diffusionT, alphaT, stdT) match the float64 forms', async (sde) => {
    const ts = times(sde).concat([0, sde.T]).map(Math.fround);
    const t = tf.tensor1d(ts);
    const [f, g, a, s] = tf.tidy(() => [sde.driftCoefT(t), sde.diffusionT(t), sde.alphaT(t), sde.stdT(t)]);
    try {
      for (const [x, n] of [
        [f, 'driftCoefT'],
        [g, 'diffusionT'],
        [a, 'alphaT'],
        [s, 'stdT'],
      ] as const) {
        check(
          x.shape.length === 1 && x.shape[0] === ts.length,
          () => `${n}: expected shape [${ts.length}], got [${x.shape}]`,
        );
        check(x.dtype === 'float32', () => `${n}: expected float32, got ${x.dtype}`);
      }
      const [fv, gv, av, sv] = await Promise.all([f, g, a, s].map(read));
      ts.forEach((u, i) => {
        // f may vanish (VE): then it is judged on the scale of g², the SDE's other rate
        close32(`driftCoef(${u})`, fv[i], sde.driftCoef(u), 1e-3 * sde.diffusion(u) ** 2);
        close32(`diffusion(${u})`, gv[i], sde.diffusion(u));
        close32(`alpha(${u})`, av[i], sde.alpha(u));
        close32(`std(${u})`, sv[i], sde.std(u), sde.std(sde.samplingEps) * 1e-3);
      });
    } finally {
      tf.dispose([t, f, g, a, s]);
    }
  });

  add('marginalProb and perturb are N(α x0, σ² I) with the tensor α, σ', async (sde) => {
    const ts = times(sde).slice(0, 3).map(Math.fround);
    const x0v = [1, -2, 0.5, 3, 0, 1, 2, -1, 4, 4, -4, 0.25];
    const x0 = tf.tensor3d(x0v, [3, 2, 2]);
    const t = tf.tensor1d(ts);
    const out = tf.tidy(() => {
      const mp = sde.marginalProb(x0, t);
      const p = sde.perturb(x0, t, 11);
      return [mp.mean, mp.std, p.xt, p.z, p.std, sde.stdT(t)];
    });
    try {
      const [mean, std, xt, z, pstd, stdT] = await Promise.all(out.map(read));
      check(out[2].shape.join() === '3,2,2', () => `perturb: xt shape [${out[2].shape}], expected [3, 2, 2]`);
      ts.forEach((u, b) => {
        check(
          std[b] === stdT[b] && pstd[b] === stdT[b],
          () => `marginalProb / perturb std differ from stdT at t = ${u}`,
        );
        for (let j = 0; j < 4; j++) {
          const k = b * 4 + j;
          const m = sde.alpha(u) * x0v[k];
          close32(`marginalProb mean (t = ${u})`, mean[k], m, 1);
          close32(`perturb xt = α x0 + σ z (t = ${u})`, xt[k], m + sde.std(u) * z[k], 1 + Math.abs(sde.std(u) * z[k]));
        }
      });
    } finally {
      tf.dispose([x0, t, ...out]);
    }
  });

  add('the variance ODE: dα/dt = f α and dσ²/dt = 2 f σ² + g² (float64 central differences)', (sde) => {
    // Central differences D_h; their error is estimated from D_h − D_2h (Richardson: truncation ∝ h², so
    // |D_h − exact| ≈ |D_h − D_2h|/3) plus round-off ≈ ε·|value|/h; a factor 8 of headroom over that estimate.
    const h = 1e-4 * sde.T;
    for (const t of times(sde)) {
      if (t - 2 * h < 0 || t + 2 * h > sde.T) continue;
      const v = (u: number): number => sde.std(u) ** 2;
      const pairs: [string, (u: number) => number, number][] = [
        ['dα/dt = f α', (u) => sde.alpha(u), sde.driftCoef(t) * sde.alpha(t)],
        ['dσ²/dt = 2 f σ² + g²', v, 2 * sde.driftCoef(t) * v(t) + sde.diffusion(t) ** 2],
      ];
      for (const [what, fn, rhs] of pairs) {
        const d1 = (fn(t + h) - fn(t - h)) / (2 * h);
        const d2 = (fn(t + 2 * h) - fn(t - 2 * h)) / (4 * h);
        const scale = Math.max(Math.abs(fn(t)), Math.abs(fn(t + 2 * h)), Math.abs(fn(t - 2 * h)));
        const tol = 8 * (Math.abs(d1 - d2) / 3 + (64 * EPS64 * scale) / h) + 1e3 * EPS64 * Math.abs(rhs);
        check(
          Math.abs(d1 - rhs) <= tol,
          () => `${what} at t = ${t}: d/dt ${fmt(d1)} vs ${fmt(rhs)} (tolerance ${tol.toExponential(2)})`,
        );
      }
    }
  });

  add('λ = ln α − ln σ and σ_EDM = σ/α are monotone and round-trip through tFromLambda / tFromEdmSigma', (sde) => {
    let prevL = Infinity;
    let prevS = 0;
    const ts = times(sde).concat([sde.T]);
    for (const t of ts) {
      const lam = sde.lambda(t);
      const es = sde.edmSigma(t);
      const want = Math.log(sde.alpha(t)) - Math.log(sde.std(t));
      check(
        Math.abs(lam - want) <= 16 * EPS64 * (1 + Math.abs(want)),
        () => `lambda(${t}) ${fmt(lam)} ≠ ln α − ln σ ${fmt(want)}`,
      );
      check(Math.abs(es - sde.std(t) / sde.alpha(t)) <= 16 * EPS64 * es, () => `edmSigma(${t}) ≠ σ/α`);
      check(lam < prevL, () => `lambda must decrease in t: λ(${t}) = ${fmt(lam)} after ${fmt(prevL)}`);
      check(es > prevS, () => `edmSigma must increase in t: ${fmt(es)} at t = ${t} after ${fmt(prevS)}`);
      prevL = lam;
      prevS = es;
      // the inverse is as good as λ's own rounding (a few ulps of |λ|, up to ~2^12 for closed forms through acos or
      // softplus) mapped to t through the slope dλ/dt; plus the bisection's 1e-15 T
      const k = 1e-5 * sde.T;
      const lo = Math.max(0, t - k);
      const hi = Math.min(sde.T, t + k);
      const slope = Math.abs((sde.lambda(hi) - sde.lambda(lo)) / (hi - lo));
      const tolL = 1e-13 * sde.T + (4096 * EPS64 * (1 + Math.abs(lam))) / slope;
      const tl = sde.tFromLambda(lam);
      check(Math.abs(tl - t) <= tolL, () => `tFromLambda(lambda(${t})) = ${tl} (tolerance ${tolL.toExponential(2)})`);
      const te = sde.tFromEdmSigma(es);
      const tolE = 1e-13 * sde.T + (4096 * EPS64 * (1 + Math.abs(Math.log(es)))) / slope;
      check(
        Math.abs(te - t) <= tolE,
        () => `tFromEdmSigma(edmSigma(${t})) = ${te} (tolerance ${tolE.toExponential(2)})`,
      );
    }
    check(sde.tFromLambda(Infinity) === 0, () => `tFromLambda(+∞) must be 0`);
    check(sde.tFromLambda(-Infinity) === sde.T, () => `tFromLambda(−∞) must be T`);
    check(sde.tFromEdmSigma(0) === 0, () => `tFromEdmSigma(0) must be 0`);
    check(sde.tFromEdmSigma(Infinity) === sde.T, () => `tFromEdmSigma(∞) must be T`);
    for (const [fn, arg] of [
      [() => sde.tFromLambda(NaN), 'tFromLambda(NaN)'],
      [() => sde.tFromEdmSigma(-1), 'tFromEdmSigma(-1)'],
    ] as const) {
      let threw = false;
      try {
        fn();
      } catch (e) {
        threw = (e as { code?: string }).code === 'INVALID_ARGUMENT';
      }
      check(threw, () => `${arg} must throw an SbmError INVALID_ARGUMENT`);
    }
  });

  add(`the prior N(0, priorStd² I) matches the marginal at T (relative ${priorTol} for data std ${dataStd})`, (sde) => {
    const a = sde.alpha(sde.T);
    const s = sde.std(sde.T);
    const marginal = Math.sqrt(a * a * dataStd * dataStd + s * s);
    check(
      Math.abs(marginal / sde.priorStd - 1) <= priorTol,
      () => `priorStd ${fmt(sde.priorStd)} vs the std √(α(T)² d² + σ(T)²) = ${fmt(marginal)} of x_T`,
    );
  });

  add('priorLogp is −D/2 ln(2π s²) − ‖z‖²/(2 s²); priorSampling is seeded and shaped', async (sde) => {
    const zv = [0.5, -1, 2, 0, 1, 3, 10, 0, -7, 1, 1, 1].map((v) => v * sde.priorStd);
    const z = tf.tensor3d(zv, [2, 2, 3]);
    const [lp, p1, p2] = tf.tidy(() => [sde.priorLogp(z), sde.priorSampling([3, 2], 5), sde.priorSampling([3, 2], 5)]);
    try {
      const got = await read(lp);
      const s2 = sde.priorStd ** 2;
      for (let b = 0; b < 2; b++) {
        const sq = zv.slice(b * 6, b * 6 + 6).reduce((acc, v) => acc + v * v, 0);
        const c = -3 * Math.log(2 * Math.PI * s2);
        const want = c - sq / (2 * s2);
        // float32: the sum of D = 6 squares and the two terms, each rounded: ≤ 16 D 2^-24 of their magnitudes
        const tol = 16 * 6 * 2 ** -24 * (Math.abs(c) + sq / (2 * s2));
        check(Math.abs(got[b] - want) <= tol, () => `priorLogp sample ${b}: ${fmt(got[b])} vs ${fmt(want)}`);
      }
      check(p1.shape.join() === '3,2', () => `priorSampling([3, 2]) has shape [${p1.shape}]`);
      const [v1, v2] = await Promise.all([read(p1), read(p2)]);
      check(
        v1.every((v, i) => v === v2[i]),
        () => `priorSampling is not reproducible for one seed`,
      );
    } finally {
      tf.dispose([z, lp, p1, p2]);
    }
  });

  add('reverse SDE drift f − g² s and probability flow f − ½ g² s (closed-form Gaussian score)', async (sde) => {
    // data N(0, c² I) has marginals N(0, (α² c² + σ²) I) and so the exact score −x/(α² c² + σ²)
    const c = dataStd;
    const ts = times(sde).map(Math.fround);
    const B = ts.length;
    const xv = Array.from({ length: B * 2 }, (_, i) => (i % 2 ? -1 : 1) * (0.5 + i / 4));
    const score = (x: tf.Tensor, t: tf.Tensor1D): tf.Tensor =>
      tf.tidy(() => {
        const v = tf.add(tf.mul(tf.square(sde.alphaT(t)), c * c), tf.square(sde.stdT(t)));
        return tf.neg(tf.div(x, tf.reshape(v, [t.shape[0], 1])));
      });
    const x = tf.tensor2d(xv, [B, 2]);
    const t = tf.tensor1d(ts);
    const out = tf.tidy(() => {
      const r = sde.reverse(score).sde(x, t);
      const p = sde.reverse(score, { probabilityFlow: true }).sde(x, t);
      return [r.drift, r.diffusion, p.drift, p.diffusion];
    });
    try {
      const [rd, rg, pd, pg] = await Promise.all(out.map(read));
      ts.forEach((u, b) => {
        const f = sde.driftCoef(u);
        const g2 = sde.diffusion(u) ** 2;
        const v = sde.alpha(u) ** 2 * c * c + sde.std(u) ** 2;
        for (let j = 0; j < 2; j++) {
          const xi = xv[b * 2 + j];
          const s = -xi / v;
          const scale = Math.abs(f * xi) + g2 * Math.abs(s);
          close32(`reverse drift (t = ${u})`, rd[b * 2 + j], f * xi - g2 * s, scale);
          close32(`probability-flow drift (t = ${u})`, pd[b * 2 + j], f * xi - 0.5 * g2 * s, scale);
        }
        close32(`reverse diffusion (t = ${u})`, rg[b], Math.sqrt(g2));
        check(pg[b] === 0, () => `probability-flow diffusion must be 0, got ${pg[b]}`);
      });
    } finally {
      tf.dispose([x, t, ...out]);
    }
  });

  add('discretize is a consistent one-step scheme (Euler exactly where not overridden)', async (sde) => {
    const N = sde.N;
    const T = sde.T;
    const ts = times(sde).map(Math.fround);
    const xv = ts.flatMap(() => [1, -2]);
    const x = tf.tensor2d(xv, [ts.length, 2]);
    const t = tf.tensor1d(ts);
    const out = tf.tidy(() => {
      const d = sde.discretize(x, t);
      return [d.f, d.G];
    });
    try {
      const [fd, G] = await Promise.all(out.map(read));
      // Euler is the base class's discretize: the owner of `discretize` is the root of the prototype chain (found
      // this way, not by identity with Sde.prototype, so that an SDE from another copy of @sbm/sde is judged right)
      let owner: object = sde;
      while (!Object.prototype.hasOwnProperty.call(owner, 'discretize')) owner = Object.getPrototypeOf(owner) as object;
      const euler = Object.getPrototypeOf(owner) === Object.prototype;
      ts.forEach((u, b) => {
        const a = 1 + fd[b * 2] / xv[b * 2];
        check(Math.abs(fd[b * 2 + 1] - (a - 1) * xv[b * 2 + 1]) <= tol32 * Math.abs(fd[b * 2 + 1]) + 1e-7, () => {
          return `discretize f must be linear in x (t = ${u})`;
        });
        if (euler) {
          const dt = T / N;
          close32(`Euler f = f(t) x Δt (t = ${u})`, a - 1, sde.driftCoef(u) * dt, 1e-6);
          close32(`Euler G = g √Δt (t = ${u})`, G[b], sde.diffusion(u) * Math.sqrt(dt));
          return;
        }
        if (N < 2) return;
        // A chain on the grid (SMLD, DDPM, ...): over one step, ln a and G² are ∫f and ∫g² over a step of
        // T/N or T/(N − 1) within two grid steps of t (mean value theorem), up to second order in those integrals.
        const w = (2 * T) / (N - 1);
        const xs = Array.from({ length: 17 }, (_, i) => Math.min(T, Math.max(0, u - w + (i * w) / 8)));
        const fs = xs.map((q) => sde.driftCoef(q));
        const g2s = xs.map((q) => sde.diffusion(q) ** 2);
        const [dLo, dHi] = [T / N, T / (N - 1)];
        const fLo = Math.min(...fs.map((q) => q * (q < 0 ? dHi : dLo)));
        const fHi = Math.max(...fs.map((q) => q * (q < 0 ? dLo : dHi)));
        const gLo = Math.min(...g2s) * dLo;
        const gHi = Math.max(...g2s) * dHi;
        const second = gHi * gHi + fLo * fLo + fHi * fHi + 32 * 2 ** -24;
        const la = Math.log(a);
        check(la >= fLo - second && la <= fHi + second, () => {
          return `discretize at t = ${u}: ln(1 + f/x) = ${fmt(la)} is not ∫f over a step (≈ [${fmt(fLo)}, ${fmt(fHi)}])`;
        });
        const G2 = G[b] * G[b];
        check(G2 >= gLo * (1 - 1e-4) - second && G2 <= gHi * (1 + 1e-4) + second, () => {
          return `discretize at t = ${u}: G² = ${fmt(G2)} is not ∫g² over a step (≈ [${fmt(gLo)}, ${fmt(gHi)}])`;
        });
      });
    } finally {
      tf.dispose([x, t, ...out]);
    }
  });

  add('config round trip: createSde(toConfig()) gives the same SDE', (sde) => {
    const registered = listSdes().includes(sde.name);
    if (opts.roundTrip === false || (!registered && opts.roundTrip === undefined)) return;
    check(registered, () => `"${sde.name}" is not registered (registerSde it before the round trip)`);
    const again = createSde(JSON.parse(JSON.stringify(sde.toConfig())) as { name: string });
    check(again.name === sde.name, () => `createSde(toConfig()).name is "${again.name}"`);
    check(
      JSON.stringify(again.toConfig()) === JSON.stringify(sde.toConfig()),
      () => `toConfig() changed in the round trip: ${JSON.stringify(again.toConfig())}`,
    );
    check(again.priorStd === sde.priorStd && again.T === sde.T && again.N === sde.N, () => `T, N or priorStd changed`);
    for (const u of times(sde)) {
      for (const k of ['alpha', 'std', 'driftCoef', 'diffusion'] as const) {
        check(again[k](u) === sde[k](u), () => `${k}(${u}) changed in the round trip`);
      }
    }
  });

  add('leaks no tensors', async (sde) => {
    const x = tf.ones([3, 2, 2]);
    const t = tf.tensor1d(times(sde).slice(0, 3));
    const score = (xx: tf.Tensor): tf.Tensor => tf.neg(xx);
    const calls: [string, () => unknown][] = [
      ['sde', () => sde.sde(x, t)],
      ['marginalProb', () => sde.marginalProb(x, t)],
      ['perturb', () => sde.perturb(x, t, 1)],
      ['priorSampling', () => sde.priorSampling([2, 3], 1)],
      ['priorLogp', () => sde.priorLogp(x)],
      ['discretize', () => sde.discretize(x, t)],
      ['correctorAlphaT', () => sde.correctorAlphaT(t)],
      ['coefficients', () => [sde.driftCoefT(t), sde.diffusionT(t), sde.alphaT(t), sde.stdT(t)]],
      ['reverse.sde', () => sde.reverse(score).sde(x, t)],
      ['reverse.discretize', () => sde.reverse(score, { probabilityFlow: true }).discretize(x, t)],
    ];
    try {
      for (const [what, fn] of calls) {
        await withCount(what, async () => {
          const r = fn() as unknown;
          const list: tf.Tensor[] = [];
          const collect = (v: unknown): void => {
            if (v instanceof tf.Tensor) list.push(v);
            else if (Array.isArray(v)) v.forEach(collect);
            else if (v && typeof v === 'object') Object.values(v).forEach(collect);
          };
          collect(r);
          tf.dispose(list);
        });
      }
      await withCount('float64 forms', async () => {
        for (const u of times(sde)) {
          sde.alpha(u);
          sde.std(u);
          sde.driftCoef(u);
          sde.diffusion(u);
          sde.tFromLambda(sde.lambda(u));
          sde.tFromEdmSigma(sde.edmSigma(u));
        }
      });
    } finally {
      tf.dispose([x, t]);
    }
  });

  return cases;
}
