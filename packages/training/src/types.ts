import type * as tf from '@tensorflow/tfjs';
import type { CheckpointLock, CheckpointStorage } from '@sbm/core';
import type { Sde, ScoreFn } from '@sbm/sde';
import type { DsmOptions, SlicedScoreMatchingOptions } from '@sbm/losses';
import type { ExponentialMovingAverage, ScoreModel, ScoreFnOptions } from '@sbm/models';
import type { BatchPosition } from '@sbm/datasets';
import type { AdamOptions } from './adam';
import type { LossHistory } from './checkpoint';
import type { BatchSource } from './data';

/** What a custom loss receives each step. */
export interface LossContext {
  model: ScoreModel;
  sde: Sde;
  /** The model wrapped as a score function (createScoreFn, training mode). */
  score: ScoreFn;
  /** The batch [B, ...]. */
  x0: tf.Tensor;
  /** This step's seed (a pure function of the run seed and the step). */
  seed: number;
  /** 0-based index of this update. */
  step: number;
}

/** A custom objective: returns a scalar to minimise, differentiable through the model's variables. */
export type LossFn = (ctx: LossContext) => tf.Scalar;

export interface TrainProgress {
  /** Updates done (1 after the first). */
  step: number;
  epoch: number;
  loss: number;
  /** Gradient global norm before clipping. */
  gradNorm: number;
  /** Learning rate used by this update. */
  lr: number;
  imagesPerSec: number;
  etaSec: number;
}

export interface CheckpointOptions {
  storage: CheckpointStorage;
  /** Directory (Node) or key prefix (browser) of the run. */
  location: string;
  /** Save every this many steps (default 1000); a final save always follows the last step or an abort. */
  every?: number;
  /**
   * A lock on `location` the caller already holds (`storage.lock(location)`, e.g. taken before parsing the rest of a
   * command line): train() uses it and leaves releasing it to the caller. Without it, train() takes
   * `storage.lock(location)` itself when the storage has one, for the whole call, and releases it at the end, on
   * error and on abort. A live holder is SbmError('LOCKED') before anything is read or written.
   */
  lock?: CheckpointLock;
  /** Called with each warning as it arises (stale lock taken over, leftovers removed, slot fallback on resume). */
  onWarning?: (message: string) => void;
}

export interface TrainOptions {
  model: ScoreModel;
  sde: Sde;
  /** The training set [N, ...sampleShape] (shuffled each epoch from `seed`), or a BatchSource. */
  data: tf.Tensor | BatchSource;
  /**
   * A loss registered in @sbm/losses (listLosses(): 'dsm' (default), 'tutorial-dsm', 'ssm', 'ism', plugins) or a
   * function. 'smld' and 'ddpm' need a noise-conditional / ε model, which a ScoreModel is not: they fail clearly.
   */
  loss?: string | LossFn;
  /** Options of the named loss, checked against its option keys (DsmOptions for 'dsm', ...). */
  lossOptions?: DsmOptions | Omit<SlicedScoreMatchingOptions, 'sde'> | Record<string, unknown>;
  /** How the model becomes a score (createScoreFn options; default: auto from model and SDE). */
  scoreFn?: Omit<ScoreFnOptions, 'training' | 'seed'>;
  /** Total number of updates of the run (counted from step 0, also on resume). Give `steps` or `epochs`. */
  steps?: number;
  /** Total number of epochs (steps = epochs · stepsPerEpoch). */
  epochs?: number;
  /** Default 128 (score_sde's config.training.batch_size). Must equal the source's batch size for a BatchSource. */
  batchSize?: number;
  /** Adam learning rate (default 2e-4, score_sde). */
  lr?: number;
  /** Linear warm-up steps (default 5000, score_sde; scale down for short runs). */
  warmup?: number;
  /** Global-norm gradient clip (default 1; null disables). */
  gradClip?: number | null;
  adam?: AdamOptions;
  /** EMA of the weights: decay (default 0.999 for VE-type SDEs, 0.9999 otherwise) and warm-up (default true). */
  ema?: { decay?: number; warmup?: boolean };
  seed: number;
  checkpoint?: CheckpointOptions;
  /** Continue from the checkpoint at checkpoint.location when there is one (default false: start afresh). */
  resume?: boolean;
  onProgress?: (p: TrainProgress) => void;
  /** Call onProgress every this many steps (default 1). Each report reads the pending steps' figures back. */
  progressEvery?: number;
  /**
   * Read the pending losses and check them every this many steps (default 10), besides before every progress
   * report, checkpoint and at the end. A non-finite batch, loss or gradient norm stops the run at the first check
   * after it (NON_FINITE naming that step); the bad update and every later one are skipped on the device, so the
   * model keeps its last finite weights and no checkpoint ever holds them.
   */
  nanCheckEvery?: number;
  /** Loss-history window stored in checkpoints (default 100 steps). */
  historyEvery?: number;
  /** Data range recorded in the checkpoint config (e.g. [-1, 1]). */
  dataRange?: [number, number];
  /** On abort: the trainer saves a checkpoint (when configured) and returns with `aborted: true`. */
  signal?: AbortSignal;
}

export interface TrainResult {
  /** The trained model (the one passed in, updated in place). */
  model: ScoreModel;
  /** The EMA of its weights; the caller disposes it. `ema.copyTo(model)` to sample with the averaged weights. */
  ema: ExponentialMovingAverage;
  /** Updates done in total (including those before a resume). */
  step: number;
  epoch: number;
  /** Position of the next batch. */
  next: BatchPosition;
  /** Step index of losses[0] (0, or the resumed step). */
  firstStep: number;
  /** Loss of each update of this call, in order (float32 values as read back). */
  losses: number[];
  lossHistory: LossHistory;
  aborted: boolean;
  /** Where the last checkpoint of this call was written (location/slot), or null. */
  checkpoint: string | null;
  /** Every warning of the call (also passed to checkpoint.onWarning): lock takeover, leftovers, slot fallback. */
  warnings: string[];
}
