import type * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkOptions,
  createRegistry,
  describeValue,
  type RegisterOptions,
  type RegistryEntry,
  type SeedStream,
} from '@sbm/core';
import type { ScoreFn, Sde } from '@sbm/sde';
import { name as pkgName, version as pkgVersion } from '../package.json';
import { DSM_OPTION_KEYS, dsmLoss, tutorialDsmLoss, type DsmOptions } from './dsm';
import {
  DISCRETE_OPTION_KEYS,
  ddpmLoss,
  smldLoss,
  type DiscreteLossOptions,
  type EpsilonModel,
  type NoiseConditionalScoreModel,
} from './discrete';
import {
  ISM_OPTION_KEYS,
  SSM_OPTION_KEYS,
  implicitScoreMatchingLoss,
  slicedScoreMatchingLoss,
  type ImplicitScoreMatchingOptions,
  type SlicedScoreMatchingOptions,
} from './score-matching';
import { withoutSyncChecks } from './internal';

/**
 * What a model offers a loss. Every caller provides a score function s(x, t); SMLD's objective is stated for a
 * noise-conditional model s(x, σ_i, i) and DDPM's for an ε-predictor ε(x, i), which a caller provides only when it
 * has one.
 */
export type LossModelInterface = 'score' | 'noise-conditional' | 'epsilon';

/** What a registered loss receives: the model's interfaces, the batch, the SDE, the seed and the loss's options. */
export interface LossContext {
  /** The model as a score function s(x, t) (the trainer: createScoreFn in training mode). */
  score: ScoreFn;
  /** The batch [B, ...]. */
  x0: tf.Tensor;
  sde: Sde;
  /** The seed of this evaluation (the trainer: a pure function of the run seed and the step). */
  seed: number | SeedStream;
  /** The loss's own options, already checked against its `optionKeys`. */
  options: Record<string, unknown>;
  /** A noise-conditional model (x, σ_i, i) → score, for losses that require 'noise-conditional'. */
  noiseConditional?: NoiseConditionalScoreModel;
  /** An ε-prediction model (x, i) → ε, for losses that require 'epsilon'. */
  epsilon?: EpsilonModel;
  /** Whatever the caller trains (train() passes its ScoreModel), for plugin losses that need more. */
  model?: unknown;
  /** 0-based index of the update (train()). */
  step?: number;
}

/** A loss: a differentiable scalar of the model's variables. */
export type LossFn = (ctx: LossContext) => tf.Scalar;

export interface RegisterLossOptions extends RegisterOptions {
  /** The option keys the loss accepts; any other key is rejected with a did-you-mean (default: none). */
  optionKeys?: readonly string[];
  /** The model interface the loss needs beyond `score` (default 'score'). */
  requires?: LossModelInterface;
}

/** A registered loss, as `getLoss` returns it. */
export interface Loss {
  readonly name: string;
  readonly optionKeys: readonly string[];
  readonly requires: LossModelInterface;
  readonly description?: string;
  /**
   * Checks the options and the model interface, then evaluates. Finiteness of the batch is the caller's to check
   * (the trainer does it asynchronously): here nothing reads a tensor back, so the loss runs on any backend.
   */
  compute(ctx: LossContext): tf.Scalar;
}

interface LossValue {
  fn: LossFn;
  optionKeys: readonly string[];
  requires: LossModelInterface;
}

const registry = createRegistry<LossValue>('loss', {
  isValue: (v) => v !== null && typeof v === 'object' && typeof (v as LossValue).fn === 'function',
  expected: 'a loss function',
});

const INTERFACES: readonly LossModelInterface[] = ['score', 'noise-conditional', 'epsilon'];

/**
 * Registers a loss under `name`: train({ loss: name }), the CLI's --loss and listLosses() know it at once.
 * DUPLICATE_NAME for a taken name unless `{ override: true }`.
 */
export function registerLoss(name: string, fn: LossFn, opts: RegisterLossOptions = {}): void {
  if (typeof fn !== 'function') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerLoss: fn: expected a function (ctx) => scalar, got ${describeValue(fn)}`,
      {
        argument: 'fn',
      },
    );
  }
  const { optionKeys = [], requires = 'score', ...ro } = opts;
  if (!Array.isArray(optionKeys) || optionKeys.some((k) => typeof k !== 'string')) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerLoss: optionKeys: expected an array of strings, got ${describeValue(optionKeys)}`,
      {
        argument: 'optionKeys',
      },
    );
  }
  if (!INTERFACES.includes(requires)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `registerLoss: requires: expected one of ${INTERFACES.join(', ')}, got ${describeValue(requires)}`,
      { argument: 'requires' },
    );
  }
  registry.register(name, { fn, optionKeys: [...optionKeys], requires }, ro);
}

export function unregisterLoss(name: string): boolean {
  return registry.unregister(name);
}

