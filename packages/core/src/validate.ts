import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from './errors';

export interface NumberRule {
  /** Inclusive lower bound. */
  min?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive lower bound. */
  gt?: number;
  /** Exclusive upper bound. */
  lt?: number;
  integer?: boolean;
}

/** Checks a plain number option; throws INVALID_ARGUMENT naming `name`. Returns the value for chaining. */
export function checkNumber(value: unknown, name: string, rule: NumberRule = {}): number {
  const parts: string[] = [];
  if (rule.integer) parts.push('an integer');
  else parts.push('a finite number');
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.gt !== undefined) parts.push(`> ${rule.gt}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  if (rule.lt !== undefined) parts.push(`< ${rule.lt}`);
  const expected = parts.join(' ');
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.min === undefined || value >= rule.min) &&
    (rule.max === undefined || value <= rule.max) &&
    (rule.gt === undefined || value > rule.gt) &&
    (rule.lt === undefined || value < rule.lt);
  if (!ok) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected ${expected}, got ${describeValue(value)}`, {
      argument: name,
      expected,
      received: value,
    });
  }
  return value as number;
}

/** Checks that `value` is one of `choices`; throws UNKNOWN_NAME listing them. */
export function checkChoice<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new SbmError(
      'UNKNOWN_NAME',
      `${name}: expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${describeValue(value)}`,
      { argument: name, expected: choices, received: value },
    );
  }
  return value as T;
}

/** Checks a tensor-valued argument and (optionally) its rank and fixed dimensions (null = any size). */
export function checkTensor(
  value: unknown,
  name: string,
  shape?: readonly (number | null)[],
  opts: { minRank?: number; nonEmpty?: boolean } = {},
): tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a tf.Tensor, got ${describeValue(value)}`, {
      argument: name,
    });
  }
  if (value.isDisposed) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: the tensor has already been disposed`, { argument: name });
  }
  if (opts.minRank !== undefined && value.rank < opts.minRank) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected a tensor of rank >= ${opts.minRank}, got shape [${value.shape.join(', ')}]`,
      { argument: name, received: value.shape },
    );
  }
  // A reduction over an empty batch is NaN: refused here so the message names the argument, not "NaN or Inf".
  if (opts.nonEmpty && (value as tf.Tensor).shape.some((d: number) => d === 0)) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected a non-empty tensor (every dimension >= 1), got shape [${(value as tf.Tensor).shape.join(', ')}]`,
      { argument: name, received: (value as tf.Tensor).shape },
    );
  }
  if (shape) {
    const ok = value.rank === shape.length && shape.every((d, i) => d === null || d === value.shape[i]);
    if (!ok) {
      const exp = `[${shape.map((d) => (d === null ? '*' : d)).join(', ')}]`;
      throw new SbmError('INVALID_SHAPE', `${name}: expected shape ${exp}, got [${value.shape.join(', ')}]`, {
        argument: name,
        expected: shape,
        received: value.shape,
      });
    }
  }
  return value;
}

/**
 * Checks what a user's function returned where a tensor shaped like `like` is expected: a live tensor of that shape.
 * `name` names the function in the message (e.g. 'score'). Returns the tensor.
 */
export function checkFnOutput(out: unknown, like: tf.Tensor, name: string, what = 'the score function'): tf.Tensor {
  const live = out instanceof tf.Tensor && !out.isDisposed;
  const t = out as tf.Tensor;
  if (!live || t.rank !== like.rank || t.shape.some((d: number, i: number) => d !== like.shape[i])) {
    const got = !(out instanceof tf.Tensor)
      ? describeValue(out)
      : out.isDisposed
        ? 'a disposed tensor'
        : `[${out.shape.join(', ')}]`;
    throw new SbmError(
      'INVALID_SHAPE',
      `${name}: expected ${what} to return a tensor of shape [${like.shape.join(', ')}], got ${got}`,
      { argument: name, expected: like.shape, received: out instanceof tf.Tensor ? out.shape : typeof out },
    );
  }
  return t;
}

interface TapeState {
  gradientDepth: number;
  activeTape: { saved?: tf.Tensor[] }[] | null;
}

/**
 * Runs `fn`, which computes gradients (tf.grad, tf.valueAndGrad, tf.variableGrads). When `fn` throws, tfjs leaves the
 * tensors it saved for the backward pass behind: they are `keep`-ed clones that no tf.tidy frees, and only a
 * successful outermost gradient call disposes them. So when no outer gradient is still recording (the error would
 * otherwise leave the tape to an outer call that is unwinding too), this frees them. The error propagates unchanged.
 */
