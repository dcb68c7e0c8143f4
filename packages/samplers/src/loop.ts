import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkFinite,
  checkNumber,
  checkSeed,
  checkTensor,
  describeValue,
  now,
  SeedStream,
  isSeedStream,
  throwIfAborted,
  yieldToEventLoop,
} from '@sbm/core';
import { Sde, type ScoreFn } from '@sbm/sde';
import type { LoopOptions, SampleProgress, SdeSamplerOptions } from './types';

/** Validates the options every sampler shares and returns the seed stream. */
export function checkLoopOptions(what: string, opts: LoopOptions): SeedStream {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `${what}: options: expected an object, got ${describeValue(opts)}`);
  }
  const stream = isSeedStream(opts.seed) ? opts.seed : new SeedStream(checkSeed(opts.seed));
  for (const k of ['onProgress', 'onTrajectory'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'function') {
      throw new SbmError('INVALID_ARGUMENT', `${k}: expected a function, got ${describeValue(opts[k])}`, {
        argument: k,
      });
    }
  }
  if (opts.trajectoryEvery !== undefined)
    checkNumber(opts.trajectoryEvery, 'trajectoryEvery', { integer: true, min: 1 });
  if (opts.yieldEvery !== undefined) checkNumber(opts.yieldEvery, 'yieldEvery', { integer: true, min: 1 });
  return stream;
}

/** Checks a sample shape [batch, ...dims] of positive integers. */
export function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new SbmError(
      'INVALID_SHAPE',
      `shape: expected [batch, ...dims] of positive integers, got ${Array.isArray(shape) ? JSON.stringify(shape) : describeValue(shape)}`,
      { argument: 'shape', received: shape },
    );
  }
  return shape as number[];
}

export function checkScoreFn(score: unknown, name = 'score'): void {
  if (typeof score !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${name}: expected a function (x, t) => tensor, got ${describeValue(score)}`,
      {
        argument: name,
      },
    );
  }
}

/** Checks an optional starting tensor against the sample shape (and for NaN / Inf). */
export function checkInit(init: unknown, shape: number[], name = 'init'): void {
  if (init === undefined) return;
  checkTensor(init, name, shape);
  checkFinite(init as tf.Tensor, name);
}

/** Validates sde / score / shape / eps / steps of an SDE sampler; returns eps and steps. */
export function checkSdeOptions(
  what: string,
  opts: SdeSamplerOptions,
  defaultSteps: number,
  minSteps = 1,
): { stream: SeedStream; eps: number; steps: number } {
  const stream = checkLoopOptions(what, opts);
  if (!(opts.sde instanceof Sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected an Sde instance (e.g. new VpSde() or createSde('vp')), got ${describeValue(opts.sde)}`,
      {
        argument: 'sde',
      },
    );
  }
  checkScoreFn(opts.score);
  checkShape(opts.shape);
  const eps = checkNumber(opts.eps ?? opts.sde.samplingEps, 'eps', { gt: 0, lt: opts.sde.T });
  const steps = checkNumber(opts.steps ?? defaultSteps, 'steps', { integer: true, min: minSteps });
  checkInit(opts.init, opts.shape);
  return { stream, eps, steps };
}

/** x_T: the caller's `init` (copied) or a prior draw. */
export function initialState(sde: Sde, opts: SdeSamplerOptions, stream: SeedStream): tf.Tensor {
  return opts.init ? tf.clone(opts.init) : sde.priorSampling(opts.shape, stream);
}

/** Wraps a score function: counts calls and checks the output shape. Call inside tf.tidy. */
export function countedScore<A extends tf.Tensor>(
  score: (x: tf.Tensor, a: A) => tf.Tensor,
  name = 'score',
): { call: (x: tf.Tensor, a: A) => tf.Tensor; nfe: () => number } {
  let n = 0;
  return {
    call(x, a) {
      n++;
      const s = score(x, a);
      if (!(s instanceof tf.Tensor) || s.rank !== x.rank || s.shape.some((d, i) => d !== x.shape[i])) {
        throw new SbmError(
          'INVALID_SHAPE',
          `${name}: expected the score function to return a tensor of shape [${x.shape.join(', ')}], got ${
            s instanceof tf.Tensor ? `[${s.shape.join(', ')}]` : describeValue(s)
          }`,
          { argument: name, expected: x.shape },
        );
      }
      return s;
    },
    nfe: () => n,
  };
}

/** A ScoreFn that counts its calls (for ReverseSde and the predictors). */
export function countingScoreFn(score: ScoreFn): { fn: ScoreFn; nfe: () => number } {
  const c = countedScore(score);
  return { fn: c.call, nfe: c.nfe };
}

/**
 * Drives a sampler's step loop: abort check, state swap with disposal, progress, trajectory streaming and event-loop
 * yields. `step` computes the next state inside tf.tidy from the current one.
 */
export class StepLoop {
  readonly start = now();
  private readonly every: number;
  private readonly yieldEvery: number;

  constructor(
    readonly sampler: string,
    readonly steps: number,
    private readonly opts: LoopOptions,
    private readonly nfe: () => number,
  ) {
    this.every = opts.trajectoryEvery ?? 1;
    this.yieldEvery = opts.yieldEvery ?? 1;
  }

  checkAbort(): void {
    throwIfAborted(this.opts.signal, this.sampler);
  }

  /** After step `step` (1-based) reaching time / level `t`. */
  async report(step: number, t: number, x: tf.Tensor, xMean?: tf.Tensor): Promise<void> {
    if (this.opts.onTrajectory && (step % this.every === 0 || step === this.steps)) {
      await this.opts.onTrajectory({ step, t, x, xMean });
    }
    const p: SampleProgress = {
      sampler: this.sampler,
      step,
      steps: this.steps,
      t,
      nfe: this.nfe(),
      fraction: step / this.steps,
    };
    this.opts.onProgress?.(p);
    if (step % this.yieldEvery === 0) await yieldToEventLoop();
  }

  ms(): number {
    return now() - this.start;
  }
}

/** Throws NON_FINITE when the samples hold NaN / Inf (a diverging score or too few steps), disposing them. */
export function checkSamples(x: tf.Tensor, sampler: string): tf.Tensor {
  const bad = tf.tidy(() => tf.logicalNot(tf.all(tf.isFinite(x))).dataSync()[0]);
  if (bad) {
    x.dispose();
    throw new SbmError(
      'NON_FINITE',
      `${sampler}: the samples contain NaN or Inf (the score function returned non-finite values or the step size is too large for it)`,
      { sampler },
    );
  }
  return x;
}

/** Disposes the listed tensors (if any) and rethrows. */
export function disposeOnError(tensors: (tf.Tensor | null | undefined)[]): void {
  for (const t of tensors) if (t && !t.isDisposed) t.dispose();
}
