// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
import type { LinearOperator } from '../operator';
export interface RadonOperatorOptions {
  size: number;
  views: number;
  detectors?: number;
  angles?: number[];
}
export function radonOperator(opts: RadonOperatorOptions): Promise<LinearOperator> {
  return todo('radonOperator' + String(opts));
}
export function filteredBackProjection(op: LinearOperator, sinogram: tf.Tensor): tf.Tensor {
  return todo('filteredBackProjection' + String(op) + String(sinogram));
}
