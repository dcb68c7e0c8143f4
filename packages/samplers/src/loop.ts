import * as tf from '@tensorflow/tfjs';
import {
  FiniteWatch,
  SbmError,
  checkFiniteAsync,
  checkFnOutput,
  checkNumber,
  checkOptions,
  checkSeed,
  checkTensor,
  describeValue,
  isSeedStream,
  now,
  SeedStream,
  throwIfAborted,
  yieldToEventLoop,
} from '@sbm/core';
import { isSde, type ScoreFn, type Sde } from '@sbm/sde';
import type { LoopOptions, SampleProgress, SampleResult, SampleStats, SdeSamplerOptions } from './types';

/**
 * The shared sampler driver (k-diffusion's shape: each sampler states its update, the driver does the rest). It owns
 * strict option keys, the options every sampler shares, the counted score (its output shape checked once per call),
 * tf.tidy and disposal of the state, abort, progress, trajectory streaming, event-loop yields, NaN / Inf watching
 * without synchronous readbacks (GPU-safe) and the stats.
 */

/** A sampler's state between steps: named tensors (null where a slot is empty, e.g. DPM-Solver's x̂₀ history). */
export type State = Record<string, tf.Tensor | null>;

/** Non-finite values persist through every update here, so one flag every WATCH_EVERY steps is enough, and the flags
 * are read back (asynchronously, one readback for all) every WATCH_EVERY · WATCH_BATCH steps and at the end. */
const WATCH_EVERY = 10;
const WATCH_BATCH = 5;

