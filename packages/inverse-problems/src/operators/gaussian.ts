// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type { LinearOperator } from '../operator';
export interface GaussianOperatorOptions {
  inShape: number[];
  m?: number;
  ratio?: number;
  seed: number;
}
export function gaussianOperator(opts: GaussianOperatorOptions): LinearOperator {
  return todo('gaussianOperator' + String(opts));
}
