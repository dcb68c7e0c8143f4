// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type { LinearOperator } from '../operator';
export interface MaskOperatorOptions {
  mask: unknown;
}
export function maskOperator(opts: MaskOperatorOptions): LinearOperator {
  return todo('maskOperator' + String(opts));
}
