import * as tf from '@tensorflow/tfjs';
import { SbmError, checkFiniteAsync, checkFnOutput, checkNumber, checkTensor, describeValue } from '@sbm/core';
import type { OdeFn, OdeOptions } from './types';

/** Validates the arguments every solver shares (y0's values with an asynchronous readback: Node WebGPU has no sync one). */
export async function checkCommon(what: string, f: unknown, y0: unknown, opts: OdeOptions): Promise<void> {
  if (typeof f !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${what}: f: expected a function (t, y) => tensor, got ${describeValue(f)}`,
      {
        argument: 'f',
      },
    );
  }
  checkTensor(y0, 'y0', undefined, { nonEmpty: true });
  await checkFiniteAsync(y0 as tf.Tensor, 'y0');
  if (opts.yieldEvery !== undefined) checkNumber(opts.yieldEvery, 'yieldEvery', { integer: true, min: 1 });
  for (const k of ['onProgress', 'onStep'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'function') {
      throw new SbmError('INVALID_ARGUMENT', `${k}: expected a function, got ${describeValue(opts[k])}`, {
        argument: k,
      });
    }
  }
}

/**
 * Wraps the right-hand side: counts evaluations and checks the returned shape (a frequent mistake in a
 * hand-written f). Must be called inside tf.tidy.
 */
export function counted(f: OdeFn): { call: (t: number, y: tf.Tensor) => tf.Tensor; nfe: () => number } {
  let n = 0;
  return {
    call(t, y) {
      n++;
      const out = checkFnOutput(f(t, y), y, 'f', 'f(t, y)');
      // An f that hands back its input would let tidy keep a tensor the solver later disposes twice.
      return out === y ? tf.clone(out) : out;
    },
    nfe: () => n,
  };
}

/** Σ c_j k_j over the nonzero coefficients. */
export function lincomb(coefs: readonly number[], ks: readonly tf.Tensor[]): tf.Tensor {
  const terms: tf.Tensor[] = [];
  for (let j = 0; j < coefs.length; j++) if (coefs[j] !== 0) terms.push(tf.mul(ks[j], coefs[j]));
  return terms.length === 1 ? terms[0] : tf.addN(terms);
}