export function withGradientCleanup<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const state = (tf.engine() as unknown as { state: TapeState }).state;
    if (state.gradientDepth === 0 && state.activeTape) {
      for (const node of state.activeTape) for (const t of node.saved ?? []) if (!t.isDisposed) t.dispose();
      state.activeTape = null;
    }
    throw e;
  }
}

/**
 * Throws NON_FINITE if the tensor holds NaN or ±Inf. Reads back one scalar (a sync point): use it on inputs,
 * not inside hot loops.
 */
export function checkFinite(value: tf.Tensor, name: string): void {
  const bad = tf.tidy(() => tf.logicalNot(tf.all(tf.isFinite(value))).dataSync()[0]);
  if (bad) {
    throw new SbmError('NON_FINITE', `${name}: expected finite values, got NaN or Inf`, { argument: name });
  }
}

/** checkFinite without a synchronous readback: one `await data()` (GPU-safe; Node WebGPU refuses dataSync). */
export async function checkFiniteAsync(value: tf.Tensor, name: string): Promise<void> {
  const flag = tf.tidy(() => tf.all(tf.isFinite(value)));
  let ok: boolean;
  try {
    ok = (await flag.data())[0] !== 0;
  } finally {
    flag.dispose();
  }
  if (!ok) throw new SbmError('NON_FINITE', `${name}: expected finite values, got NaN or Inf`, { argument: name });
}

/**
 * Batched NaN / Inf checks for hot loops (GPU-safe): `add` records an all-finite flag for a tensor without reading it
 * back; `check` reads every pending flag with one asynchronous readback and returns the label of the first
 * non-finite one (or undefined). Call `check` every K steps and at the end; `dispose` frees pending flags (on error).
 */
export class FiniteWatch {
  private flags: tf.Scalar[] = [];
  private labels: string[] = [];

  /** Records whether `x` is all finite; `label` names it in the result of `check`. */
  add(x: tf.Tensor, label: string): void {
    this.flags.push(tf.tidy(() => tf.all(tf.isFinite(x))) as tf.Scalar);
    this.labels.push(label);
  }

  get pending(): number {
    return this.flags.length;
  }

  /** The label of the first non-finite tensor since the last check, or undefined when all were finite. */
  async check(): Promise<string | undefined> {
    if (this.flags.length === 0) return undefined;
    const flags = this.flags;
    const labels = this.labels;
    this.flags = [];
    this.labels = [];
    const all = tf.tidy(() => tf.stack(flags));
    try {
      const v = await all.data();
      const i = v.findIndex((b) => b === 0);
      return i < 0 ? undefined : labels[i];
    } finally {
      all.dispose();
      for (const f of flags) f.dispose();
    }
  }

  dispose(): void {
    for (const f of this.flags) f.dispose();
    this.flags = [];
    this.labels = [];
  }
}

/** Validates a user seed: any safe integer. */
export function checkSeed(seed: unknown, name = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected a safe integer, got ${describeValue(seed)}`, {
      argument: name,
    });
  }
  return seed;
}

/**
 * Checks the arguments of an `ImageOutput` call (core's image contract): positive integer width and height,
 * 1, 3 or 4 channels, and a byte array of exactly width × height × channels values. `fn` prefixes the message.
 */
export function checkImagePixels(
  pixels: unknown,
  width: unknown,
  height: unknown,
  channels: unknown,
  fn: string,
): void {
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new SbmError('INVALID_ARGUMENT', `${fn}: ${name}: expected a positive integer, got ${describeValue(v)}`);
    }
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new SbmError('INVALID_ARGUMENT', `${fn}: channels: expected 1, 3 or 4, got ${describeValue(channels)}`);
  }
  if (!(pixels instanceof Uint8Array) && !(pixels instanceof Uint8ClampedArray)) {
    throw new SbmError('INVALID_ARGUMENT', `${fn}: pixels: expected a Uint8Array, got ${describeValue(pixels)}`);
  }
  const expected = (width as number) * (height as number) * (channels as number);
  if (pixels.length !== expected) {
    throw new SbmError(
      'INVALID_SHAPE',
      `${fn}: pixels: expected ${width}×${height}×${channels} = ${expected} bytes, got ${pixels.length}`,
    );
  }
}
