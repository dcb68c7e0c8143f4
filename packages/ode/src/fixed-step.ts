import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFiniteAsync, checkNumber, describeValue, throwIfAborted, yieldToEventLoop } from '@sbm/core';
import { checkCommon, counted } from './internal';
import type { OdeFn, OdeOptions, OdeResult } from './types';

/** One step y(t) → y(t + h) of an explicit method; `call` is the counted right-hand side. */
type StepRule = (call: (t: number, y: tf.Tensor) => tf.Tensor, t: number, y: tf.Tensor, h: number) => tf.Tensor;

/** Forward Euler: y + h f(t, y). Order 1, 1 NFE per step. */
const eulerRule: StepRule = (call, t, y, h) => tf.add(y, tf.mul(call(t, y), h));

/** Heun (explicit trapezoid): Euler predictor, then the average slope. Order 2, 2 NFE per step. */
const heunRule: StepRule = (call, t, y, h) => {
  const k1 = call(t, y);
  const k2 = call(t + h, tf.add(y, tf.mul(k1, h)));
  return tf.add(y, tf.mul(tf.add(k1, k2), h / 2));
};

/** Classical Runge–Kutta. Order 4, 4 NFE per step. */
const rk4Rule: StepRule = (call, t, y, h) => {
  const k1 = call(t, y);
  const k2 = call(t + h / 2, tf.add(y, tf.mul(k1, h / 2)));
  const k3 = call(t + h / 2, tf.add(y, tf.mul(k2, h / 2)));
  const k4 = call(t + h, tf.add(y, tf.mul(k3, h)));
  return tf.add(y, tf.mul(tf.addN([k1, tf.mul(k2, 2), tf.mul(k3, 2), k4]), h / 6));
};

/** n + 1 evenly spaced times from t0 to t1 (inclusive), computed as t0 + i (t1 − t0)/n so the ends are exact. */
export function linspace(t0: number, t1: number, n: number): number[] {
  checkNumber(t0, 't0');
  checkNumber(t1, 't1');
  checkNumber(n, 'steps', { integer: true, min: 1 });
  const out: number[] = [];
  for (let i = 0; i <= n; i++) out.push(i === n ? t1 : t0 + ((t1 - t0) * i) / n);
  return out;
}

/** Checks a time grid: at least two finite, strictly monotone times. */
export function checkGrid(ts: unknown, name = 'ts'): number[] {
  if (!Array.isArray(ts) || ts.length < 2) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected an array of at least 2 times, got ${describeValue(ts)}`, {
      argument: name,
    });
  }
  const dir = Math.sign(ts[1] - ts[0]);
  for (let i = 0; i < ts.length; i++) {
    if (typeof ts[i] !== 'number' || !Number.isFinite(ts[i])) {
      throw new SbmError('INVALID_ARGUMENT', `${name}[${i}]: expected a finite number, got ${describeValue(ts[i])}`, {
        argument: name,
      });
    }
    if (i > 0 && (dir === 0 || Math.sign(ts[i] - ts[i - 1]) !== dir)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${name}: expected strictly increasing or strictly decreasing times, got ${ts[i - 1]} then ${ts[i]} at index ${i}`,
        {
          argument: name,
        },
      );
    }
  }
  return ts as number[];
}

async function fixedStep(
  what: string,
  rule: StepRule,
  f: OdeFn,
  y0: tf.Tensor,
  ts: number[],
  opts: OdeOptions,
): Promise<OdeResult> {
  await checkCommon(what, f, y0, opts);
  checkGrid(ts);
  const yieldEvery = opts.yieldEvery ?? 1;
  const fn = counted(f);
  const span = Math.abs(ts[ts.length - 1] - ts[0]);
  let y = tf.clone(y0);
  try {
    for (let i = 1; i < ts.length; i++) {
      throwIfAborted(opts.signal, what);
      const prev = y;
      const h = ts[i] - ts[i - 1];
      y = tf.tidy(() => rule(fn.call, ts[i - 1], prev, h));
      prev.dispose();
      if (opts.onStep) await opts.onStep(ts[i], y);
      opts.onProgress?.({ t: ts[i], step: i, nfe: fn.nfe(), h, fraction: Math.abs(ts[i] - ts[0]) / span });
      if (i % yieldEvery === 0) await yieldToEventLoop();
    }
    // One asynchronous readback at the end (dopri5 sees NaN in its error norm; a fixed step would return it silently).
    await checkFiniteAsync(y, 'y').catch((e: unknown) => {
      throw new SbmError(
        'NON_FINITE',
        `${what}: f(t, y) produced NaN or Inf (the solution is not finite at t = ${ts[ts.length - 1]})`,
        { cause: e },
      );
    });
    return { y, t: ts[ts.length - 1], nfe: fn.nfe(), steps: ts.length - 1, rejected: 0, ts: [...ts] };
  } catch (e) {
    y.dispose();
    throw e;
  }
}

/** Forward Euler over the grid `ts` (order 1; NFE = steps). */
export function euler(f: OdeFn, y0: tf.Tensor, ts: number[], opts: OdeOptions = {}): Promise<OdeResult> {
  return fixedStep('euler', eulerRule, f, y0, ts, opts);
}

/** Heun's method over the grid `ts` (order 2; NFE = 2 · steps). */
export function heun(f: OdeFn, y0: tf.Tensor, ts: number[], opts: OdeOptions = {}): Promise<OdeResult> {
  return fixedStep('heun', heunRule, f, y0, ts, opts);
}

/** Classical RK4 over the grid `ts` (order 4; NFE = 4 · steps). */
export function rk4(f: OdeFn, y0: tf.Tensor, ts: number[], opts: OdeOptions = {}): Promise<OdeResult> {
  return fixedStep('rk4', rk4Rule, f, y0, ts, opts);
}
