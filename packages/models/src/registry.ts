import { SbmError, createRegistry, describeValue, type RegisterOptions, type SeedStream } from '@sbm/core';
import { name as pkgName, version as pkgVersion } from '../package.json';
import type { ModelConfig, ScoreModel } from './model';
import { MlpScoreModel, type MlpConfig } from './mlp';
import { ScoreNet, type ScoreNetConfig } from './scorenet';
import { NcsnppModel, type NcsnppConfig } from './ncsnpp';
import { ScoreSdeNcsnpp, type ScoreSdeNcsnppConfig } from './score-sde-ncsnpp';

/** Builds a model from its plain-JSON config; `seed` fixes the initial weights. */
export type ModelFactory = (config: ModelConfig, seed: number | SeedStream) => ScoreModel;

// core's registry: shared by the ESM and CJS builds, listed by `sbm plugins`, did-you-mean on unknown names.
const models = createRegistry<ModelFactory>('model', { registerName: 'registerModel', argument: 'model.name' });

/**
 * Registers a model architecture under `name`, so `modelFromConfig({ name, ... })` — and so checkpoints and the CLI
 * — can rebuild it. Re-registering a name throws DUPLICATE_NAME unless `{ override: true }`; `source` ("pkg@1.2.3")
 * is what `sbm plugins` shows.
 */
export function registerModel(name: string, factory: ModelFactory, opts: RegisterOptions = {}): void {
  models.register(name, factory, opts);
}

export function unregisterModel(name: string): boolean {
  return models.unregister(name);
}

/** Registered model names. */
export function listModels(): string[] {
  return models.list();
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
  return models.get(config.name, 'model.name')(config, opts.seed ?? 0);
}

const BUILTIN = { ifAbsent: true, source: `${pkgName}@${pkgVersion}` };
registerModel('mlp', (c, s) => new MlpScoreModel(c as MlpConfig, s), {
  ...BUILTIN,
  description: 'MLP on [N, D] data (toy 2-D sets)',
});
registerModel('scorenet', (c, s) => new ScoreNet(c as ScoreNetConfig, s), {
  ...BUILTIN,
  description: "Song's tutorial U-Net (28×28 images)",
});
registerModel('ncsnpp', (c, s) => new NcsnppModel(c as NcsnppConfig, s), {
  ...BUILTIN,
  description: 'NCSN++-style U-Net (square images)',
});
registerModel('score-sde-ncsnpp', (c, s) => new ScoreSdeNcsnpp(c as ScoreSdeNcsnppConfig, s), {
  ...BUILTIN,
  description: "score_sde_pytorch's NCSNpp exactly (NCSN++ / DDPM++; loads reference checkpoints via @sbm/interop)",
});
