import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { SbmError, isSbmError } from '@sbm/core';
import {
  configFromReference,
  importScoreSde,
  pyGet,
  readPth,
  referenceScoreFn,
  type ImportedScoreSde,
  type ReferenceConfig,
  type ScoreSdeConfigs,
} from '@sbm/interop';
import { ExponentialMovingAverage, createScoreFn, type ScoreModel, type ScoreSdeNcsnpp } from '@sbm/models';
import type { ScoreFn, Sde } from '@sbm/sde';
import { saveCheckpoint, type CheckpointConfig, type CheckpointContents } from '@sbm/training';
import { startBackend } from '../backend';
import { UsageError } from '../errors';
import { RUN_FILE, readPointerFor, storage } from '../run-file';
import { fileExists } from '../util';

/**
 * What `sbm import` records in the checkpoint's config.json besides the training fields: that the score function
 * is the reference's (mutils.get_score_fn), which `sbm sample` / `nll` then use (checkpointScoreFn).
 */
export interface ImportOrigin {
  from: 'score_sde_pytorch';
  scoreFn: 'score-sde-reference';
  /** Which weights the checkpoint's EMA set holds ('ema': the reference's EMA; 'model': the raw ones). */
  weights: 'ema' | 'model';
  dataRange: [number, number];
}

/**
 * The score function of a loaded checkpoint. Imported checkpoints get the reference's: for VP / sub-VP its std,
 * 1 − exp(2 log α) in float32, differs from @sbm/sde's expm1 form by ~1e-3 relative near t = eps, more than the
 * 1e-4 the import promises; everything else gets createScoreFn, what sbm trained it with.
 */
export function checkpointScoreFn(model: ScoreModel, sde: Sde, config: CheckpointConfig): ScoreFn {
  const origin = (config as CheckpointConfig & { origin?: ImportOrigin }).origin;
  // By name, not instanceof: the model may come from another copy of @sbm/models.
  if (origin?.scoreFn === 'score-sde-reference' && model.name === 'score-sde-ncsnpp') {
    const configs = {
      model: (model as ScoreSdeNcsnpp).toConfig(),
      sde: config.sde as ScoreSdeConfigs['sde'],
      dataRange: origin.dataRange,
    } as ScoreSdeConfigs;
    return referenceScoreFn(model as ScoreSdeNcsnpp, sde, configs);
  }
  return createScoreFn(model, sde);
}

export interface ImportCliOptions {
  checkpoint: string;
  config: string;
  out: string;
  weights: 'ema' | 'model';
  force: boolean;
  backend?: string;
}

async function readInput(flag: string, path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await fsp.readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, expected a file' : code;
    throw new UsageError(`${flag}: cannot read ${path} (${why})`);
  }
}

/** The library's errors in the words of the flags: which file was wrong, with the library's code kept. */
function reword(e: unknown, o: ImportCliOptions): unknown {
  if (!isSbmError(e)) return e;
  const first = e.message.split('\n')[0];
  if (e.details?.argument === 'weights') {
    return new SbmError(e.code, `--weights: ${first.replace(/^weights: /, '')}`, e.details, { cause: e });
  }
  if (typeof e.details?.argument === 'string' && e.details.argument.startsWith('config.')) {
    return new SbmError(e.code, `--config: ${o.config}: ${first}`, e.details, { cause: e });
  }
  if (e.code === 'CONFIG_MISMATCH') {
    return new SbmError(
      e.code,
      `--checkpoint: ${o.checkpoint} does not fit --config ${o.config}: ${first}`,
      e.details,
      {
        cause: e,
      },
    );
  }
  return new SbmError(e.code, `--checkpoint: ${o.checkpoint}: ${first.replace(/^checkpoint:? /, '')}`, e.details, {
    cause: e,
  });
}

const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** Step and EMA update count a score_sde checkpoint records (utils.save_checkpoint: step, ema.num_updates). */
function referenceCounters(bytes: Uint8Array): { step: number; emaUpdates: number } {
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) return { step: 0, emaUpdates: 0 };
  const root = readPth(bytes);
  const asInt = (v: unknown) => {
    const n = typeof v === 'bigint' ? Number(v) : v;
    return Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : 0;
  };
  const step = asInt(pyGet(root, 'step'));
  const ema = pyGet(root, 'ema');
  return { step, emaUpdates: asInt(pyGet(ema, 'num_updates')) || step };
}

/**
 * `sbm import score-sde`: a score_sde_pytorch checkpoint (+ its config.json) → an ordinary sbm checkpoint in --out:
 * the `model` set holds the raw weights, the `ema` set the ones --weights names (what sample / nll use by default).
 */
