import * as tf from '@tensorflow/tfjs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { createScoreFn, type ScoreModel } from '@sbm/models';
import { sample } from '@sbm/samplers';
import type { Sde } from '@sbm/sde';
import { readPointer, train, type TrainResult } from '@sbm/training';
import { writeGridPng } from '@sbm/datasets/node';
import { startBackend } from '../backend';
import { EXIT_INTERRUPTED, UsageError, withFlagNames } from '../errors';
import { squareBounds } from '../figures';
import { COLORS, lossCurvePng, scatterPng } from '../plot';
import { loadedPlugins } from '../plugins';
import { ProgressReporter } from '../progress';
import { readRunFile, storage, writeRunFile } from '../run-file';
import { buildModel, isCentered, loadData, makeSde, parseDataSpec, toyData, type DataSpec } from '../setup';
import { writeFileAtomic } from '../util';

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
): Promise<string[]> {
  const written: string[] = [];
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
      });
      const path = join(out, 'samples', `step-${String(step).padStart(7, '0')}.png`);
      await writeGridPng(path, samples, { range: range ?? [0, 1], columns: 6 });
      samples.dispose();
      written.push(path);
    }
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

export async function trainCommand(o: TrainCliOptions): Promise<number> {
  // Everything that can be checked without tensors is checked first: a bad flag costs no backend start.
  const d = parseDataSpec(o.data);
  const cf = o.config ? await readConfigFile(o.config) : {};
  const steps = o.steps ?? cf.train?.steps;
  const epochs = o.epochs ?? cf.train?.epochs;
  if (steps !== undefined && epochs !== undefined) throw new UsageError('--steps and --epochs: give one, not both');
  if (steps === undefined && epochs === undefined) throw new UsageError('--steps N or --epochs N is required');
  const pointer = await readPointer(storage, o.out).catch(() => undefined);
  if (pointer && !o.resume) {
    throw new UsageError(
      `--out: ${o.out} already holds a checkpoint at step ${pointer.step}; pass --resume to continue it or choose another --out`,
    );
  }
  const run = await readRunFile(o.out);
  if (o.resume && pointer && run && run.data !== d.spec) {
    throw new UsageError(`--resume: ${o.out} was trained on ${run.data}, this run asks for ${d.spec}`);
  }
  const sde = makeSde(o.sde, cf.sde ?? {});
  const backend = await startBackend(o.backend);
  const isToy = d.kind === 'toy';
  const data = await loadData(d, {
    n: o.nData ?? (isToy ? 10_000 : undefined),
    seed: 0,
    centered: isCentered(sde),
    imageSize: o.imageSize,
    channels: o.channels as 1 | 3 | undefined,
  });
  const model = buildModel(o.model, sde, data.sampleShape, cf.model ?? {}, o.seed);
  const batchSize = o.batch ?? cf.train?.batchSize ?? (isToy ? 512 : 128);
  const N = data.x.shape[0];
  if (batchSize > N) throw new UsageError(`--batch: ${batchSize} is larger than the data set (${N} samples)`);
  const stepsPerEpoch = Math.floor(N / batchSize);
  const total = steps ?? epochs! * stepsPerEpoch;
  const lr = o.lr ?? cf.train?.lr ?? (isToy ? 5e-3 : 2e-4);
  const warmup = o.warmup ?? cf.train?.warmup ?? Math.min(5000, Math.max(1, Math.round(total / 20)));
  const emaDecay = o.emaDecay ?? cf.train?.emaDecay ?? (isToy ? 0.99 : 0.999);
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

  const ac = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\nsbm: interrupted, saving a checkpoint (Ctrl-C again to quit without it)\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);

  const unit = isToy ? 'samples' : 'images';
  const progress = new ProgressReporter(total, unit);
  process.stderr.write(
    `train: ${o.model} (${model.countParams().toLocaleString('en-US')} parameters) on ${d.spec} (${N} samples), ` +
      `${sde.toConfig().name} SDE${o.loss ? `, ${o.loss} loss` : ''}, ${total} steps of ${batchSize}, lr ${lr}, on ${backend.name}\n`,
  );
  // Training runs in segments that end at each preview step: train() resumes exactly from its own checkpoint,
  // so a segmented run gives the same weights as one call.
  const every = o.sampleEvery ?? 0;
  let res: TrainResult | undefined;
  let first = true;
  let code = 0;
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
          lr,
          warmup,
          ema: { decay: emaDecay },
          seed: o.seed,
          historyEvery: 10,
          dataRange: data.range ?? undefined,
          checkpoint: { storage, location: o.out, every: o.ckptEvery },
          resume: first ? o.resume : true,
          signal: ac.signal,
          // The trainer's ETA covers the segment; the run's is (total − step) at the measured rate.
          onProgress: (p) => progress.update({ ...p, etaSec: ((total - p.step) * batchSize) / p.imagesPerSec }),
        }),
      );
      first = false;
      done = res.step;
      if (res.aborted) break;
      if (every > 0 || done >= total) {
        progress.end();
        const files = await writePreviews(o.out, model, res, sde, d, data.sampleShape, data.range, o.seed + done);
        for (const f of files) process.stderr.write(`train: wrote ${f}\n`);
      }
    } while (done < total);
    progress.end();
    if (res.aborted) {
      process.stderr.write(
        `train: stopped at step ${res.step}; checkpoint saved in ${o.out} (continue with --resume)\n`,
      );
      code = EXIT_INTERRUPTED;
    } else {
      process.stdout.write(`trained ${o.out} to step ${res.step}; checkpoint in ${o.out}\n`);
    }
  } finally {
    process.off('SIGINT', onSigint);
    res?.ema.dispose();
    model.dispose();
    data.x.dispose();
  }
  return code;
}
