// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type { LinearOperator } from '../operator';
export interface DownsampleOperatorOptions {
  inShape: number[];
  factor: number;
}
export function downsampleOperator(opts: DownsampleOperatorOptions): LinearOperator {
  return todo('downsampleOperator' + String(opts));
}