export async function importCommand(format: string, o: ImportCliOptions): Promise<number> {
  if (format !== 'score-sde') throw new UsageError(`<format>: expected score-sde, got "${format}"`);
  const bytes = await readInput('--checkpoint', o.checkpoint);
  const configText = new TextDecoder().decode(await readInput('--config', o.config));
  let reference: ReferenceConfig;
  try {
    reference = JSON.parse(configText) as ReferenceConfig;
  } catch (e) {
    throw new UsageError(`--config: ${o.config} is not valid JSON (${(e as Error).message})`);
  }
  // Checked before any backend or tensor work: an unsupported config costs nothing.
  let configs: ScoreSdeConfigs;
  try {
    configs = configFromReference(reference);
  } catch (e) {
    throw reword(e, o);
  }
  const isPth = bytes[0] === 0x50 && bytes[1] === 0x4b;
  if (!isPth && o.weights === 'ema') {
    throw new UsageError(
      `--weights: ${o.checkpoint} is not a .pth (zip) file; a safetensors state dict holds one set of weights, pass --weights model`,
    );
  }
  if (!o.force && (await readPointerFor(o.out, '--out'))) {
    throw new UsageError(
      `--out: ${o.out} already holds a checkpoint; pass --force to replace it or choose another --out`,
    );
  }
  let counters: { step: number; emaUpdates: number };
  try {
    counters = referenceCounters(bytes);
  } catch (e) {
    throw reword(e, o);
  }
  const created = !(await fileExists(o.out));
  const lock = await storage.lock(o.out, { owner: `sbm import --out ${o.out}` });
  let written = false;
  try {
    for (const w of lock.warnings) process.stderr.write(`import: ${w}\n`);
    // Again under the lock: a writer that finished meanwhile may have saved a checkpoint there.
    const pointer = await readPointerFor(o.out, '--out');
    if (pointer && !o.force) {
      throw new UsageError(
        `--out: ${o.out} already holds a checkpoint at step ${pointer.step}; pass --force to replace it`,
      );
    }
    await startBackend(o.backend);
    const load = (weights: 'ema' | 'model'): ImportedScoreSde => {
      try {
        return importScoreSde({ checkpoint: bytes, config: reference, weights });
      } catch (e) {
        throw reword(e, o);
      }
    };
    const raw = load('model');
    let chosen: ImportedScoreSde | undefined;
    let ema: ExponentialMovingAverage | undefined;
    try {
      chosen = o.weights === 'ema' ? load('ema') : undefined;
      const decay = num((reference.model as Record<string, unknown> | undefined)?.ema_rate, 0.999);
      ema = new ExponentialMovingAverage(chosen?.model ?? raw.model, { decay, warmup: true });
      const opt = (reference.optim ?? {}) as Record<string, unknown>;
      const training = (reference.training ?? {}) as Record<string, unknown>;
      const batchSize = Number.isInteger(training.batch_size) ? (training.batch_size as number) : 1;
      const origin: ImportOrigin = {
        from: 'score_sde_pytorch',
        scoreFn: 'score-sde-reference',
        weights: o.weights,
        dataRange: configs.dataRange,
      };
      const config: CheckpointContents['config'] & { origin: ImportOrigin } = {
        sde: raw.sde.toConfig(),
        model: raw.model.toConfig(),
        dataRange: configs.dataRange,
        data: { size: null, sampleShape: [...raw.model.sampleShape], stepsPerEpoch: 1 },
        training: {
          loss: { name: 'dsm', reference: 'score_sde_pytorch losses.get_sde_loss_fn' },
          batchSize,
          lr: num(opt.lr, 2e-4),
          warmup: num(opt.warmup, 0),
          gradClip: typeof opt.grad_clip === 'number' && opt.grad_clip >= 0 ? opt.grad_clip : null,
          adam: { beta1: num(opt.beta1, 0.9), beta2: 0.999, eps: num(opt.eps, 1e-8) },
          ema: { decay, warmup: true },
          totalSteps: Number.isInteger(training.n_iters) ? (training.n_iters as number) : counters.step,
        },
        step: counters.step,
        epoch: 0,
        next: { epoch: 0, step: 0 } as CheckpointContents['config']['next'],
        seed: 0,
        rng: { kind: 'counter', seed: 0, step: counters.step },
        emaUpdates: counters.emaUpdates,
        lossHistory: { every: 1, steps: [], values: [], pending: { sum: 0, count: 0 } },
        origin,
      };
      // The reference's Adam moments are not imported: fine-tuning in sbm starts its own.
      await saveCheckpoint(storage, o.out, {
        model: raw.model,
        ema,
        optimizer: { step: counters.step, m: {}, v: {} },
        config,
      });
      written = true;
    } finally {
      ema?.dispose();
      chosen?.model.dispose();
      raw.model.dispose();
    }
    // A run file left by an earlier `sbm train` in a --force'd --out describes the run just replaced.
    if (pointer) await fsp.rm(join(o.out, RUN_FILE), { force: true });
    const sdeName = configs.sde.name;
    process.stdout.write(
      `imported ${o.checkpoint} (score_sde_pytorch NCSN++, ${sdeName} SDE, step ${counters.step}, ${o.weights} weights) → ${o.out}\n`,
    );
    return 0;
  } finally {
    await lock.release();
    if (created && !written) await fsp.rm(o.out, { recursive: true, force: true }).catch(() => undefined);
  }
}
