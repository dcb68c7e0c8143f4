// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
import type { LinearOperator } from '../operator';
export const COLOR_DECOUPLE_MATRIX: readonly (readonly number[])[] = [];
export function decoupleColors(x: tf.Tensor): tf.Tensor {
  return todo('decoupleColors' + String(x));
}
export function coupleColors(x: tf.Tensor): tf.Tensor {
  return todo('coupleColors' + String(x));
}
export interface GrayscaleOperatorOptions {
  height: number;
  width: number;
}
export function grayscaleOperator(opts: GrayscaleOperatorOptions): LinearOperator {
  return todo('grayscaleOperator' + String(opts));
}
