import { listLosses } from '@sbm/losses';
import { didYouMean, listBackends } from '@sbm/core';
import { registerNodeBackends } from '@sbm/backend-node';
import { toyNames } from '@sbm/datasets';
import { listModels } from '@sbm/models';
import { listCorrectors, listPredictors, listSamplers } from '@sbm/samplers';
import { listSdes } from '@sbm/sde';
import { UsageError } from './errors';

/** The registries whose names the CLI offers as flag values (and `sbm plugins` lists). */
export type Kind = 'backend' | 'sde' | 'model' | 'loss' | 'sampler' | 'predictor' | 'corrector' | 'toy';

/** The package that owns each registry (the source of names it had before any plugin loaded). */
export const KIND_PACKAGES: Record<Kind, string> = {
  backend: '@sbm/backend-node',
  sde: '@sbm/sde',
  model: '@sbm/models',
  loss: '@sbm/losses',
  sampler: '@sbm/samplers',
  predictor: '@sbm/samplers',
  corrector: '@sbm/samplers',
  toy: '@sbm/datasets',
};

/** Registered losses (@sbm/losses' registry, which train() resolves names in). */
export function lossNames(): string[] {
  return listLosses();
}

let backendsRegistered = false;
export function backendNames(): string[] {
  if (!backendsRegistered) {
    registerNodeBackends();
    backendsRegistered = true;
  }
  return listBackends().map((b) => b.name);
}

/** Every registry's names, read now (after plugins loaded). */
export function legacyNames(): Record<Kind, string[]> {
  return {
    backend: backendNames(),
    sde: listSdes(),
    model: listModels(),
    loss: lossNames(),
    sampler: listSamplers(),
    predictor: listPredictors(),
    corrector: listCorrectors(),
    toy: toyNames(),
  };
}

/** A commander argParser accepting one of `choices()` and failing in the flag's words, with a did-you-mean. */
export function choiceArg(flag: string, choices: () => readonly string[], plugin = true): (v: string) => string {
  return (v: string) => {
    checkChoice(flag, v, choices(), plugin);
    return v;
  };
}

/** UsageError unless `value` is one of `choices`; `plugin` adds how to get a name a plugin registers. */
export function checkChoice(flag: string, value: string, choices: readonly string[], plugin = true): void {
  if (choices.includes(value)) return;
  const near = didYouMean(value, choices);
  const hint = !near && plugin ? ' (a name from a plugin? load it with --plugin <module>; see sbm plugins)' : '';
  throw new UsageError(`${flag}: expected one of ${choices.join(', ')}, got "${value}"${near}${hint}`);
}

/** "(one of: a, b, c)" for help texts. */
export function oneOf(choices: readonly string[]): string {
  return `one of: ${choices.join(', ')}`;
}
