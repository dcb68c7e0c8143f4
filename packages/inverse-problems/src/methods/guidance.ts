// PLACEHOLDER written by the lead so that index.ts compiles; the owning helper replaces this whole file.
import { SbmError } from '@sbm/core';
import type { MethodDefinition } from '../types';
const todo = (what: string): never => {
  throw new SbmError('UNSUPPORTED', `${what}: being built`);
};
void todo;
import type { ScoreFn } from '@sbm/sde';
import type { TimeClassifierFn } from '../types';
export interface GuidanceOptions {
  classifier: TimeClassifierFn;
  label: number | number[];
  scale?: number;
  numClasses?: number;
}
export function classifierGuidedScore(score: ScoreFn, opts: GuidanceOptions): ScoreFn {
  return todo('classifierGuidedScore' + String(score) + String(opts));
}
export const guidanceMethod: MethodDefinition = {
  run: () => todo('guidance'),
  keys: [],
  needsMeasurement: false,
  samplers: 'fixed-step',
};
