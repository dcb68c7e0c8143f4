import { SbmError, now, yieldToEventLoop } from '@sbm/core';
import type { StepLog, StepRecord } from './guard';
import type { RunConfig } from './options';
import type { RunState } from './run-state';
import type { TrainProgress } from './types';

export interface LoopHooks {
  /** Dispatches update `state.step + 1` and queues its figures in `log`. */
  step(): void;
  save(): Promise<void>;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

/**
 * The loop around the update (score_sde run_lib.train): abort, the NaN guard's checks, progress, loss history and
 * periodic checkpoints. Figures are read back only at a check (every `nanCheckEvery` steps, at each progress
 * report, before each checkpoint and at the end), in one asynchronous read of all pending steps.
 * Returns whether the run was aborted.
 */
export async function runLoop(
  run: RunConfig,
  state: RunState,
  log: StepLog,
  losses: number[],
  hooks: LoopHooks,
): Promise<boolean> {
  const times: number[] = [];
  let last: StepRecord | undefined;
  const check = async () => {
    const { records, bad } = await log.read();
    for (const r of records) record(r);
    if (bad) throw nonFinite(bad.step, bad.what, state.lastGood);
  };
  const record = (r: StepRecord) => {
    losses.push(r.loss);
    const h = state.history;
    h.pending.sum += r.loss;
    h.pending.count += 1;
    if (h.pending.count === h.every) {
      h.steps.push(r.step);
      h.values.push(h.pending.sum / h.pending.count);
      h.pending = { sum: 0, count: 0 };
    }
    last = r;
  };
  let aborted = false;
  while (state.step < run.totalSteps) {
    if (hooks.signal?.aborted) {
      aborted = true;
      break;
    }
    const t0 = now();
    hooks.step();
    const reportNow = hooks.onProgress && (state.step % run.progressEvery === 0 || state.step === run.totalSteps);
    const saveNow = run.checkpoint !== undefined && state.step % run.checkpoint.every === 0;
    if (reportNow || saveNow || log.size >= run.nanCheckEvery) await check();
    // Wall time including the read, which waits for a GPU to finish the steps it was given.
    times.push(now() - t0);
    if (times.length > 50) times.shift();
    if (reportNow && last) {
      const msPerStep = times.reduce((a, b) => a + b, 0) / times.length;
      hooks.onProgress!({
        step: state.step,
        epoch: state.pos.epoch,
        loss: last.loss,
        gradNorm: last.gradNorm,
        lr: last.lr,
        imagesPerSec: (run.batchSize * 1000) / msPerStep,
        etaSec: ((run.totalSteps - state.step) * msPerStep) / 1000,
      });
    }
    if (saveNow) await hooks.save();
    // Lets timers and an AbortSignal fire, and keeps a browser page responsive.
    await yieldToEventLoop();
  }
  // A NaN never reaches a checkpoint: the pending steps are checked before the final save.
  await check();
  await hooks.save();
  return aborted;
}

function nonFinite(step: number, what: string, lastGood: RunState['lastGood']): SbmError {
  const where = lastGood
    ? `the last good checkpoint is ${lastGood.location} (step ${lastGood.step}), left untouched`
    : 'no checkpoint was saved';
  return new SbmError('NON_FINITE', `train: step ${step}: ${what} is not finite; training stopped; ${where}`, {
    step,
    lastGoodCheckpoint: lastGood,
  });
}