/** Registered loss names (built-ins first, then plugins in registration order). */
export function listLosses(): string[] {
  return registry.list();
}

/** The registry entries (name, source, description, aliases) for listings such as `sbm plugins`. */
export function lossEntries(): RegistryEntry<unknown>[] {
  return registry.entries();
}

const NEEDS: Record<Exclude<LossModelInterface, 'score'>, { key: 'noiseConditional' | 'epsilon'; what: string }> = {
  'noise-conditional': { key: 'noiseConditional', what: 'a noise-conditional model (x, sigma, index) => score' },
  epsilon: { key: 'epsilon', what: 'an epsilon-prediction model (x, timestep) => epsilon' },
};

/** The loss registered under `name` (or an alias); UNKNOWN_NAME with a did-you-mean otherwise. */
export function getLoss(name: string, argument = 'loss'): Loss {
  const value = registry.get(name, argument);
  const entry = registry.entry(name)!;
  const where = `loss "${entry.name}"`;
  return {
    name: entry.name,
    optionKeys: value.optionKeys,
    requires: value.requires,
    description: entry.description,
    compute(ctx) {
      if (ctx === null || typeof ctx !== 'object') {
        throw new SbmError('INVALID_ARGUMENT', `${where}: context: expected an object, got ${describeValue(ctx)}`);
      }
      const options = ctx.options ?? {};
      checkOptions(options, value.optionKeys, `${where}: lossOptions`, {});
      if (value.requires !== 'score') {
        const need = NEEDS[value.requires];
        if (typeof ctx[need.key] !== 'function') {
          throw new SbmError(
            'INVALID_ARGUMENT',
            `${where}: ${need.key}: expected ${need.what} (the loss is stated for one), got ${describeValue(ctx[need.key])}; ` +
              'a model that offers only a score function s(x, t) trains with "dsm" (the continuous-time form of both)',
            { argument: need.key },
          );
        }
      }
      return withoutSyncChecks(() => value.fn({ ...ctx, options }));
    },
  };
}

const source = `${pkgName}@${pkgVersion}`;
// The trainer's SDE perturbs the data for SSM and ISM, so `sde` is not theirs to set here.
const withoutSde = (keys: readonly string[]) => keys.filter((k) => k !== 'sde');

registerLoss('dsm', (c) => dsmLoss(c.score, c.x0, c.sde, c.seed, c.options as DsmOptions), {
  ifAbsent: true,
  source,
  optionKeys: DSM_OPTION_KEYS,
  description: 'continuous denoising score matching, λ(t) = σ² (default) or g² (likelihood) (Song et al. 2021, eq. 7)',
});
registerLoss('tutorial-dsm', (c) => tutorialDsmLoss(c.score, c.x0, c.sde, c.seed, c.options as DsmOptions), {
  ifAbsent: true,
  source,
  optionKeys: ['eps', 't'],
  description: "DSM as Song's MNIST tutorial sums it: Σ_dims (σ s + z)², twice 'dsm'",
});
registerLoss(
  'ssm',
  (c) => slicedScoreMatchingLoss(c.score, c.x0, c.seed, { ...(c.options as SlicedScoreMatchingOptions), sde: c.sde }),
  {
    ifAbsent: true,
    source,
    optionKeys: withoutSde(SSM_OPTION_KEYS),
    description: 'sliced score matching on x_t, weighted by λ(t) (Song, Garg, Shi & Ermon 2019, eq. 7–8)',
  },
);
registerLoss(
  'ism',
  (c) =>
    implicitScoreMatchingLoss(c.score, c.x0, c.seed, { ...(c.options as ImplicitScoreMatchingOptions), sde: c.sde }),
  {
    ifAbsent: true,
    source,
    optionKeys: withoutSde(ISM_OPTION_KEYS),
    description: 'exact implicit score matching on x_t, D backward passes (Hyvärinen 2005, eq. 4); small D only',
  },
);
registerLoss(
  'smld',
  (c) => smldLoss(c.noiseConditional!, c.x0, c.sde as never, c.seed, c.options as DiscreteLossOptions),
  {
    ifAbsent: true,
    source,
    optionKeys: DISCRETE_OPTION_KEYS,
    requires: 'noise-conditional',
    description: 'SMLD / NCSN on the VE grid σ_i (Song & Ermon 2019, eq. 2); needs a noise-conditional model',
  },
);
registerLoss('ddpm', (c) => ddpmLoss(c.epsilon!, c.x0, c.sde as never, c.seed, c.options as DiscreteLossOptions), {
  ifAbsent: true,
  source,
  optionKeys: DISCRETE_OPTION_KEYS,
  requires: 'epsilon',
  description: 'DDPM L_simple on the VP grid (Ho et al. 2020, eq. 14); needs an ε-prediction model',
});
