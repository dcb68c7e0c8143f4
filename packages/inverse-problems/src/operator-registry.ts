import { createRegistry, type RegisterOptions } from '@sbm/core';
import type { LinearOperator } from './operator';
import { maskOperator } from './operators/mask';
import { grayscaleOperator } from './operators/grayscale';
import { downsampleOperator } from './operators/downsample';
import { gaussianOperator } from './operators/gaussian';
import { radonOperator } from './operators/radon';
import { mriOperator } from './operators/mri';

/** Builds a named operator from options (registerOperator). */
export type OperatorFactory = (opts: Record<string, unknown>) => LinearOperator | Promise<LinearOperator>;

const operators = createRegistry<OperatorFactory>('operator', { argument: 'operator' });

/** Registers a measurement operator factory under `name` (CLI tasks and the demo list them). */
export function registerOperator(name: string, factory: OperatorFactory, opts?: RegisterOptions): void {
  operators.register(name, factory, opts);
}
/** Builds the registered operator `name` with `opts`. */
export async function createOperator(name: string, opts: Record<string, unknown> = {}): Promise<LinearOperator> {
  return operators.get(name, 'operator')(opts);
}
export function listOperators(): string[] {
  return operators.list();
}
export function unregisterOperator(name: string): boolean {
  return operators.unregister(name);
}

// The built-in operators, registered where createOperator lives (the CLI's tasks and the demo build them by name).
const SOURCE = '@sbm/inverse-problems';
const builtins: [string, OperatorFactory, string][] = [
  ['mask', (o) => maskOperator(o as never), 'inpainting: keep the pixels where mask = 1'],
  [
    'grayscale',
    (o) => grayscaleOperator(o as never),
    "colorization: the gray channel (R+G+B)/√3 of score_sde's decoupled colour basis",
  ],
  ['downsample', (o) => downsampleOperator(o as never), 'super-resolution: k×k average pooling'],
  ['gaussian', (o) => gaussianOperator(o as never), 'compressed sensing: a seeded random Gaussian matrix'],
  ['radon', (o) => radonOperator(o as never), 'sparse-view CT: a parallel-beam Radon transform with n views'],
  ['mri', (o) => mriOperator(o as never), 'undersampled MRI: the 2-D DFT with a Cartesian column mask'],
];
for (const [name, factory, description] of builtins) {
  registerOperator(name, factory, { ifAbsent: true, source: SOURCE, description });
}