function nonFinite(sampler: string, where?: string): SbmError {
  return new SbmError(
    'NON_FINITE',
    `${sampler}: the samples contain NaN or Inf${where ? ` (first seen ${where})` : ''} (the score function returned non-finite values or the step size is too large for it)`,
    { sampler },
  );
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

export function checkSdeInstance(sde: unknown, optional = false): void {
  if (optional && sde === undefined) return;
  if (!isSde(sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected an Sde instance (e.g. new VpSde() or createSde('vp'))${optional ? ' or undefined' : ''}, got ${describeValue(sde)}`,
      { argument: 'sde' },
    );
  }
}

export function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a boolean, got ${describeValue(value)}`, {
      argument: name,
    });
  }
  return value as boolean | undefined;
}

/** Checks an optional starting tensor's shape (synchronously); its values are checked by `Sampler.run`. */
export function checkInitShape(init: unknown, shape: number[], name = 'init'): void {
  if (init !== undefined) checkTensor(init, name, shape);
}

/** A sampler's run: created after the options are checked, it counts score calls and drives the loop. */
export class Sampler {
  readonly stream: SeedStream;
  private readonly start = now();
  private readonly watch = new FiniteWatch();
  private calls = 0;
  private readonly every: number;
  private readonly yieldEvery: number;

  /**
   * Throws INVALID_ARGUMENT for an option key not in `keys` (with a did-you-mean: `num_inference_steps` → `steps`)
   * and validates the options of LoopOptions.
   */
  constructor(
    readonly name: string,
    private readonly opts: LoopOptions,
    keys: readonly string[],
  ) {
    if (opts === null || typeof opts !== 'object') {
      throw new SbmError('INVALID_ARGUMENT', `${name}: options: expected an object, got ${describeValue(opts)}`);
    }
    checkOptions(opts, keys, name);
    this.stream = isSeedStream(opts.seed) ? opts.seed : new SeedStream(checkSeed(opts.seed));
    for (const k of ['onProgress', 'onTrajectory', 'afterStep'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'function') {
        throw new SbmError('INVALID_ARGUMENT', `${k}: expected a function, got ${describeValue(opts[k])}`, {
          argument: k,
        });
      }
    }
    this.every = checkNumber(opts.trajectoryEvery ?? 1, 'trajectoryEvery', { integer: true, min: 1 });
    this.yieldEvery = checkNumber(opts.yieldEvery ?? 1, 'yieldEvery', { integer: true, min: 1 });
  }

  /** For the adaptive samplers, whose steps are not a fixed grid: an `afterStep` hook is refused, not ignored. */
  refuseAfterStep(): void {
    if (this.opts.afterStep !== undefined) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `afterStep: the adaptive "${this.name}" sampler takes no per-step hook (its steps are chosen by an error estimate and may be rejected); use a fixed-step sampler such as 'pc', 'euler', 'dpmpp-2m' or 'unipc'`,
        { argument: 'afterStep' },
      );
    }
  }

  get nfe(): number {
    return this.calls;
  }

  /** The score, counted and with its output shape checked (call inside tf.tidy). */
  score<A extends tf.Tensor>(
    score: (x: tf.Tensor, a: A) => tf.Tensor,
    name = 'score',
  ): (x: tf.Tensor, a: A) => tf.Tensor {
    return (x, a) => {
      this.calls++;
      return checkFnOutput(score(x, a), x, name);
    };
  }

  /** The score counted but not checked: for `sde.reverse(...)`, whose evalScore checks the shape itself. */
  countOnly(score: ScoreFn): ScoreFn {
    return (x, t) => {
      this.calls++;
      return score(x, t);
    };
  }

  /** NaN / Inf in a starting tensor, read back asynchronously (GPU-safe). */
  checkInit(init: tf.Tensor, name = 'init'): Promise<void> {
    return checkFiniteAsync(init, name);
  }

  checkAbort(): void {
    throwIfAborted(this.opts.signal, this.name);
  }

  /** Progress and trajectory after step `step` (1-based) of `steps`, reaching time / level `t`; yields as asked. */
  async report(step: number, steps: number, t: number, x: tf.Tensor, xMean?: tf.Tensor): Promise<void> {
    if (this.opts.onTrajectory && (step % this.every === 0 || step === steps)) {
      await this.opts.onTrajectory({ step, t, x, xMean });
    }
    const p: SampleProgress = { sampler: this.name, step, steps, t, nfe: this.calls, fraction: step / steps };
    this.opts.onProgress?.(p);
    if (step % this.yieldEvery === 0) await yieldToEventLoop();
  }

  /** Records a NaN / Inf flag of `x` every few steps and reads the flags back, asynchronously, every few of those. */
  async watchStep(step: number, x: tf.Tensor): Promise<void> {
    if (step % WATCH_EVERY !== 0) return;
    this.watch.add(x, `at step ${step}`);
    if (this.watch.pending >= WATCH_BATCH) {
      const bad = await this.watch.check();
      if (bad !== undefined) throw nonFinite(this.name, bad);
    }
  }

  /**
   * Runs `steps` updates of `state`: each inside tf.tidy, the tensors of the old state that the new one does not hold
   * freed, then abort, NaN watch and progress. `finish` (inside tf.tidy) turns the last state into the samples. On
   * any error every tensor of the state is freed. `init` is the caller's starting tensor to check for NaN / Inf.
   */
  async run<S extends State>(spec: {
    steps: number;
    /** Reported total (default `steps`). */
    reportSteps?: number;
    init?: tf.Tensor;
    initial: () => S;
    update: (s: S, i: number) => S;
    /** Time / level reached by step i (0-based), and the tensors to stream. */
    point: (s: S, i: number) => { t: number; x: tf.Tensor; xMean?: tf.Tensor };
    finish?: (s: S) => tf.Tensor;
    stats?: Partial<SampleStats>;
  }): Promise<SampleResult> {
    if (spec.init !== undefined) await this.checkInit(spec.init);
    let s: S = tidyState(spec.initial);
    let out: tf.Tensor | undefined;
    try {
      for (let i = 0; i < spec.steps; i++) {
        this.checkAbort();
        const prev = s;
        const next = tidyState(() => this.afterStep(spec.update(prev, i), i, spec.point));
        disposeReplaced(prev, next);
        s = next;
        const p = spec.point(s, i);
        await this.watchStep(i + 1, p.x);
        await this.report(i + 1, spec.reportSteps ?? spec.steps, p.t, p.x, p.xMean);
      }
      const last = s;
      out = spec.finish ? tf.tidy(() => spec.finish!(last)) : (Object.values(s).find((v) => v) as tf.Tensor);
      for (const v of new Set(Object.values(s))) if (v && v !== out) v.dispose();
    } catch (e) {
      for (const v of new Set(Object.values(s))) if (v && !v.isDisposed) v.dispose();
      if (out && !out.isDisposed) out.dispose();
      this.watch.dispose();
      throw e;
    }
    return this.result(out, { steps: spec.steps, ...spec.stats });
  }

  /** LoopOptions.afterStep on the state just computed by step i (inside the step's tf.tidy). */
  private afterStep<S extends State>(
    s: S,
    i: number,
    point: (s: S, i: number) => { t: number; x: tf.Tensor; xMean?: tf.Tensor },
  ): S {
    const hook = this.opts.afterStep;
    if (!hook) return s;
    const { t, x, xMean } = point(s, i);
    const out = hook(xMean === undefined ? { x } : { x, xMean }, t, i + 1);
    if (out === null || typeof out !== 'object' || !(out.x instanceof tf.Tensor)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `afterStep: expected it to return { x: Tensor, xMean? }, got ${describeValue(out)}`,
        {
          argument: 'afterStep',
        },
      );
    }
    checkFnOutput(out.x, x, 'afterStep');
    const next: Record<string, unknown> = { ...s, x: out.x };
    if ('xMean' in s) next.xMean = out.xMean ?? out.x;
    return next as S;
  }

  /** Checks the samples for NaN / Inf (one asynchronous readback with the pending step flags) and adds the stats. */
  async result(samples: tf.Tensor, stats: Partial<SampleStats> & { steps: number }): Promise<SampleResult> {
    this.watch.add(samples, '');
    let bad: string | undefined;
    try {
      bad = await this.watch.check();
    } catch (e) {
      samples.dispose();
      throw e;
    }
    if (bad !== undefined) {
      samples.dispose();
      throw nonFinite(this.name, bad || undefined);
    }
    return { samples, stats: { sampler: this.name, nfe: this.calls, ms: now() - this.start, ...stats } };
  }

  /** Frees pending NaN flags (error paths of samplers that do not use `run`). */
  dispose(): void {
    this.watch.dispose();
  }
}

