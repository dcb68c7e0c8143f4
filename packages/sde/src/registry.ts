import { SbmError, describeValue } from '@sbm/core';
import type { Sde } from './sde';
import type { SdeConfig } from './types';
import { VeSde, type VeSdeOptions } from './ve';
import { SubVpSde, VpSde, type VpSdeOptions } from './vp';
import { TutorialVeSde, type TutorialVeSdeOptions } from './tutorial-ve';

/** Builds an SDE from the options of its plain-JSON config (everything but `name`). */
export type SdeFactory = (options: Record<string, unknown>) => Sde;

const factories = new Map<string, SdeFactory>();

/**
 * Registers an SDE under `name` so that `createSde({ name, ... })` — and so the CLI, checkpoints and every
 * sampler — can build it. Re-registering a name throws unless `{ override: true }`.
 */
export function registerSde(name: string, factory: SdeFactory, opts: { override?: boolean } = {}): void {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerSde: name: expected a name like "cosine-vp", got ${describeValue(name)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `registerSde: factory: expected a function, got ${describeValue(factory)}`);
  }
  if (factories.has(name) && !opts.override) {
    throw new SbmError('DUPLICATE_NAME', `registerSde: an SDE named "${name}" is already registered`, { name });
  }
  factories.set(name, factory);
}

export function unregisterSde(name: string): boolean {
  return factories.delete(name);
}

/** Registered SDE names. */
export function listSdes(): string[] {
  return [...factories.keys()];
}

/** Creates an SDE from `{ name, ...options }` or a bare name. */
export function createSde(config: SdeConfig | string): Sde {
  const cfg: SdeConfig = typeof config === 'string' ? { name: config } : config;
  if (cfg === null || typeof cfg !== 'object' || typeof cfg.name !== 'string') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected a config { name: string, ... }, got ${describeValue(config)}`,
    );
  }
  const factory = factories.get(cfg.name);
  if (!factory) {
    throw new SbmError(
      'UNKNOWN_NAME',
      `sde.name: expected one of ${listSdes()
        .map((n) => JSON.stringify(n))
        .join(', ')}, got ${JSON.stringify(cfg.name)}`,
      { argument: 'sde.name', expected: listSdes(), received: cfg.name },
    );
  }
  const { name: _name, ...options } = cfg;
  return factory(options);
}

function pick<T>(options: Record<string, unknown>, allowed: string[], sde: string): T {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `sde.${key}: not an option of the "${sde}" SDE (expected one of ${allowed.join(', ')})`,
        { argument: `sde.${key}`, expected: allowed },
      );
    }
  }
  return options as T;
}

registerSde('ve', (o) => new VeSde(pick<VeSdeOptions>(o, ['sigmaMin', 'sigmaMax', 'N', 'T'], 've')));
registerSde('vp', (o) => new VpSde(pick<VpSdeOptions>(o, ['betaMin', 'betaMax', 'N', 'T'], 'vp')));
registerSde('subvp', (o) => new SubVpSde(pick<VpSdeOptions>(o, ['betaMin', 'betaMax', 'N', 'T'], 'subvp')));
registerSde('tutorial-ve', (o) => new TutorialVeSde(pick<TutorialVeSdeOptions>(o, ['sigma', 'N'], 'tutorial-ve')));
