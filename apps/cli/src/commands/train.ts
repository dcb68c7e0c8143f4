import * as tf from '@tensorflow/tfjs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { isSbmError, type CheckpointLock } from '@sbm/core';
import { createScoreFn, type ScoreModel } from '@sbm/models';
import { sample } from '@sbm/samplers';
import type { Sde } from '@sbm/sde';
import { train, type CheckpointPointer, type TrainResult } from '@sbm/training';
import { writeGridPng } from '@sbm/datasets/node';
import { startBackend } from '../backend';
import { UsageError, withFlagNames } from '../errors';
import { GracefulStop } from '../signals';
import { squareBounds } from '../figures';
import { COLORS, lossCurvePng, scatterPng } from '../plot';
import { loadedPlugins } from '../plugins';
import { ProgressReporter } from '../progress';
import { readPointerFor, readRunFile, storage, writeRunFile, type RunFile } from '../run-file';
import {
  buildModel,
  isCentered,
  loadData,
  makeSde,
  parseDataSpec,
  toyData,
  type DataSpec,
  type LoadedData,
} from '../setup';
import { fileExists, writeFileAtomic } from '../util';

export interface TrainCliOptions {
  data: string;
  sde: string;
  model: string;
  loss?: string;
  config?: string;
  steps?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  warmup?: number;
  emaDecay?: number;
  seed: number;
  out: string;
  resume: boolean;
  resumeOrStart?: boolean;
  backend?: string;
  ckptEvery: number;
  sampleEvery?: number;
  nData?: number;
  imageSize?: number;
  channels?: number;
}

interface ConfigFile {
  model?: Record<string, unknown>;
  sde?: Record<string, unknown>;
  train?: { steps?: number; epochs?: number; batchSize?: number; lr?: number; warmup?: number; emaDecay?: number };
}

const CONFIG_KEYS = ['model', 'sde', 'train'];
const TRAIN_KEYS = ['steps', 'epochs', 'batchSize', 'lr', 'warmup', 'emaDecay'];

