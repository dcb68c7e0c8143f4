import type * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber } from '@sbm/core';
import { dopri5, type Dopri5Options } from './dopri5';
import { euler, heun, linspace, rk4 } from './fixed-step';
import type { OdeFn, OdeResult } from './types';

export const ODE_METHODS = ['dopri5', 'euler', 'heun', 'rk4'] as const;
export type OdeMethod = (typeof ODE_METHODS)[number];

export interface IntegrateOptions extends Dopri5Options {
  /** Solver (default 'dopri5'). */
  method?: OdeMethod;
  /** Fixed-step methods: number of uniform steps from t0 to t1 (or give `ts`). */
  steps?: number;
  /** Fixed-step methods: the time grid, from t0 to t1 (overrides `steps`). */
  ts?: number[];
}

/**
 * One entry point for every solver: dopri5 adapts its steps between t0 and t1; euler / heun / rk4 step over `ts`
 * or over `steps` uniform steps.
 */
export async function integrate(
  f: OdeFn,
  y0: tf.Tensor,
  t0: number,
  t1: number,
  opts: IntegrateOptions = {},
): Promise<OdeResult> {
  const method = checkChoice(opts.method ?? 'dopri5', 'method', ODE_METHODS);
  if (method === 'dopri5') return dopri5(f, y0, t0, t1, opts);
  checkNumber(t0, 't0');
  checkNumber(t1, 't1');
  let ts = opts.ts;
  if (ts === undefined) {
    if (opts.steps === undefined) {
      throw new SbmError('INVALID_ARGUMENT', `steps: the fixed-step method "${method}" needs steps or ts`, {
        argument: 'steps',
      });
    }
    ts = linspace(t0, t1, checkNumber(opts.steps, 'steps', { integer: true, min: 1 }));
  } else if (ts[0] !== t0 || ts[ts.length - 1] !== t1) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `ts: expected a grid from t0 = ${t0} to t1 = ${t1}, got ${ts[0]} … ${ts[ts.length - 1]}`,
      {
        argument: 'ts',
      },
    );
  }
  const run = method === 'euler' ? euler : method === 'heun' ? heun : rk4;
  return run(f, y0, ts, opts);
}
