// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
import type { MethodDefinition } from '../types';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
export interface LambdaProjectionOptions {
  lambda?: number;
  finalDenoise?: boolean;
}
export const lambdaProjectionMethod: MethodDefinition = {
  run: () => todo('lambda-projection'),
  keys: [],
  needsMeasurement: true,
  samplers: 'fixed-step',
};
