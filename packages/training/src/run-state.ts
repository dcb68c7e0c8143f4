import * as tf from '@tensorflow/tfjs';
import { SbmError } from '@sbm/core';
import type { ExponentialMovingAverage } from '@sbm/models';
import type { BatchPosition } from '@sbm/datasets';
import type { Adam } from './adam';
import {
  canonicalJson as canonical,
  joinLocation,
  otherSlot,
  readCheckpoint,
  readPointer,
  saveCheckpoint,
  type CheckpointConfig,
  type LossHistory,
  type Slot,
} from './checkpoint';
import type { RunConfig } from './options';

/** Where a run stands: what a checkpoint holds besides the tensors. */
export interface RunState {
  step: number;
  pos: BatchPosition;
  history: LossHistory;
  /** The newest checkpoint known to hold finite weights (resumed from or saved by this run). */
  lastGood: { location: string; step: number } | null;
  /** The step the newest checkpoint holds (-1: none yet), so that a step is never saved twice. */
  savedAt: number;
  /** Where this call last wrote a checkpoint, or null. */
  written: string | null;
  /** The slot holding the newest verified checkpoint (resumed from or saved), which the next save must not touch. */
  slot: Slot | null;
  /** Lines for the user gathered on the way (a slot fallback on resume, an old checkpoint without checksum). */
  warnings: string[];
}

/** Plain-JSON description of the objective, compared on resume. */
export function lossDescription(run: RunConfig): Record<string, unknown> {
  const name = typeof run.loss === 'function' ? `custom:${run.loss.name || 'anonymous'}` : run.loss.name;
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(run.lossOptions)) {
    options[k] = typeof v === 'function' ? `function:${(v as { name?: string }).name || 'anonymous'}` : v;
  }
  return { name, options };
}

/**
 * The state of a fresh run, or — with `resume` and a checkpoint at the location — the checkpoint's, after checking
 * that it was trained with this model, SDE, loss, batch size, seed and data. Only then are the model, EMA and Adam
 * overwritten (weights, moments and step bit for bit, so that a resumed run continues exactly).
 */
export async function restoreRun(
  run: RunConfig,
  resume: boolean,
  adam: Adam,
  ema: ExponentialMovingAverage,
): Promise<RunState> {
  const fresh: RunState = {
    step: 0,
    pos: { epoch: 0, step: 0 },
    history: { every: run.historyEvery, steps: [], values: [], pending: { sum: 0, count: 0 } },
    lastGood: null,
    savedAt: -1,
    written: null,
    slot: null,
    warnings: [],
  };
  const ck = run.checkpoint;
  if (!ck) return fresh;
  // Read also without resume: a damaged pointer fails here (CORRUPT_CHECKPOINT), before any work, rather than at
  // the first save, and is never taken for "no checkpoint".
  const pointer = await readPointer(ck.storage, ck.location);
  if (!resume || pointer === undefined) return fresh;
  const data = await readCheckpoint(ck.storage, ck.location);
  try {
    const c = data.config;
    const mismatch = (what: string, saved: unknown, asked: unknown) =>
      new SbmError(
        'CONFIG_MISMATCH',
        `resume: the checkpoint at ${ck.location} was trained with ${what} ${canonical(saved)}, this run asks for ${canonical(asked)}`,
        { argument: what, expected: saved, received: asked },
      );
    const lossDesc = lossDescription(run);
    if (canonical(c.model) !== canonical(run.model.toConfig())) throw mismatch('model', c.model, run.model.toConfig());
    if (canonical(c.sde) !== canonical(run.sde.toConfig())) throw mismatch('sde', c.sde, run.sde.toConfig());
    if (canonical(c.training.loss) !== canonical(lossDesc)) throw mismatch('loss', c.training.loss, lossDesc);
    if (c.training.batchSize !== run.batchSize) throw mismatch('batchSize', c.training.batchSize, run.batchSize);
    if (c.seed !== run.seed) throw mismatch('seed', c.seed, run.seed);
    if (c.data.size !== run.source.size) throw mismatch('data size', c.data.size, run.source.size);
    if (c.data.stepsPerEpoch !== run.source.stepsPerEpoch) {
      throw mismatch('stepsPerEpoch', c.data.stepsPerEpoch, run.source.stepsPerEpoch);
    }
    run.model.setWeights(data.model);
    ema.setWeights(
      Object.entries(data.ema).map(([name, tensor]) => ({ name, tensor })),
      c.emaUpdates,
    );
    adam.setState(data.optimizer);
    return {
      step: c.step,
      pos: c.next,
      history: c.lossHistory,
      lastGood: { location: joinLocation(ck.location, data.slot), step: c.step },
      savedAt: c.step,
      written: null,
      slot: data.slot,
      warnings: data.warnings,
    };
  } finally {
    tf.dispose([data.model, data.ema, data.optimizer.m, data.optimizer.v]);
  }
}

/** Writes the run's checkpoint (see saveCheckpoint for atomicity) unless this step is saved already. */
export async function saveRun(
  run: RunConfig,
  state: RunState,
  adam: Adam,
  ema: ExponentialMovingAverage,
  dataRange: [number, number] | null,
): Promise<void> {
  const ck = run.checkpoint;
  if (!ck || state.savedAt === state.step) return;
  const config: Omit<CheckpointConfig, 'files' | 'format' | 'formatVersion' | 'createdBy'> = {
    sde: run.sde.toConfig(),
    model: run.model.toConfig(),
    dataRange,
    data: { size: run.source.size, sampleShape: run.sampleShape, stepsPerEpoch: run.source.stepsPerEpoch },
    training: {
      loss: lossDescription(run),
      batchSize: run.batchSize,
      lr: run.lr,
      warmup: run.warmup,
      gradClip: run.gradClip,
      adam: { beta1: adam.beta1, beta2: adam.beta2, eps: adam.eps },
      ema: { decay: run.emaDecay, warmup: run.emaWarmup },
      totalSteps: run.totalSteps,
    },
    step: state.step,
    epoch: state.pos.epoch,
    next: state.pos,
    seed: run.seed,
    rng: { kind: 'counter', seed: run.seed, step: state.step },
    emaUpdates: ema.numUpdates,
    lossHistory: state.history,
  };
  const slot = await saveCheckpoint(
    ck.storage,
    ck.location,
    { model: run.model, ema, optimizer: adam.getState(), config },
    // After a fallback the pointer names the damaged slot: write there, never over the intact one.
    state.slot ? { slot: otherSlot(state.slot) } : {},
  );
  state.slot = slot;
  state.savedAt = state.step;
  state.lastGood = { location: joinLocation(ck.location, slot), step: state.step };
  state.written = state.lastGood.location;
}
