// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
import type { LinearOperator } from './operator';
export type BaselineFn = (operator: LinearOperator, y: tf.Tensor) => tf.Tensor | Promise<tf.Tensor>;
export function registerBaseline(
  name: string,
  fn: BaselineFn,
  opts?: { operators?: string[]; description?: string },
): void {
  todo('registerBaseline' + name + String(fn) + String(opts));
}
export function baselinesFor(operator: LinearOperator): string[] {
  return todo('baselinesFor' + String(operator));
}
export function runBaseline(name: string, operator: LinearOperator, y: tf.Tensor): Promise<tf.Tensor> {
  return todo('runBaseline' + name + String(operator) + String(y));
}
