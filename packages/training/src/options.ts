import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkNumber,
  checkOptions,
  checkSeed,
  describeValue,
  type CheckpointLock,
  type CheckpointStorage,
} from '@sbm/core';
import { isSde, isVeType, type Sde } from '@sbm/sde';
import { getLoss, type Loss } from '@sbm/losses';
import { ScoreModel } from '@sbm/models';
import { checkStorage } from './checkpoint';
import { checkBatchSource, tensorBatchSource, type BatchSource } from './data';
import { SALT_DATA, stepSeed } from './seeds';
import type { LossFn, TrainOptions } from './types';

const TRAIN_OPTION_KEYS = [
  'model',
  'sde',
  'data',
  'loss',
  'lossOptions',
  'scoreFn',
  'steps',
  'epochs',
  'batchSize',
  'lr',
  'warmup',
  'gradClip',
  'adam',
  'ema',
  'seed',
  'checkpoint',
  'resume',
  'onProgress',
  'progressEvery',
  'nanCheckEvery',
  'historyEvery',
  'dataRange',
  'signal',
] as const;

// Names other trainers use for the same things.
const TRAIN_ALIASES: Record<string, string> = {
  batch_size: 'batchSize',
  learning_rate: 'lr',
  learningRate: 'lr',
  n_iters: 'steps',
  num_train_steps: 'steps',
  iterations: 'steps',
  warmup_steps: 'warmup',
  grad_clip: 'gradClip',
  ema_rate: 'ema',
  callback: 'onProgress',
  loss_fn: 'loss',
};

/** Everything train() needs, checked and with defaults filled in. */
export interface RunConfig {
  model: ScoreModel;
  sde: Sde;
  seed: number;
  source: BatchSource;
  sampleShape: number[];
  totalSteps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  gradClip: number | null;
  emaDecay: number;
  emaWarmup: boolean;
  /** A registered loss or the caller's function. */
  loss: Loss | LossFn;
  lossOptions: Record<string, unknown>;
  progressEvery: number;
  nanCheckEvery: number;
  historyEvery: number;
  checkpoint?: {
    storage: CheckpointStorage;
    location: string;
    every: number;
    lock?: CheckpointLock;
    onWarning?: (message: string) => void;
  };
}

