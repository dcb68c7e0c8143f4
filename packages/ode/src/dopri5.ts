import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, throwIfAborted, yieldToEventLoop } from '@sbm/core';
import { checkCommon, counted, lincomb } from './internal';
import type { OdeFn, OdeOptions, OdeResult } from './types';

export interface Dopri5Options extends OdeOptions {
  /** Relative tolerance (default 1e-5, as score_sde's probability-flow sampler). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** First step size |h0|; by default chosen as scipy's select_initial_step (Hairer et al., II.4). */
  firstStep?: number;
  /** Largest allowed |h| (default unbounded). */
  maxStep?: number;
  /** Guard against runaway solves: at most this many step attempts, accepted or rejected (default 10000). */
  maxSteps?: number;
}

// Dormand & Prince (1980) RK5(4)7M tableau: c, a, the 5th-order weights b (which equal the last row of a, so the
// final stage is f(t + h, y_new) and is reused as the next step's first stage: FSAL), and e = b − b̂ giving the
// embedded error estimate (the same coefficients as scipy's RK45.E).
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
];
const B = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84];
const E = [-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40];

// Step-size control constants of scipy.integrate.RK45.
const SAFETY = 0.9;
const MIN_FACTOR = 0.2;
const MAX_FACTOR = 10;
/** −1/(q + 1) with q = 4, the order of the embedded error estimate. */
const ERROR_EXPONENT = -1 / 5;

/** Distance from t to the next float64 in its direction (numpy.nextafter(t, ±inf) − t, in magnitude). */
function ulp(t: number): number {
  const a = Math.abs(t);
  if (a === 0) return Number.MIN_VALUE;
  return Math.pow(2, Math.floor(Math.log2(a))) * Number.EPSILON;
}

/** RMS norm of a tensor, read back as a number. */
async function rms(x: tf.Tensor): Promise<number> {
  const v = tf.tidy(() => tf.sqrt(tf.mean(tf.square(x))));
  const out = (await v.data())[0];
  v.dispose();
  return out;
}

/**
 * Integrates dy/dt = f(t, y) from t0 to t1 (either direction; t1 < t0 runs backwards, as samplers do from T to eps)
 * with the adaptive Dormand–Prince 5(4) method and the error control of scipy's solve_ivp(method='RK45'):
 * the error norm is the RMS over the whole state of err / (atol + rtol · max(|y|, |y_new|)), a step is accepted when
 * it is below 1, and the next |h| is scaled by min(10, 0.9 · norm^(−1/5)) (at most 1 right after a rejection) or,
 * on rejection, by max(0.2, 0.9 · norm^(−1/5)).
 *
 * NFE counts as scipy's nfev: 1 for f(t0), 1 for the initial step selection (unless firstStep is given) and 6 per
 * step attempt.
 */
