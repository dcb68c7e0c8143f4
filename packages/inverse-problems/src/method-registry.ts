import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkFiniteAsync,
  checkNumber,
  createRegistry,
  describeValue,
  type RegisterOptions,
} from '@sbm/core';
import { isSde } from '@sbm/sde';
import { checkBatchShape, checkOperator, type LinearOperator } from './operator';
import type { ConditionalSampleOptions, MethodDefinition } from './types';

/** The option keys every method takes. */
export const COMMON_KEYS = [
  'method',
  'sde',
  'score',
  'shape',
  'seed',
  'operator',
  'y',
  'noiseStd',
  'sampler',
  'samplerOptions',
  'signal',
  'onProgress',
] as const;

const methods = createRegistry<MethodDefinition>('inverse-method', {
  argument: 'method',
  isValue: (v) => v !== null && typeof v === 'object' && typeof (v as MethodDefinition).run === 'function',
  expected: 'a MethodDefinition { run, keys, needsMeasurement, samplers }',
  registerName: 'registerMethod',
});

/** Registers a conditional sampling method (a plugin's is used by conditionalSample, the CLI and the demo alike). */
export function registerMethod(name: string, def: MethodDefinition, opts?: RegisterOptions): void {
  methods.register(name, def, opts);
}
export function getMethod(name: string): MethodDefinition {
  return methods.get(name, 'method');
}
export function listMethods(): string[] {
  return methods.list();
}
export function unregisterMethod(name: string): boolean {
  return methods.unregister(name);
}

/** ‖A x − y‖ per sample, read back asynchronously (GPU-safe). */
export async function measurementResidual(op: LinearOperator, x: tf.Tensor, y: tf.Tensor): Promise<number[]> {
  const r = tf.tidy(() => {
    const d = tf.sub(op.forward(x), y);
    return tf.sqrt(tf.sum(tf.square(tf.reshape(d, [d.shape[0], -1])), 1));
  });
  const v = await r.data();
  r.dispose();
  return Array.from(v);
}

/** Checks what every method shares; returns the operator (checked with the dot-product test) when there is one. */
export async function checkCommon(
  opts: ConditionalSampleOptions,
  def: MethodDefinition,
): Promise<LinearOperator | undefined> {
  if (!isSde(opts.sde)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected an Sde instance (e.g. createSde('vp')), got ${describeValue(opts.sde)}`,
      {
        argument: 'sde',
      },
    );
  }
  if (typeof opts.score !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `score: expected a function (x, t) => tensor, got ${describeValue(opts.score)}`,
      {
        argument: 'score',
      },
    );
  }
  const { shape } = opts;
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `shape: expected [batch, ...dims] of positive integers, got ${describeValue(shape)}`,
      {
        argument: 'shape',
      },
    );
  }
  if (opts.noiseStd !== undefined) checkNumber(opts.noiseStd, 'noiseStd', { min: 0 });
  if (opts.samplerOptions !== undefined && (opts.samplerOptions === null || typeof opts.samplerOptions !== 'object')) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `samplerOptions: expected an object, got ${describeValue(opts.samplerOptions)}`,
      {
        argument: 'samplerOptions',
      },
    );
  }
  if (!def.needsMeasurement) {
    for (const k of ['operator', 'y'] as const) {
      if (opts[k] !== undefined) {
        throw new SbmError('INVALID_ARGUMENT', `${k}: method "${opts.method}" takes no measurement`, { argument: k });
      }
    }
    return undefined;
  }
  if (opts.operator === undefined) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `operator: method "${opts.method}" needs a measurement operator (createOperator(...))`,
      {
        argument: 'operator',
      },
    );
  }
  const op = await checkOperator(opts.operator);
  const dims = shape.slice(1);
  if (dims.length !== op.inShape.length || dims.some((d, i) => d !== op.inShape[i])) {
    throw new SbmError(
      'INVALID_SHAPE',
      `shape: expected [batch, ${op.inShape.join(', ')}] (the operator's inShape), got [${shape.join(', ')}]`,
      { argument: 'shape' },
    );
  }
  if (opts.y === undefined) {
    throw new SbmError('INVALID_ARGUMENT', `y: method "${opts.method}" needs the measurements y`, { argument: 'y' });
  }
  const y = checkBatchShape(opts.y, op.outShape, 'y', 'the measurements');
  if (y.shape[0] !== shape[0]) {
    throw new SbmError('INVALID_SHAPE', `y: expected batch ${shape[0]} (shape[0]), got ${y.shape[0]}`, {
      argument: 'y',
    });
  }
  await checkFiniteAsync(y, 'y');
  return op;
}
