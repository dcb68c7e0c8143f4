import * as tf from '@tensorflow/tfjs';
import {
  SbmError,
  checkChoice,
  checkNumber,
  checkSeed,
  describeValue,
  isSbmError,
  now,
  yieldToEventLoop,
  type CheckpointStorage,
} from '@sbm/core';
import { Sde, type ScoreFn } from '@sbm/sde';
import { dsmLoss, slicedScoreMatchingLoss, tutorialDsmLoss, type DsmOptions } from '@sbm/losses';
import type { SlicedScoreMatchingOptions } from '@sbm/losses';
import { ExponentialMovingAverage, ScoreModel, createScoreFn, type ScoreFnOptions } from '@sbm/models';
import type { BatchPosition } from '@sbm/datasets';
import { Adam, clipCoefficient, globalNorm, warmupLr, type AdamOptions } from './adam';
import {
  checkStorage,
  readCheckpoint,
  readPointer,
  saveCheckpoint,
  joinLocation,
  type CheckpointConfig,
  type LossHistory,
} from './checkpoint';
import { checkBatchSource, tensorBatchSource, type BatchSource } from './data';

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
}

export interface TrainOptions {
  model: ScoreModel;
  sde: Sde;
  /** The training set [N, ...sampleShape] (shuffled each epoch from `seed`), or a BatchSource. */
  data: tf.Tensor | BatchSource;
  /** 'dsm' (default, `lossOptions` are dsmLoss's), 'tutorial-dsm', 'ssm' (sliced SM on x_t, weighted by σ²) or a function. */
  loss?: 'dsm' | 'tutorial-dsm' | 'ssm' | LossFn;
  /** Options of the named loss (DsmOptions for 'dsm', SlicedScoreMatchingOptions without `sde` for 'ssm'). */
  lossOptions?: DsmOptions | Omit<SlicedScoreMatchingOptions, 'sde'>;
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
  /** Call onProgress every this many steps (default 1). */
  progressEvery?: number;
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
}

/** murmur3's finaliser. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The seed of one purpose (`salt`) at one step: a hash of (run seed, step, salt). Because it depends on nothing
 * else, the step count is the whole random state of a run, and a resumed run draws exactly the same numbers.
 */
export function stepSeed(seed: number, step: number, salt: number): number {
  const key = fmix32((seed ^ Math.floor(seed / 0x100000000)) >>> 0);
  const lo = step % 0x100000000;
  const hi = Math.floor(step / 0x100000000);
  return fmix32(key ^ fmix32(lo ^ fmix32(hi + 0x9e3779b9 * (salt + 1)))) & 0x7fffffff;
}

const SALT_LOSS = 1;
const SALT_DROPOUT = 2;
const SALT_DATA = 3;

/** Plain-JSON description of the objective, compared on resume. */
function lossDescription(
  loss: TrainOptions['loss'],
  opts: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const name = typeof loss === 'function' ? `custom:${loss.name || 'anonymous'}` : (loss ?? 'dsm');
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts ?? {})) {
    options[k] = typeof v === 'function' ? `function:${(v as { name?: string }).name || 'anonymous'}` : v;
  }
  return { name, options };
}