export async function dopri5(
  f: OdeFn,
  y0: tf.Tensor,
  t0: number,
  t1: number,
  opts: Dopri5Options = {},
): Promise<OdeResult> {
  await checkCommon('dopri5', f, y0, opts);
  checkNumber(t0, 't0');
  checkNumber(t1, 't1');
  const rtol = checkNumber(opts.rtol ?? 1e-5, 'rtol', { gt: 0 });
  const atol = checkNumber(opts.atol ?? 1e-5, 'atol', { min: 0 });
  const maxStep = opts.maxStep === undefined ? Infinity : checkNumber(opts.maxStep, 'maxStep', { gt: 0 });
  const maxSteps = checkNumber(opts.maxSteps ?? 10000, 'maxSteps', { integer: true, min: 1 });
  if (opts.firstStep !== undefined) checkNumber(opts.firstStep, 'firstStep', { gt: 0 });
  const yieldEvery = opts.yieldEvery ?? 1;
  const ts = [t0];
  if (t0 === t1) return { y: tf.clone(y0), t: t1, nfe: 0, steps: 0, rejected: 0, ts };

  const fn = counted(f);
  const dir = Math.sign(t1 - t0);
  const span = Math.abs(t1 - t0);
  let t = t0;
  let y: tf.Tensor = tf.clone(y0);
  let fy: tf.Tensor | null = null;
  let steps = 0;
  let rejected = 0;
  try {
    fy = tf.tidy(() => fn.call(t0, y));
    let hAbs = opts.firstStep !== undefined ? Math.min(opts.firstStep, span) : await selectInitialStep();
    hAbs = Math.min(hAbs, maxStep);

    async function selectInitialStep(): Promise<number> {
      // scipy's select_initial_step (Hairer, Nørsett & Wanner, Solving ODEs I, II.4) with order 4.
      const scale = tf.tidy(() => tf.add(atol, tf.mul(tf.abs(y), rtol)));
      try {
        const d0 = await rmsOf((s) => tf.div(y, s), scale);
        const d1 = await rmsOf((s) => tf.div(fy!, s), scale);
        let h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
        h0 = Math.min(h0, span);
        const diff = tf.tidy(() => {
          const f1 = fn.call(t0 + h0 * dir, tf.add(y, tf.mul(fy!, h0 * dir)));
          return tf.div(tf.sub(f1, fy!), scale);
        });
        const d2 = (await rms(diff)) / h0;
        diff.dispose();
        const h1 = d1 <= 1e-15 && d2 <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : Math.pow(0.01 / Math.max(d1, d2), 1 / 5);
        const h = Math.min(100 * h0, h1, span, maxStep);
        return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
      } finally {
        scale.dispose();
      }
    }

    let attempts = 0;
    while (dir * (t1 - t) > 0) {
      throwIfAborted(opts.signal, 'dopri5');
      const minStep = 10 * ulp(t);
      hAbs = Math.min(hAbs, maxStep);
      if (hAbs < minStep) hAbs = minStep;
      let stepRejected = false;
      let lastNormFinite = true;
      for (;;) {
        if (hAbs < minStep) {
          throw new SbmError(
            lastNormFinite ? 'INVALID_ARGUMENT' : 'NON_FINITE',
            lastNormFinite
              ? `dopri5: the step size fell below ${minStep.toExponential(2)} at t = ${t}; the problem may be too stiff for rtol = ${rtol}, atol = ${atol}`
              : `dopri5: f(t, y) produced NaN or Inf near t = ${t}`,
            { t, rtol, atol },
          );
        }
        if (++attempts > maxSteps) {
          throw new SbmError(
            'INVALID_ARGUMENT',
            `maxSteps: ${maxSteps} step attempts did not reach t1 = ${t1} (stopped at t = ${t}); raise maxSteps or loosen rtol/atol`,
            { argument: 'maxSteps', t, t1 },
          );
        }
        let tNew = t + hAbs * dir;
        if (dir * (tNew - t1) > 0) tNew = t1;
        const h = tNew - t;
        hAbs = Math.abs(h);
        const yCur = y;
        const fCur = fy!;
        const out = tf.tidy(() => {
          const K: tf.Tensor[] = [fCur];
          for (let s = 1; s < 6; s++) {
            K.push(fn.call(t + C[s] * h, tf.add(yCur, tf.mul(lincomb(A[s], K), h))));
          }
          const yNew = tf.add(yCur, tf.mul(lincomb(B, K), h));
          K.push(fn.call(tNew, yNew));
          const err = tf.mul(lincomb(E, K), h);
          const scale = tf.add(atol, tf.mul(tf.maximum(tf.abs(yCur), tf.abs(yNew)), rtol));
          const norm = tf.sqrt(tf.mean(tf.square(tf.div(err, scale))));
          return { yNew, fNew: K[6], norm };
        });
        const errNorm = (await out.norm.data())[0];
        out.norm.dispose();
        if (errNorm < 1) {
          let factor = errNorm === 0 ? MAX_FACTOR : Math.min(MAX_FACTOR, SAFETY * Math.pow(errNorm, ERROR_EXPONENT));
          if (stepRejected) factor = Math.min(1, factor);
          hAbs *= factor;
          y.dispose();
          fy.dispose();
          y = out.yNew;
          fy = out.fNew;
          t = tNew;
          break;
        }
        // Rejected (a NaN norm counts as rejected, as in scipy, and shrinks the step by MIN_FACTOR).
        out.yNew.dispose();
        out.fNew.dispose();
        lastNormFinite = Number.isFinite(errNorm);
        hAbs *= Number.isNaN(errNorm) ? MIN_FACTOR : Math.max(MIN_FACTOR, SAFETY * Math.pow(errNorm, ERROR_EXPONENT));
        stepRejected = true;
        rejected++;
      }
      steps++;
      ts.push(t);
      const stepH = ts[ts.length - 1] - ts[ts.length - 2];
      if (opts.onStep) await opts.onStep(t, y);
      opts.onProgress?.({ t, step: steps, nfe: fn.nfe(), h: stepH, fraction: Math.min(1, Math.abs(t - t0) / span) });
      if (steps % yieldEvery === 0) await yieldToEventLoop();
    }
    fy.dispose();
    fy = null;
    return { y, t: t1, nfe: fn.nfe(), steps, rejected, ts };
  } catch (e) {
    y.dispose();
    fy?.dispose();
    throw e;
  }
}

async function rmsOf(g: (s: tf.Tensor) => tf.Tensor, scale: tf.Tensor): Promise<number> {
  const v = tf.tidy(() => g(scale));
  const out = await rms(v);
  v.dispose();
  return out;
}
