import * as tf from '@tensorflow/tfjs';
import { isSbmError, type CheckpointLock } from '@sbm/core';
import { ExponentialMovingAverage, createScoreFn } from '@sbm/models';
import { Adam } from './adam';
import { StepLog } from './guard';
import { runLoop } from './loop';
import { resolveOptions } from './options';
import { restoreRun, saveRun } from './run-state';
import { RestartableSeedStream, SALT_DROPOUT, SALT_LOSS, stepSeed } from './seeds';
import { TrainStep } from './step';
import type { TrainOptions, TrainResult } from './types';

export { stepSeed } from './seeds';
export type { TrainOptions, TrainResult, TrainProgress, CheckpointOptions, LossFn, LossContext } from './types';

/**
 * Trains a score model (score_sde run_lib.train): options (options.ts), resume (run-state.ts), then the loop
 * (loop.ts) around one update (step.ts: loss and gradients, clip, Adam with warm-up, EMA). Nothing is read back
 * per step: figures and the NaN guard's flags are read in batches (see `nanCheckEvery`), so it runs on Node WebGPU.
 *
 * Exact resume: batches are addressed by position, every random draw is seeded by (seed, step), and the
 * checkpoint holds the weights, EMA, Adam moments and step bit for bit, so k steps + resume to 2k steps gives the
 * same losses and weights as 2k steps in one go on the same backend.
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const run = resolveOptions(opts);
  const { model, sde, seed, loss, lossOptions } = run;
  const adam = new Adam(
    model.getWeights().filter((w) => w.trainable),
    opts.adam,
  );
  const ema = new ExponentialMovingAverage(model, { decay: run.emaDecay, warmup: run.emaWarmup });
  const update = new TrainStep({ model, adam, ema, lr: run.lr, warmup: run.warmup, gradClip: run.gradClip });
  const log = new StepLog();
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    run.checkpoint?.onWarning?.(w);
  };
  const ck = run.checkpoint;
  let ownLock: CheckpointLock | undefined;
  try {
    // The whole run holds the location's writer lock: a second writer fails here (LOCKED) before touching anything.
    if (ck && !ck.lock && typeof ck.storage.lock === 'function') {
      ownLock = await ck.storage.lock(ck.location, { owner: '@sbm/training train()' });
    }
    for (const w of (ck?.lock ?? ownLock)?.warnings ?? []) warn(w);
    const state = await restoreRun(run, opts.resume === true, adam, ema);
    for (const w of state.warnings) warn(w);
    const dropout = new RestartableSeedStream(0);
    const score = createScoreFn(model, sde, { ...opts.scoreFn, training: true, seed: dropout });
    const objective = (x0: tf.Tensor, s: number) => () => {
      dropout.restart(stepSeed(seed, s, SALT_DROPOUT));
      const lossSeed = stepSeed(seed, s, SALT_LOSS);
      if (typeof loss === 'function') return loss({ model, sde, score, x0, seed: lossSeed, step: s });
      return loss.compute({ score, x0, sde, seed: lossSeed, options: lossOptions, model, step: s });
    };
    const firstStep = state.step;
    const losses: number[] = [];
    const aborted = await runLoop(run, state, log, losses, {
      step: () => {
        const x0 = run.source.batch(state.pos);
        try {
          const { stats, lr } = update.run(x0, state.step, objective(x0, state.step));
          log.push(state.step + 1, lr, stats);
        } catch (e) {
          // A custom loss may validate its batch itself (dsmLoss called directly does): the guard's error then.
          if (!isSbmError(e, 'NON_FINITE')) throw e;
          update.markBad();
          log.push(state.step + 1, 0, tf.tensor1d([NaN, NaN, 0]));
        } finally {
          x0.dispose();
        }
        state.step += 1;
        state.pos = run.source.next(state.pos);
      },
      save: () => saveRun(run, state, adam, ema, opts.dataRange ?? null),
      onProgress: opts.onProgress,
      signal: opts.signal,
    });
    const { step, pos, history, written } = state;
    return {
      model,
      ema,
      step,
      epoch: pos.epoch,
      next: pos,
      firstStep,
      losses,
      lossHistory: history,
      aborted,
      checkpoint: written,
      warnings,
    };
  } catch (e) {
    ema.dispose();
    throw e;
  } finally {
    adam.dispose();
    update.dispose();
    log.dispose();
    // A failed release leaves a lock whose holder is this process; the next writer takes it over once we exit.
    await ownLock?.release().catch((e: unknown) => warn(`could not release the lock of ${ck?.location}: ${String(e)}`));
  }
}
