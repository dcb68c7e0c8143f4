// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type * as tf from '@tensorflow/tfjs';
export type MaskName = 'center-box' | 'random' | 'left-half' | 'right-half' | 'top-half' | 'bottom-half';
export interface NamedMaskOptions {
  height: number;
  width: number;
  channels?: number;
  ratio?: number;
  seed?: number;
}
export function namedMask(name: string, opts: NamedMaskOptions): tf.Tensor {
  return todo('namedMask' + name + String(opts));
}
