import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkChoice,
  checkFinite,
  checkFnOutput,
  checkNumber,
  checkTensor,
  describeValue,
  type SeedStream,
} from '@sbm/core';
import { isSde, type Sde } from '@sbm/sde';

/** How the squared error of one sample is reduced over its dimensions. */
export type Reduction = 'half-sum' | 'mean' | 'sum';

export const REDUCTIONS: readonly Reduction[] = ['half-sum', 'mean', 'sum'];

let syncChecksOff = 0;

/**
 * Runs `fn` with the checks that read a tensor's values back (finiteness of the batch, range of a given index
 * tensor) turned off. Called directly, the loss functions validate their input with one synchronous read; through
 * the registry (getLoss, train()) they read nothing back, because Node WebGPU refuses synchronous reads and a GPU
 * stalls on each one: the trainer checks finiteness itself, batched and asynchronously.
 */
export function withoutSyncChecks<T>(fn: () => T): T {
  syncChecksOff += 1;
  try {
    return fn();
  } finally {
    syncChecksOff -= 1;
  }
}

/** Whether checks that need a synchronous readback run (see withoutSyncChecks). */
export function syncChecksOn(): boolean {
  return syncChecksOff === 0;
}

/** Checks a data batch [B, ...]: a tensor of rank ≥ 2 with finite values. */
export function checkBatch(x: unknown, name: string): tf.Tensor {
  const t = checkTensor(x, name, undefined, { minRank: 2, nonEmpty: true });
  if (t.dtype !== 'float32') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a float32 tensor, got dtype ${t.dtype}`, {
      argument: name,
    });
  }
  if (syncChecksOn()) checkFinite(t, name);
  return t;
}

export function checkFn(fn: unknown, name: string, expected: string): void {
  if (typeof fn !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a function ${expected}, got ${describeValue(fn)}`, {
      argument: name,
    });
  }
}

export function checkSde(sde: unknown, name = 'sde'): Sde {
  if (!isSde(sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected an Sde instance (createSde(...)), got ${describeValue(sde)}`,
      {
        argument: name,
      },
    );
  }
  return sde as Sde;
}

export function checkSeedArg(seed: unknown): number | SeedStream {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `seed: expected a safe integer or a SeedStream, got ${describeValue(seed)}`,
        {
          argument: 'seed',
        },
      );
    }
    return seed;
  }
  if (seed !== null && typeof seed === 'object' && typeof (seed as SeedStream).next === 'function') {
    return seed as SeedStream;
  }
  throw new SbmError('INVALID_ARGUMENT', `seed: expected a safe integer or a SeedStream, got ${describeValue(seed)}`, {
    argument: 'seed',
  });
}

/** eps must lie strictly inside (0, T): t ~ U(eps, T) needs a non-empty interval and σ(eps) > 0. */
export function checkEps(eps: unknown, sde: Sde): number {
  return checkNumber(eps, 'eps', { gt: 0, lt: sde.T });
}

export function checkReduction(opts: { reduceMean?: boolean; reduction?: Reduction }, fallback: Reduction): Reduction {
  if (opts.reduction !== undefined) return checkChoice(opts.reduction, 'reduction', REDUCTIONS);
  if (opts.reduceMean !== undefined) {
    if (typeof opts.reduceMean !== 'boolean') {
      throw new SbmError('INVALID_ARGUMENT', `reduceMean: expected a boolean, got ${describeValue(opts.reduceMean)}`, {
        argument: 'reduceMean',
      });
    }
    return opts.reduceMean ? 'mean' : 'half-sum';
  }
  return fallback;
}

/** Reduces a [B, ...] tensor of squared errors to [B]. */
export function reduceSample(sq: tf.Tensor, reduction: Reduction): tf.Tensor1D {
  return tf.tidy(() => {
    const flat = tf.reshape(sq, [sq.shape[0], -1]);
    if (reduction === 'mean') return tf.mean(flat, 1);
    const s = tf.sum(flat, 1);
    return reduction === 'half-sum' ? tf.mul(s, 0.5) : s;
  }) as tf.Tensor1D;
}

/**
 * Times for a batch: a fixed number, a [B] tensor, or t ~ U(eps, T) drawn from `seed` (score_sde losses.py:
 * t = U·(T − eps) + eps).
 */
export function batchTimes(
  batch: number,
  sde: Sde,
  eps: number,
  t: number | tf.Tensor1D | undefined,
  stream: SeedStream,
): tf.Tensor1D {
  if (t === undefined) {
    const s = stream.next();
    return tf.tidy(() =>
      tf.add(tf.mul(tf.randomUniform([batch], 0, 1, 'float32', s), sde.T - eps), eps),
    ) as tf.Tensor1D;
  }
  if (typeof t === 'number') {
    checkNumber(t, 't', { gt: 0, max: sde.T });
    return tf.fill([batch], t, 'float32') as tf.Tensor1D;
  }
  checkTensor(t, 't', [batch]);
  if (syncChecksOn()) {
    // The same range as a number t; NaN fails both comparisons. One synchronous read, as checkBatch's.
    const bad = tf.tidy(
      () => tf.any(tf.logicalNot(tf.logicalAnd(tf.greater(t, 0), tf.lessEqual(t, sde.T)))).dataSync()[0],
    );
    if (bad) {
      throw new SbmError('INVALID_ARGUMENT', `t: expected times in (0, ${sde.T}], got NaN or a value outside`, {
        argument: 't',
      });
    }
  }
  return tf.clone(t);
}

/** Calls a model / score function and checks that its output is a live tensor with the shape of its input. */
export function callChecked(name: string, out: unknown, like: tf.Tensor): tf.Tensor {
  return checkFnOutput(out, like, name, name === 'score' ? 'the score function' : `the ${name}`);
}