/** tf.tidy for a state object (its null slots are not a TensorContainer to tfjs' types, but tidy skips them). */
function tidyState<S extends State>(fn: () => S): S {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as S;
}

/** Frees the tensors of `prev` that `next` does not hold (an identity update hands back the same tensor). */
function disposeReplaced(prev: State, next: State): void {
  const kept = new Set(Object.values(next));
  for (const v of new Set(Object.values(prev))) if (v && !kept.has(v)) v.dispose();
}

/** Validates sde / score / shape / eps / steps / init of an SDE sampler; returns eps and steps. */
export function checkSdeOptions(
  opts: SdeSamplerOptions,
  defaultSteps: number,
  minSteps = 1,
): { sde: Sde; eps: number; steps: number } {
  checkSdeInstance(opts.sde);
  checkScoreFn(opts.score);
  checkShape(opts.shape);
  const eps = checkNumber(opts.eps ?? opts.sde.samplingEps, 'eps', { gt: 0, lt: opts.sde.T });
  const steps = checkNumber(opts.steps ?? defaultSteps, 'steps', { integer: true, min: minSteps });
  checkInitShape(opts.init, opts.shape);
  return { sde: opts.sde, eps, steps };
}

/** x_T: the caller's `init` (copied) or a prior draw. */
export function initialState(sde: Sde, opts: SdeSamplerOptions, stream: SeedStream): tf.Tensor {
  return opts.init ? tf.clone(opts.init) : sde.priorSampling(opts.shape, stream);
}
