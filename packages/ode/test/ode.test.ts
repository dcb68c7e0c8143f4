import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { isSbmError, withLeakCheck } from '@sbm/core';
import { describeWithBackends } from '@sbm/test-harness';
import { dopri5, euler, heun, integrate, linspace, rk4, type OdeFn } from '@sbm/ode';

// Linear test problems dy/dt = a(t) y with y(t) = y(t0) · exp(∫_{t0}^{t} a).
const gauss: OdeFn = (t, y) => tf.mul(y, -2 * t); // y = y0 exp(−(t² − t0²))
const gaussExact = (y0: number, t0: number, t: number) => y0 * Math.exp(-(t * t - t0 * t0));
const osc: OdeFn = (t, y) => tf.mul(y, Math.cos(3 * t)); // y = y0 exp((sin 3t − sin 3t0)/3)
const oscExact = (y0: number, t0: number, t: number) => y0 * Math.exp((Math.sin(3 * t) - Math.sin(3 * t0)) / 3);

async function values(p: Promise<{ y: tf.Tensor }>): Promise<Float32Array> {
  const r = await p;
  const v = (await r.y.data()) as Float32Array;
  r.y.dispose();
  return v;
}

function relErr(got: ArrayLike<number>, want: number[]): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-3));
  return m;
}

describeWithBackends('dopri5', () => {
  it('matches the closed form forward in time, within a small multiple of rtol', async () => {
    const y0 = [1, -0.5, 3];
    const x = tf.tensor1d(y0);
    const got = await withLeakCheck(() => values(dopri5(gauss, x, 0, 2)));
    x.dispose();
    // Global error of an RK45 solve with local tolerance 1e-5 stays within ~10× that (scipy gives 1.2e-4 relative
    // here, all of it from the tolerance: its own solution at rtol = 1e-5 is 1.83177e-2 vs exact 1.83156e-2).
    expect(
      relErr(
        got,
        y0.map((v) => gaussExact(v, 0, 2)),
      ),
    ).toBeLessThan(3e-4);
  });

  it('integrates backwards (t1 < t0) with any tensor shape', async () => {
    const x = tf.tensor2d([
      [2, 0.1],
      [-1, 4],
    ]);
    const r = await withLeakCheck(() => dopri5(osc, x, 1, 0));
    const got = await r.y.data();
    expect(r.y.shape).toEqual([2, 2]);
    expect(r.t).toBe(0);
    expect(r.ts[0]).toBe(1);
    expect(r.ts[r.ts.length - 1]).toBe(0);
    for (let i = 1; i < r.ts.length; i++) expect(r.ts[i]).toBeLessThan(r.ts[i - 1]);
    r.y.dispose();
    x.dispose();
    expect(
      relErr(
        got,
        [2, 0.1, -1, 4].map((v) => oscExact(v, 1, 0)),
      ),
    ).toBeLessThan(1e-4);
  });

  it('takes the same steps as scipy solve_ivp(method="RK45", rtol=atol=1e-5)', async () => {
    // Reference figures from scipy 1.17.1:
    //   solve_ivp(lambda t, y: -2*t*y, (0, 2), [1, -0.5, 3], rtol=1e-5, atol=1e-5) → nfev 98, 13 steps,
    //   t[1:4] = 1e-4, 1.1e-3, 1.11e-2 (initial step 1e-4 then ×10 growth).
    //   solve_ivp(lambda t, y: cos(3t)*y, (1, 0), [2, 0.1], ...) → nfev 38, 5 steps, t[1] = 0.95371985.
    const a = tf.tensor1d([1, -0.5, 3]);
    const r1 = await dopri5(gauss, a, 0, 2);
    expect(r1.nfe).toBe(98);
    expect(r1.steps).toBe(13);
    expect(r1.rejected).toBe(3);
    expect(r1.ts[1]).toBeCloseTo(1e-4, 10);
    expect(r1.ts[2]).toBeCloseTo(1.1e-3, 9);
    expect(r1.ts[3]).toBeCloseTo(1.11e-2, 8);
    const b = tf.tensor1d([2, 0.1]);
    const r2 = await dopri5(osc, b, 1, 0);
    expect(r2.nfe).toBe(38);
    expect(r2.steps).toBe(5);
    expect(r2.ts[1]).toBeCloseTo(0.95371985, 5);
    tf.dispose([a, b, r1.y, r2.y]);
  });

  it('counts every evaluation of f and reports progress and trajectory per accepted step', async () => {
    let calls = 0;
    const f: OdeFn = (t, y) => {
      calls++;
      return osc(t, y);
    };
    const seen: number[] = [];
    const progress: number[] = [];
    const x = tf.tensor1d([1, 2]);
    const r = await dopri5(f, x, 0, 3, {
      onStep: (t, y) => {
        expect(y.shape).toEqual([2]);
        seen.push(t);
      },
      onProgress: (p) => progress.push(p.fraction),
    });
    expect(r.nfe).toBe(calls);
    expect(r.nfe).toBe(2 + 6 * (r.steps + r.rejected));
    expect(seen).toEqual(r.ts.slice(1));
    expect(progress[progress.length - 1]).toBe(1);
    tf.dispose([x, r.y]);
  });

  it('tightening rtol/atol makes the error smaller and costs more NFE', async () => {
    const x = tf.tensor1d([1]);
    const loose = await dopri5(osc, x, 0, 4, { rtol: 1e-3, atol: 1e-3 });
    const tight = await dopri5(osc, x, 0, 4, { rtol: 1e-6, atol: 1e-6 });
    const exact = oscExact(1, 0, 4);
    const eLoose = Math.abs((await loose.y.data())[0] - exact);
    const eTight = Math.abs((await tight.y.data())[0] - exact);
    expect(tight.nfe).toBeGreaterThan(loose.nfe);
    expect(eTight).toBeLessThan(eLoose);
    expect(eTight / exact).toBeLessThan(1e-5);
    tf.dispose([x, loose.y, tight.y]);
  });

  it('honours maxSteps, firstStep, maxStep and an AbortSignal without leaking', async () => {
    const x = tf.tensor1d([1]);
    await withLeakCheck(async () => {
      await expect(dopri5(osc, x, 0, 10, { maxSteps: 3 })).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_ARGUMENT'));
      const ac = new AbortController();
      let n = 0;
      const p = dopri5(osc, x, 0, 10, {
        signal: ac.signal,
        onStep: () => {
          if (++n === 2) ac.abort('stop');
        },
      });
      await expect(p).rejects.toSatisfy((e) => isSbmError(e, 'ABORTED'));
      const r = await dopri5(osc, x, 0, 1, { maxStep: 0.05, firstStep: 0.01 });
      expect(r.ts[1]).toBeCloseTo(0.01, 12);
      for (let i = 1; i < r.ts.length; i++) expect(r.ts[i] - r.ts[i - 1]).toBeLessThanOrEqual(0.05 + 1e-12);
      r.y.dispose();
    }, 'dopri5 errors');
    x.dispose();
  });

  it('returns a copy when t0 = t1 and rejects bad input with SbmErrors', async () => {
    const x = tf.tensor1d([1]);
    const r = await dopri5(osc, x, 0.5, 0.5);
    expect(r.nfe).toBe(0);
    expect(r.y).not.toBe(x);
    r.y.dispose();
    const bad = tf.tensor1d([NaN]);
    await expect(dopri5(osc, bad, 0, 1)).rejects.toSatisfy((e) => isSbmError(e, 'NON_FINITE'));
    await expect(dopri5(osc, x, 0, 1, { rtol: -1 })).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_ARGUMENT'));
    await expect(dopri5(osc, x, 0, NaN)).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_ARGUMENT'));
    await expect(dopri5(() => tf.zeros([2]), x, 0, 1)).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_SHAPE'));
    await expect(dopri5((t, y) => tf.mul(y, NaN), x, 0, 1)).rejects.toSatisfy((e) => isSbmError(e, 'NON_FINITE'));
    tf.dispose([x, bad]);
  });
});

