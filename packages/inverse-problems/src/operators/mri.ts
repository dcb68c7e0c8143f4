// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
import type { LinearOperator } from '../operator';
export interface MriOperatorOptions {
  height: number;
  width: number;
  acceleration: number;
  centerFraction?: number;
  seed: number;
}
export function mriOperator(opts: MriOperatorOptions): LinearOperator {
  return todo('mriOperator' + String(opts));
}
export function zeroFilledInverse(op: LinearOperator, y: tf.Tensor): tf.Tensor {
  return todo('zeroFilledInverse' + String(op) + String(y));
}
