// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
import type { LinearOperator } from '../operator';
export interface DenseOperatorOptions {
  name?: string;
  inShape: number[];
  outShape: number[];
  matrix: Float64Array | number[][];
}
export function denseOperator(opts: DenseOperatorOptions): LinearOperator {
  return todo('denseOperator' + String(opts));
}
export function materialize(op: LinearOperator): Promise<{ rows: number; cols: number; data: Float64Array }> {
  return todo('materialize' + String(op));
}
export function withPinv(op: LinearOperator, opts?: { rcond?: number }): Promise<LinearOperator> {
  return todo('withPinv' + String(op) + String(opts));
}
export type { tf };
