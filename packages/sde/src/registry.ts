import { SbmError, createRegistry, describeValue, type Registry } from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import type { Sde } from './sde';
import type { SdeConfig } from './types';
import { SDE_N, SDE_T, checkSdeOptions } from './options';
import { VeSde, type VeSdeOptions } from './ve';
import { SubVpSde, VpSde, type VpSdeOptions } from './vp';
import { TutorialVeSde, type TutorialVeSdeOptions } from './tutorial-ve';

/** Builds an SDE from the options of its plain-JSON config (everything but `name`). */
export type SdeFactory = (options: Record<string, unknown>) => Sde;

/** Options of registerSde. */
export interface RegisterSdeOptions {
  /** Replace an SDE of the same name instead of throwing DUPLICATE_NAME. */
  override?: boolean;
  /** Skip silently when the name is taken (how packages register built-ins: an ESM and a CJS copy register once). */
  ifAbsent?: boolean;
  /** "package@version" of the registering package, shown by `sbm plugins` (default "user"). */
  source?: string;
  /** One line for listings. */
  description?: string;
}

/**
 * The SDE registry (core's one mechanism, kept on globalThis so ESM and CJS copies share it). Apps list its
 * `entries()` with their `source`; everything else goes through registerSde / createSde.
 */
export const sdeRegistry: Registry<SdeFactory> = createRegistry<SdeFactory>('sde', {
  registerName: 'registerSde',
  argument: 'sde.name',
});

/**
 * Registers an SDE under `name` so that `createSde({ name, ... })` — and so the CLI, checkpoints and every
 * sampler — can build it. Re-registering a name throws unless `{ override: true }`.
 */
export function registerSde(name: string, factory: SdeFactory, opts: RegisterSdeOptions = {}): void {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerSde: name: expected a name like "cosine-vp", got ${describeValue(name)}`,
      { argument: 'name', received: name },
    );
  }
  if (typeof factory !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `registerSde: factory: expected a function, got ${describeValue(factory)}`, {
      argument: 'factory',
    });
  }
  const existing = sdeRegistry.entry(name);
  if (existing && !opts.override && !opts.ifAbsent) {
    throw new SbmError(
      'DUPLICATE_NAME',
      `registerSde: an SDE named "${name}" is already registered (from ${existing.source}); pass { override: true } to replace it`,
      { name },
    );
  }
  sdeRegistry.register(name, factory, {
    override: opts.override,
    ifAbsent: opts.ifAbsent,
    source: opts.source,
    description: opts.description,
  });
}

export function unregisterSde(name: string): boolean {
  return sdeRegistry.unregister(name);
}

/** Registered SDE names. */
export function listSdes(): string[] {
  return sdeRegistry.list();
}

/** Creates an SDE from `{ name, ...options }` or a bare name. Unknown names get a did-you-mean. */
export function createSde(config: SdeConfig | string): Sde {
  const cfg: SdeConfig = typeof config === 'string' ? { name: config } : config;
  if (cfg === null || typeof cfg !== 'object' || typeof cfg.name !== 'string') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `sde: expected a config { name: string, ... }, got ${describeValue(config)}`,
      { argument: 'sde' },
    );
  }
  const factory = sdeRegistry.get(cfg.name, 'sde.name');
  const { name: _name, ...options } = cfg;
  return factory(options);
}

const builtin = { ifAbsent: true, source: `${pkgName}@${pkgVersion}` };
const VE = { sigmaMin: { gt: 0 }, sigmaMax: { gt: 0 }, N: SDE_N, T: SDE_T };
const VP = { betaMin: { gt: 0 }, betaMax: { gt: 0 }, N: SDE_N, T: SDE_T };
registerSde('ve', (o) => new VeSde(checkSdeOptions<VeSdeOptions>('ve', o, VE)), {
  ...builtin,
  description: 'variance exploding (SMLD / NCSN)',
});
registerSde('vp', (o) => new VpSde(checkSdeOptions<VpSdeOptions>('vp', o, VP)), {
  ...builtin,
  description: 'variance preserving (DDPM), linear β',
});
registerSde('subvp', (o) => new SubVpSde(checkSdeOptions<VpSdeOptions>('subvp', o, VP)), {
  ...builtin,
  description: 'sub-VP, linear β',
});
registerSde(
  'tutorial-ve',
  (o) => new TutorialVeSde(checkSdeOptions<TutorialVeSdeOptions>('tutorial-ve', o, { sigma: { gt: 1 }, N: SDE_N })),
  { ...builtin, description: "VE SDE of Song's MNIST tutorial, dx = σ^t dw" },
);