describeWithBackends('fixed-step solvers', () => {
  const cases = [
    { name: 'euler', solve: euler, order: 1, perStep: 1, n: 64, tol: 0.25 },
    { name: 'heun', solve: heun, order: 2, perStep: 2, n: 16, tol: 0.25 },
    // rk4: float64 gives log2 ratio 3.83 at n = 12 → 24; float32 rounding (~1e-7 relative per step) moves it by < 0.1.
    { name: 'rk4', solve: rk4, order: 4, perStep: 4, n: 12, tol: 0.3 },
  ] as const;
  for (const c of cases) {
    it(`${c.name} has order ${c.order}: halving h divides the error by ≈ 2^${c.order}`, async () => {
      // Backwards over [1.5, 0] on y' = −2ty, where the leading error term dominates at these step counts and the
      // errors stay far above float32 rounding (≥ 1e-5 relative).
      const x = tf.tensor1d([1]);
      const exact = gaussExact(1, 1.5, 0);
      const err = async (n: number) => {
        const r = await c.solve(gauss, x, linspace(1.5, 0, n));
        expect(r.nfe).toBe(c.perStep * n);
        expect(r.steps).toBe(n);
        const v = (await r.y.data())[0];
        r.y.dispose();
        return Math.abs(v - exact);
      };
      const e1 = await withLeakCheck(() => err(c.n));
      const e2 = await err(2 * c.n);
      x.dispose();
      expect(Math.log2(e1 / e2)).toBeGreaterThan(c.order - c.tol);
      expect(Math.log2(e1 / e2)).toBeLessThan(c.order + c.tol);
    });
  }

  it('integrate dispatches by method and validates grids', async () => {
    const x = tf.tensor1d([2]);
    const r = await integrate(gauss, x, 0, 1, { method: 'rk4', steps: 50 });
    expect((await r.y.data())[0]).toBeCloseTo(gaussExact(2, 0, 1), 5);
    expect(r.nfe).toBe(200);
    r.y.dispose();
    await expect(integrate(gauss, x, 0, 1, { method: 'euler' })).rejects.toSatisfy((e) =>
      isSbmError(e, 'INVALID_ARGUMENT'),
    );
    await expect(integrate(gauss, x, 0, 1, { method: 'midpoint' as never })).rejects.toSatisfy((e) =>
      isSbmError(e, 'UNKNOWN_NAME'),
    );
    await expect(euler(gauss, x, [0, 0.5, 0.4])).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_ARGUMENT'));
    await expect(euler(gauss, x, [0])).rejects.toSatisfy((e) => isSbmError(e, 'INVALID_ARGUMENT'));
    x.dispose();
  });
});

describe('linspace', () => {
  it('hits both ends exactly', () => {
    const g = linspace(1, 1e-3, 7);
    expect(g.length).toBe(8);
    expect(g[0]).toBe(1);
    expect(g[7]).toBe(1e-3);
  });
});