/** Checks train()'s options (unknown keys included, with a did-you-mean) and resolves the defaults. */
export function resolveOptions(opts: TrainOptions): RunConfig {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `train: options: expected an object, got ${describeValue(opts)}`);
  }
  checkOptions(opts, TRAIN_OPTION_KEYS, 'train', TRAIN_ALIASES);
  const { model, sde } = opts;
  if (!(model instanceof ScoreModel)) {
    throw new SbmError('INVALID_ARGUMENT', `train: model: expected a ScoreModel, got ${describeValue(model)}`, {
      argument: 'model',
    });
  }
  if (!isSde(sde)) {
    throw new SbmError('INVALID_ARGUMENT', `train: sde: expected an Sde (createSde(...)), got ${describeValue(sde)}`, {
      argument: 'sde',
    });
  }
  const seed = checkSeed(opts.seed, 'seed');
  const batchSize = checkNumber(opts.batchSize ?? 128, 'batchSize', { integer: true, min: 1 });
  const loss = typeof opts.loss === 'function' ? opts.loss : getLoss(opts.loss ?? 'dsm', 'loss');
  const lossOptions = (opts.lossOptions ?? {}) as Record<string, unknown>;
  if (typeof loss !== 'function')
    checkOptions(lossOptions, loss.optionKeys, `train: lossOptions of "${loss.name}"`, {});
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `onProgress: expected a function, got ${describeValue(opts.onProgress)}`);
  }
  const { source, sampleShape } = resolveData(opts.data, model, batchSize, seed);
  let totalSteps: number;
  if (opts.steps !== undefined) {
    totalSteps = checkNumber(opts.steps, 'steps', { integer: true, min: 0 });
  } else if (opts.epochs !== undefined) {
    totalSteps = checkNumber(opts.epochs, 'epochs', { integer: true, min: 0 }) * source.stepsPerEpoch;
  } else {
    throw new SbmError('INVALID_ARGUMENT', 'train: expected `steps` or `epochs`, got neither', { argument: 'steps' });
  }
  const ckpt = opts.checkpoint;
  let checkpoint: RunConfig['checkpoint'];
  if (ckpt !== undefined) {
    const storage = checkStorage(ckpt.storage);
    if (typeof ckpt.location !== 'string' || ckpt.location.length === 0) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `checkpoint.location: expected a non-empty string, got ${describeValue(ckpt.location)}`,
      );
    }
    const every = checkNumber(ckpt.every ?? 1000, 'checkpoint.every', { integer: true, min: 1 });
    checkOptions(ckpt, ['storage', 'location', 'every', 'lock', 'onWarning'], 'train: checkpoint', {});
    const { lock, onWarning } = ckpt;
    if (
      lock !== undefined &&
      (lock === null || typeof lock !== 'object' || typeof lock.release !== 'function' || !lock.held)
    ) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `checkpoint.lock: expected a held lock (storage.lock(location)), got ${lock && typeof lock === 'object' && typeof lock.release === 'function' ? 'a released lock' : describeValue(lock)}`,
        { argument: 'checkpoint.lock' },
      );
    }
    if (onWarning !== undefined && typeof onWarning !== 'function') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `checkpoint.onWarning: expected a function, got ${describeValue(onWarning)}`,
        {
          argument: 'checkpoint.onWarning',
        },
      );
    }
    checkpoint = { storage, location: ckpt.location, every, lock, onWarning };
  }
  if (opts.resume && !checkpoint) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      'resume: expected checkpoint { storage, location } to resume from, got none',
      {
        argument: 'resume',
      },
    );
  }
  return {
    model,
    sde,
    seed,
    source,
    sampleShape,
    totalSteps,
    batchSize,
    lr: checkNumber(opts.lr ?? 2e-4, 'lr', { gt: 0 }),
    warmup: checkNumber(opts.warmup ?? 5000, 'warmup', { integer: true, min: 0 }),
    gradClip: opts.gradClip === null ? null : checkNumber(opts.gradClip ?? 1, 'gradClip', { gt: 0 }),
    // score_sde's configs: ema_rate 0.999 for the VE (NCSN++) runs, 0.9999 for VP / sub-VP (DDPM++).
    emaDecay: checkNumber(opts.ema?.decay ?? (isVeType(sde) ? 0.999 : 0.9999), 'ema.decay', { min: 0, max: 1 }),
    emaWarmup: opts.ema?.warmup ?? true,
    loss,
    lossOptions,
    progressEvery: checkNumber(opts.progressEvery ?? 1, 'progressEvery', { integer: true, min: 1 }),
    nanCheckEvery: checkNumber(opts.nanCheckEvery ?? 10, 'nanCheckEvery', { integer: true, min: 1 }),
    historyEvery: checkNumber(opts.historyEvery ?? 100, 'historyEvery', { integer: true, min: 1 }),
    checkpoint,
  };
}

function resolveData(
  data: TrainOptions['data'],
  model: ScoreModel,
  batchSize: number,
  seed: number,
): { source: BatchSource; sampleShape: number[] } {
  if (!(data instanceof tf.Tensor)) return { source: checkBatchSource(data), sampleShape: [...model.sampleShape] };
  if (data.isDisposed || data.rank < 2 || data.shape.slice(1).join() !== model.sampleShape.join()) {
    throw new SbmError(
      'INVALID_SHAPE',
      `data: expected a live tensor [N, ${model.sampleShape.join(', ')}] (the model's sample shape), got ${describeValue(data)}`,
      { argument: 'data' },
    );
  }
  if (data.shape[0] < batchSize) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `batchSize: expected at most the ${data.shape[0]} samples of data, got ${batchSize}`,
    );
  }
  return {
    source: tensorBatchSource(data, { batchSize, seed: stepSeed(seed, 0, SALT_DATA) }),
    sampleShape: data.shape.slice(1),
  };
}