/** --config file.json: { model: {...overrides}, sde: {...overrides}, train: { steps, lr, ... } }; flags win. */
async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch {
    throw new UsageError(`--config: cannot read ${path}`);
  }
  let c: unknown;
  try {
    c = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config: ${path} is not valid JSON (${(e as Error).message})`);
  }
  if (c === null || typeof c !== 'object' || Array.isArray(c)) {
    throw new UsageError(`--config: ${path} must hold a JSON object { model, sde, train }`);
  }
  for (const k of Object.keys(c)) {
    if (!CONFIG_KEYS.includes(k))
      throw new UsageError(`--config: unknown key "${k}" in ${path} (expected ${CONFIG_KEYS.join(', ')})`);
  }
  const cf = c as ConfigFile;
  for (const k of Object.keys(cf.train ?? {})) {
    if (!TRAIN_KEYS.includes(k))
      throw new UsageError(`--config: unknown key "train.${k}" in ${path} (expected ${TRAIN_KEYS.join(', ')})`);
  }
  return cf;
}

/** Writes the preview figures of a run: samples (scatter over the data, or an image grid) and the loss curve. */
async function writePreviews(
  out: string,
  model: ScoreModel,
  res: TrainResult,
  sde: Sde,
  d: DataSpec,
  sampleShape: number[],
  range: [number, number] | null,
  seed: number,
  signal: AbortSignal,
): Promise<string[]> {
  const written: string[] = [];
  if (signal.aborted) return written;
  const saved = model.getWeights().map((w) => ({ name: w.name, tensor: tf.clone(w.tensor) }));
  try {
    res.ema.copyTo(model);
    const score = createScoreFn(model, sde);
    const step = res.step;
    if (sampleShape.length === 1 && sampleShape[0] === 2) {
      const n = 1000;
      const { samples, stats } = await sample({
        sampler: 'pc',
        corrector: 'none',
        steps: 200,
        sde,
        score,
        shape: [n, 2],
        seed,
        signal,
      });
      const pts = Float32Array.from(await samples.data());
      samples.dispose();
      let ref: Float32Array | undefined;
      if (d.kind === 'toy') {
        const t = toyData(d.toyName!, n, seed + 101);
        ref = Float32Array.from(await t.data());
        t.dispose();
      }
      const panels = [
        ...(ref ? [{ title: 'data', points: ref, color: COLORS.data }] : []),
        { title: `EMA samples, step ${step} (PC, ${stats.nfe} NFE)`, points: pts, color: COLORS.pc },
      ];
      const png = scatterPng(panels, { bounds: ref ? squareBounds(ref) : undefined });
      const path = join(out, 'samples', `step-${String(step).padStart(7, '0')}.png`);
      await writeFileAtomic(path, png);
      written.push(path);
    } else {
      // Images: 36 samples with DPM-Solver++(2M), 20 steps — cheap enough to run during training.
      const { samples } = await sample({
        sampler: 'dpm-solver',
        steps: 20,
        sde,
        score,
        shape: [36, ...sampleShape],
        seed,
        signal,
      });
      const path = join(out, 'samples', `step-${String(step).padStart(7, '0')}.png`);
      await writeGridPng(path, samples, { range: range ?? [0, 1], columns: 6 });
      samples.dispose();
      written.push(path);
    }
  } catch (e) {
    // A stop signal during the preview: the checkpoint is saved already, the preview is not worth waiting for.
    if (isSbmError(e, 'ABORTED')) return written;
    throw e;
  } finally {
    model.setWeights(saved);
    tf.dispose(saved.map((s) => s.tensor));
  }
  const h = res.lossHistory;
  if (h.steps.length > 0) {
    const path = join(out, 'loss.png');
    await writeFileAtomic(path, lossCurvePng(h.steps, h.values, `loss (mean over ${h.every} steps)`));
    written.push(path);
  }
  return written;
}

/**
 * Resuming must not rewrite sbm-run.json with other settings before train() compares the checkpoint's own config:
 * what the run file records is compared here, in the words of the flags, before anything is written.
 */
function checkRunMatches(run: RunFile, o: TrainCliOptions, data: string): void {
  const asked: [string, unknown, unknown][] = [
    ['--data', run.data, data],
    ['--sde', run.sde, o.sde],
    ['--model', run.model, o.model],
    ['--seed', run.seed, o.seed],
    ['--loss', run.loss ?? 'dsm', o.loss ?? 'dsm'],
    ['--image-size', run.imageSize, o.imageSize],
    ['--channels', run.channels, o.channels],
  ];
  for (const [flag, saved, now] of asked) {
    if (saved !== now) {
      throw new UsageError(
        `--resume: ${o.out} was trained with ${flag} ${saved ?? '(default)'}, this run asks for ${now ?? '(default)'}; nothing was changed`,
      );
    }
  }
}

/**
 * What --out holds and whether this run may write there: a checkpoint needs --resume (or --resume-or-start),
 * --resume needs a checkpoint (a mistyped --out must not quietly start at step 0), and a damaged pointer is an
 * error (readPointerFor), never "no checkpoint", so the slots it points into are never overwritten.
 */
async function inspectOut(
  o: TrainCliOptions,
  data: string,
): Promise<{ pointer: CheckpointPointer | undefined; run: RunFile | undefined }> {
  const pointer = await readPointerFor(o.out, '--out');
  if (pointer && !o.resume && !o.resumeOrStart) {
    throw new UsageError(
      `--out: ${o.out} already holds a checkpoint at step ${pointer.step}; pass --resume to continue it or choose another --out`,
    );
  }
  if (!pointer && o.resume) {
    throw new UsageError(
      `--resume: ${o.out} ${(await fileExists(o.out)) ? 'holds no checkpoint (no checkpoint.json)' : 'does not exist'}; ` +
        'check --out, or pass --resume-or-start to start a new run when there is none',
    );
  }
  const run = pointer ? await readRunFile(o.out) : undefined;
  if (run) checkRunMatches(run, o, data);
  return { pointer, run };
}

export async function trainCommand(o: TrainCliOptions): Promise<number> {
  // Everything that can be checked without tensors is checked first: a bad flag costs no backend start.
  const d = parseDataSpec(o.data);
  const cf = o.config ? await readConfigFile(o.config) : {};
  const steps = o.steps ?? cf.train?.steps;
  const epochs = o.epochs ?? cf.train?.epochs;
  if (steps !== undefined && epochs !== undefined) throw new UsageError('--steps and --epochs: give one, not both');
  if (steps === undefined && epochs === undefined) throw new UsageError('--steps N or --epochs N is required');
  await inspectOut(o, d.spec);
  const sde = makeSde(o.sde, cf.sde ?? {});
  // The writer lock comes before the first write (and before the slow start-up, so that a second sbm train on
  // this --out is refused at once, naming the holder).
  const created = !(await fileExists(o.out));
  const lock = await storage.lock(o.out, { owner: `sbm train --out ${o.out}` });
  let trained = false;
  try {
    for (const w of lock.warnings) process.stderr.write(`train: ${w}\n`);
    // Again under the lock: a writer that finished meanwhile may have saved a checkpoint there.
    const { pointer, run } = await inspectOut(o, d.spec);
    const backend = await startBackend(o.backend);
    const isToy = d.kind === 'toy';
    const data = await loadData(d, {
      n: o.nData ?? (isToy ? 10_000 : undefined),
      seed: 0,
      centered: isCentered(sde),
      imageSize: o.imageSize,
      channels: o.channels as 1 | 3 | undefined,
    });
    let model: ScoreModel | undefined;
    try {
      model = buildModel(o.model, sde, data.sampleShape, cf.model ?? {}, o.seed);
      const batchSize = o.batch ?? cf.train?.batchSize ?? (isToy ? 512 : 128);
      const N = data.x.shape[0];
      if (batchSize > N) throw new UsageError(`--batch: ${batchSize} is larger than the data set (${N} samples)`);
      const total = steps ?? epochs! * Math.floor(N / batchSize);
      if (run && run.dataSize !== N) {
        throw new UsageError(
          `--resume: ${o.out} was trained on ${run.dataSize} samples of ${run.data}, this run has ${N} (--n-data); nothing was changed`,
        );
      }
      trained = true;
      await writeRunFile(o.out, {
        data: d.spec,
        sde: o.sde,
        model: o.model,
        seed: o.seed,
        dataSize: N,
        ...(o.imageSize ? { imageSize: o.imageSize } : {}),
        ...(o.channels ? { channels: o.channels } : {}),
        ...(o.loss ? { loss: o.loss } : {}),
        ...(loadedPlugins().length
          ? { plugins: loadedPlugins().map((p) => ({ module: p.module, version: p.version })) }
          : {}),
      });
      return await trainRun(o, {
        d,
        sde,
        data,
        model,
        batchSize,
        total,
        lr: o.lr ?? cf.train?.lr ?? (isToy ? 5e-3 : 2e-4),
        warmup: o.warmup ?? cf.train?.warmup ?? Math.min(5000, Math.max(1, Math.round(total / 20))),
        emaDecay: o.emaDecay ?? cf.train?.emaDecay ?? (isToy ? 0.99 : 0.999),
        pointer,
        backendName: backend.name,
        lock,
      });
    } finally {
      model?.dispose();
      data.x.dispose();
    }
  } finally {
    await lock.release();
    // A run refused before its first write leaves no empty folder behind (the lock created it).
    if (created && !trained) await fsp.rmdir(o.out).catch(() => undefined);
  }
}

interface RunSetup {
  d: DataSpec;
  sde: Sde;
  data: LoadedData;
  model: ScoreModel;
  batchSize: number;
  total: number;
  lr: number;
  warmup: number;
  emaDecay: number;
  /** The checkpoint resumed from (undefined: a new run). */
  pointer: CheckpointPointer | undefined;
  backendName: string;
  /** The writer lock of --out, held from before the first write until the command ends. */
  lock: CheckpointLock;
}

/** The training loop of a locked --out: segments between previews, stop signals saving a checkpoint. */
async function trainRun(o: TrainCliOptions, s: RunSetup): Promise<number> {
  const { d, sde, data, model, batchSize, total, pointer } = s;
  const stop = new GracefulStop('saving a checkpoint');
  const unit = d.kind === 'toy' ? 'samples' : 'images';
  const progress = new ProgressReporter(total, unit);
  process.stderr.write(
    `train: ${o.model} (${model.countParams().toLocaleString('en-US')} parameters) on ${d.spec} (${data.x.shape[0]} samples), ` +
      `${sde.toConfig().name} SDE${o.loss ? `, ${o.loss} loss` : ''}, ${total} steps of ${batchSize}, lr ${s.lr}, on ${s.backendName}\n`,
  );
  // Training runs in segments that end at each preview step: train() resumes exactly from its own checkpoint,
  // so a segmented run gives the same weights as one call.
  const every = o.sampleEvery ?? 0;
  const previews = o.sampleEvery !== 0;
  let res: TrainResult | undefined;
  let first = true;
  try {
    let done = pointer?.step ?? 0;
    if (done >= total) process.stderr.write(`train: ${o.out} is already at step ${done} ≥ ${total}\n`);
    do {
      const target = every > 0 ? Math.min(total, (Math.floor(done / every) + 1) * every) : total;
      res?.ema.dispose();
      res = await withFlagNames({ loss: '--loss' }, () =>
        train({
          model,
          sde,
          ...(o.loss ? { loss: o.loss as 'dsm' } : {}),
          data: data.x,
          steps: target,
          batchSize,
          lr: s.lr,
          warmup: s.warmup,
          ema: { decay: s.emaDecay },
          seed: o.seed,
          historyEvery: 10,
          dataRange: data.range ?? undefined,
          checkpoint: {
            storage,
            location: o.out,
            every: o.ckptEvery,
            lock: s.lock,
            onWarning: (w: string) => process.stderr.write(`train: ${w}\n`),
          },
          resume: first ? pointer !== undefined : true,
          signal: stop.signal,
          // The trainer's ETA covers the segment; the run's is (total − step) at the measured rate.
          onProgress: (p) => progress.update({ ...p, etaSec: ((total - p.step) * batchSize) / p.imagesPerSec }),
        }),
      );
      first = false;
      done = res.step;
      if (res.aborted) break;
      if (previews && (every > 0 || done >= total)) {
        progress.end();
        const files = await writePreviews(
          o.out,
          model,
          res,
          sde,
          d,
          data.sampleShape,
          data.range,
          o.seed + done,
          stop.signal,
        );
        for (const f of files) process.stderr.write(`train: wrote ${f}\n`);
        if (stop.stopped) break;
      }
    } while (done < total);
    progress.end();
    if (stop.stopped) {
      process.stderr.write(
        `train: stopped at step ${res.step}; checkpoint saved in ${o.out} (continue with --resume)\n`,
      );
      return stop.code()!;
    }
    process.stdout.write(`trained ${o.out} to step ${res.step}; checkpoint in ${o.out}\n`);
    return 0;
  } finally {
    stop.dispose();
    res?.ema.dispose();
  }
}
