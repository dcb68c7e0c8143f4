import { SbmError, describeValue, type SeedStream } from '@sbm/core';
import type { ModelConfig, ScoreModel } from './model';
import { MlpScoreModel, type MlpConfig } from './mlp';
import { ScoreNet, type ScoreNetConfig } from './scorenet';
import { NcsnppModel, type NcsnppConfig } from './ncsnpp';

/** Builds a model from its plain-JSON config; `seed` fixes the initial weights. */
export type ModelFactory = (config: ModelConfig, seed: number | SeedStream) => ScoreModel;

const factories = new Map<string, ModelFactory>();

/**
 * Registers a model architecture under `name`, so `modelFromConfig({ name, ... })` — and so checkpoints and the CLI
 * — can rebuild it. Re-registering a name throws unless `{ override: true }`.
 */
export function registerModel(name: string, factory: ModelFactory, opts: { override?: boolean } = {}): void {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(name)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerModel: name: expected a name like "unet", got ${describeValue(name)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerModel: factory: expected a function, got ${describeValue(factory)}`,
    );
  }
  if (factories.has(name) && !opts.override) {
    throw new SbmError('DUPLICATE_NAME', `registerModel: a model named "${name}" is already registered`, { name });
  }
  factories.set(name, factory);
}

export function unregisterModel(name: string): boolean {
  return factories.delete(name);
}

/** Registered model names. */
export function listModels(): string[] {
  return [...factories.keys()];
}

/**
 * Creates a model from `{ name, ...options }` (the output of `model.toConfig()`), with fresh weights drawn from
 * `seed` (default 0). Load trained weights afterwards with `setWeights`.
 */
export function modelFromConfig(config: ModelConfig, opts: { seed?: number | SeedStream } = {}): ScoreModel {
  if (config === null || typeof config !== 'object' || typeof config.name !== 'string') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `model: expected a config { name: string, ... }, got ${describeValue(config)}`,
      {
        argument: 'model',
      },
    );
  }
  const factory = factories.get(config.name);
  if (!factory) {
    throw new SbmError(
      'UNKNOWN_NAME',
      `model.name: expected one of ${listModels()
        .map((n) => JSON.stringify(n))
        .join(', ')}, got ${JSON.stringify(config.name)}`,
      { argument: 'model.name', expected: listModels(), received: config.name },
    );
  }
  return factory(config, opts.seed ?? 0);
}

registerModel('mlp', (c, s) => new MlpScoreModel(c as MlpConfig, s));
registerModel('scorenet', (c, s) => new ScoreNet(c as ScoreNetConfig, s));
registerModel('ncsnpp', (c, s) => new NcsnppModel(c as NcsnppConfig, s));
