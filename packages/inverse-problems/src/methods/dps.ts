// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
import type { MethodDefinition } from '../types';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
export interface DpsOptions {
  zeta?: number;
}
export const dpsMethod: MethodDefinition = {
  run: () => todo('dps'),
  keys: [],
  needsMeasurement: true,
  samplers: 'fixed-step',
};