/** JSON with sorted keys, so two configs compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : val,
  );
}

function isVeType(sde: Sde): boolean {
  return sde.alpha(0) === 1 && sde.alpha(sde.T) === 1;
}

/**
 * Trains a score model (score_sde run_lib.train in one async loop): each step draws the batch at the current
 * position, evaluates the loss and its gradients in one tf.variableGrads, checks that loss and gradient norm are
 * finite, clips to the global norm, takes an Adam step with linear warm-up and updates the EMA. Checkpoints are
 * written every `checkpoint.every` steps, after the last step and on abort (see saveCheckpoint for atomicity).
 *
 * Exact resume: batches are addressed by position, every random draw is seeded by (seed, step), and the
 * checkpoint holds the weights, EMA, Adam moments and step bit for bit, so k steps + resume to 2k steps gives the
 * same losses and weights as 2k steps in one go on the same backend.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `train: options: expected an object, got ${describeValue(opts)}`);
  }
  const { model, sde } = opts;
  if (!(model instanceof ScoreModel)) {
    throw new SbmError('INVALID_ARGUMENT', `train: model: expected a ScoreModel, got ${describeValue(model)}`, {
      argument: 'model',
    });
  }
  if (!(sde instanceof Sde)) {
    throw new SbmError('INVALID_ARGUMENT', `train: sde: expected an Sde (createSde(...)), got ${describeValue(sde)}`, {
      argument: 'sde',
    });
  }
  const seed = checkSeed(opts.seed, 'seed');
  const batchSize = checkNumber(opts.batchSize ?? 128, 'batchSize', { integer: true, min: 1 });
  const lr = checkNumber(opts.lr ?? 2e-4, 'lr', { gt: 0 });
  const warmup = checkNumber(opts.warmup ?? 5000, 'warmup', { integer: true, min: 0 });
  const gradClip = opts.gradClip === null ? null : checkNumber(opts.gradClip ?? 1, 'gradClip', { gt: 0 });
  const progressEvery = checkNumber(opts.progressEvery ?? 1, 'progressEvery', { integer: true, min: 1 });
  const historyEvery = checkNumber(opts.historyEvery ?? 100, 'historyEvery', { integer: true, min: 1 });
  const emaDecay = checkNumber(opts.ema?.decay ?? (isVeType(sde) ? 0.999 : 0.9999), 'ema.decay', { min: 0, max: 1 });
  const emaWarmup = opts.ema?.warmup ?? true;
  const lossName =
    typeof opts.loss === 'function'
      ? opts.loss
      : checkChoice(opts.loss ?? 'dsm', 'loss', ['dsm', 'tutorial-dsm', 'ssm'] as const);
  const lossOptions = (opts.lossOptions ?? {}) as Record<string, unknown>;
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') {
    throw new SbmError('INVALID_ARGUMENT', `onProgress: expected a function, got ${describeValue(opts.onProgress)}`);
  }

  let source: BatchSource;
  let sampleShape: number[];
  if (opts.data instanceof tf.Tensor) {
    const x = opts.data;
    if (x.isDisposed || x.rank < 2 || x.shape.slice(1).join() !== model.sampleShape.join()) {
      throw new SbmError(
        'INVALID_SHAPE',
        `data: expected a live tensor [N, ${model.sampleShape.join(', ')}] (the model's sample shape), got ${describeValue(x)}`,
        { argument: 'data' },
      );
    }
    if (x.shape[0] < batchSize) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `batchSize: expected at most the ${x.shape[0]} samples of data, got ${batchSize}`,
      );
    }
    source = tensorBatchSource(x, { batchSize, seed: stepSeed(seed, 0, SALT_DATA) });
    sampleShape = x.shape.slice(1);
  } else {
    source = checkBatchSource(opts.data);
    sampleShape = [...model.sampleShape];
  }

  let totalSteps: number;
  if (opts.steps !== undefined) {
    totalSteps = checkNumber(opts.steps, 'steps', { integer: true, min: 0 });
  } else if (opts.epochs !== undefined) {
    totalSteps = checkNumber(opts.epochs, 'epochs', { integer: true, min: 0 }) * source.stepsPerEpoch;
  } else {
    throw new SbmError('INVALID_ARGUMENT', 'train: expected `steps` or `epochs`, got neither', { argument: 'steps' });
  }

  const ckpt = opts.checkpoint;
  let storage: CheckpointStorage | undefined;
  let every = Infinity;
  if (ckpt !== undefined) {
    storage = checkStorage(ckpt.storage);
    if (typeof ckpt.location !== 'string' || ckpt.location.length === 0) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `checkpoint.location: expected a non-empty string, got ${describeValue(ckpt.location)}`,
      );
    }
    every = checkNumber(ckpt.every ?? 1000, 'checkpoint.every', { integer: true, min: 1 });
  }
  if (opts.resume && !storage) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      'resume: expected checkpoint { storage, location } to resume from, got none',
      {
        argument: 'resume',
      },
    );
  }

  const trainable = model.getWeights().filter((w) => w.trainable);
  const params = new Map(trainable.map((w) => [w.name, w.tensor as tf.Variable]));
  const vars = [...params.values()];
  const lossDesc = lossDescription(opts.loss, lossOptions);

  // ---- resume -------------------------------------------------------------------------------------------
  let step = 0;
  let pos: BatchPosition = { epoch: 0, step: 0 };
  let history: LossHistory = { every: historyEvery, steps: [], values: [], pending: { sum: 0, count: 0 } };
  let lastGood: { location: string; step: number } | null = null;
  let resumedAt = -1;
  const adam = new Adam(trainable, opts.adam);
  let ema: ExponentialMovingAverage | undefined;
  try {
    ema = new ExponentialMovingAverage(model, { decay: emaDecay, warmup: emaWarmup });
    if (opts.resume && (await readPointer(storage!, ckpt!.location)) !== undefined) {
      const data = await readCheckpoint(storage!, ckpt!.location);
      try {
        const c = data.config;
        const mismatch = (what: string, saved: unknown, asked: unknown) =>
          new SbmError(
            'CONFIG_MISMATCH',
            `resume: the checkpoint at ${ckpt!.location} was trained with ${what} ${canonical(saved)}, this run asks for ${canonical(asked)}`,
            { argument: what, expected: saved, received: asked },
          );
        if (canonical(c.model) !== canonical(model.toConfig())) throw mismatch('model', c.model, model.toConfig());
        if (canonical(c.sde) !== canonical(sde.toConfig())) throw mismatch('sde', c.sde, sde.toConfig());
        if (canonical(c.training.loss) !== canonical(lossDesc)) throw mismatch('loss', c.training.loss, lossDesc);
        if (c.training.batchSize !== batchSize) throw mismatch('batchSize', c.training.batchSize, batchSize);
        if (c.seed !== seed) throw mismatch('seed', c.seed, seed);
        if (c.data.size !== source.size) throw mismatch('data size', c.data.size, source.size);
        if (c.data.stepsPerEpoch !== source.stepsPerEpoch) {
          throw mismatch('stepsPerEpoch', c.data.stepsPerEpoch, source.stepsPerEpoch);
        }
        // Everything checked: only now touch the model.
        model.setWeights(data.model);
        ema.setWeights(
          Object.entries(data.ema).map(([name, tensor]) => ({ name, tensor })),
          c.emaUpdates,
        );
        adam.setState(data.optimizer);
        step = c.step;
        pos = c.next;
        history = c.lossHistory;
        lastGood = { location: joinLocation(ckpt!.location, data.slot), step };
        resumedAt = step;
      } finally {
        tf.dispose([data.model, data.ema, data.optimizer.m, data.optimizer.v]);
      }
    }
  } catch (e) {
    adam.dispose();
    ema?.dispose();
    throw e;
  }
  const theEma = ema;

  const scoreOpts = opts.scoreFn ?? {};
  const lossFn = (x0: tf.Tensor, s: number): tf.Scalar => {
    const score = createScoreFn(model, sde, { ...scoreOpts, training: true, seed: stepSeed(seed, s, SALT_DROPOUT) });
    const lossSeed = stepSeed(seed, s, SALT_LOSS);
    if (typeof lossName === 'function') return lossName({ model, sde, score, x0, seed: lossSeed, step: s });
    switch (lossName) {
      case 'dsm':
        return dsmLoss(score, x0, sde, lossSeed, lossOptions as DsmOptions);
      case 'tutorial-dsm':
        return tutorialDsmLoss(score, x0, sde, lossSeed, lossOptions as DsmOptions);
      case 'ssm':
        return slicedScoreMatchingLoss(score, x0, lossSeed, { ...(lossOptions as SlicedScoreMatchingOptions), sde });
    }
  };

  const firstStep = step;
  const losses: number[] = [];
  // The checkpoint resumed from already holds this step.
  let savedAt = resumedAt;
  let checkpointPath: string | null = null;
  const save = async () => {
    if (!storage || savedAt === step) return;
    const config: Omit<CheckpointConfig, 'files' | 'format' | 'formatVersion' | 'createdBy'> = {
      sde: sde.toConfig(),
      model: model.toConfig(),
      dataRange: opts.dataRange ?? null,
      data: { size: source.size, sampleShape, stepsPerEpoch: source.stepsPerEpoch },
      training: {
        loss: lossDesc,
        batchSize,
        lr,
        warmup,
        gradClip,
        adam: { beta1: adam.beta1, beta2: adam.beta2, eps: adam.eps },
        ema: { decay: emaDecay, warmup: emaWarmup },
        totalSteps,
      },
      step,
      epoch: pos.epoch,
      next: pos,
      seed,
      rng: { kind: 'counter', seed, step },
      emaUpdates: theEma.numUpdates,
      lossHistory: history,
    };
    const slot = await saveCheckpoint(storage, ckpt!.location, {
      model,
      ema: theEma,
      optimizer: adam.getState(),
      config,
    });
    savedAt = step;
    checkpointPath = joinLocation(ckpt!.location, slot);
    lastGood = { location: checkpointPath, step };
  };

  const nonFinite = (what: string) => {
    const where = lastGood
      ? `the last good checkpoint is ${lastGood.location} (step ${lastGood.step}), left untouched`
      : 'no checkpoint was saved';
    return new SbmError('NON_FINITE', `train: step ${step + 1}: ${what} is not finite; training stopped; ${where}`, {
      step: step + 1,
      lastGoodCheckpoint: lastGood,
    });
  };

  const times: number[] = [];
  let aborted = false;
  try {
    while (step < totalSteps) {
      if (opts.signal?.aborted) {
        aborted = true;
        break;
      }
      const t0 = now();
      const x0 = source.batch(pos);
      // Checked before the tape starts: an error thrown inside tf.variableGrads strands the tensors the tape saved.
      const finite = tf.tidy(() => tf.all(tf.isFinite(x0)));
      const batchOk = (await finite.data())[0];
      finite.dispose();
      if (!batchOk) {
        x0.dispose();
        throw nonFinite('the data batch');
      }
      let value: tf.Scalar;
      let grads: tf.NamedTensorMap;
      try {
        ({ value, grads } = tf.variableGrads(() => lossFn(x0, step), vars));
      } catch (e) {
        if (isSbmError(e, 'NON_FINITE')) throw nonFinite(`the batch or the loss (${e.message})`);
        throw e;
      } finally {
        x0.dispose();
      }
      const byName = new Map<string, tf.Tensor>();
      for (const [name, v] of params) if (grads[v.name]) byName.set(name, grads[v.name]);
      const stats = tf.tidy(() => tf.stack([value, globalNorm([...byName.values()])]));
      const [lossValue, gradNorm] = await stats.data();
      stats.dispose();
      if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
        tf.dispose([value, grads]);
        throw nonFinite(Number.isFinite(lossValue) ? `the gradient norm (${gradNorm})` : `the loss (${lossValue})`);
      }
      const stepLr = warmupLr(lr, warmup, step + 1);
      adam.update(params, byName, stepLr, gradClip === null ? 1 : clipCoefficient(gradNorm, gradClip));
      theEma.update(model);
      tf.dispose([value, grads]);

      step += 1;
      pos = source.next(pos);
      losses.push(lossValue);
      history.pending.sum += lossValue;
      history.pending.count += 1;
      if (history.pending.count === history.every) {
        history.steps.push(step);
        history.values.push(history.pending.sum / history.pending.count);
        history.pending = { sum: 0, count: 0 };
      }
      times.push(now() - t0);
      if (times.length > 50) times.shift();
      if (opts.onProgress && (step % progressEvery === 0 || step === totalSteps)) {
        const msPerStep = times.reduce((a, b) => a + b, 0) / times.length;
        opts.onProgress({
          step,
          epoch: pos.epoch,
          loss: lossValue,
          gradNorm,
          lr: stepLr,
          imagesPerSec: (batchSize * 1000) / msPerStep,
          etaSec: ((totalSteps - step) * msPerStep) / 1000,
        });
      }
      if (step % every === 0) await save();
      // Lets timers and an AbortSignal fire, and keeps a browser page responsive.
      await yieldToEventLoop();
    }
    await save();
  } catch (e) {
    adam.dispose();
    theEma.dispose();
    throw e;
  }
  adam.dispose();
  return {
    model,
    ema: theEma,
    step,
    epoch: pos.epoch,
    next: pos,
    firstStep,
    losses,
    lossHistory: history,
    aborted,
    checkpoint: checkpointPath,
  };
}
