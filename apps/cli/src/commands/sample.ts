import * as tf from '@tensorflow/tfjs';
import { checkpointScoreFn } from './import';
import { sample, samplerEntry, type SampleProgress } from '@sbm/samplers';
import { createSde } from '@sbm/sde';
import { loadCheckpoint } from '@sbm/training';
import { encodeGridPng } from '@sbm/datasets/node';
import { makeGrid } from '@sbm/datasets';
import { startBackend } from '../backend';
import { UsageError, withFlagNames } from '../errors';
import { scoreFieldPng, squareBounds, swdWithFloor } from '../figures';
import { COLORS, scatterPng } from '../plot';
import { readRunFile, requireCheckpoint, storage } from '../run-file';
import { FractionProgress } from '../progress';
import { parseDataSpec } from '../setup';
import { writeFileAtomic } from '../util';

/** Sampler options the CLI sets from flags, for errors in the flags' words. */
const FLAGS: Record<string, string> = {
  steps: '--steps',
  // The discrete predictors name the grid size N (score_sde's), which --steps sets.
  N: '--steps',
  stepsPerLevel: '--steps',
  snr: '--snr',
  eps: '--eps',
  sigma: '--sigma',
  predictor: '--predictor',
  corrector: '--corrector',
  denoiseToZero: '--denoise-to-zero',
  schedule: '--schedule',
};

export interface SampleCliOptions {
  ckpt: string;
  sampler: string;
  predictor?: string;
  corrector?: string;
  sigma?: number;
  steps?: number;
  snr?: number;
  n?: number;
  eps?: number;
  denoiseToZero?: boolean;
  schedule?: string;
  samplerOptions?: Record<string, unknown>;
  seed: number;
  ema: boolean;
  out: string;
  scoreField?: string;
  json: boolean;
  backend?: string;
}

export async function sampleCommand(o: SampleCliOptions): Promise<number> {
  if (!o.out.toLowerCase().endsWith('.png')) throw new UsageError(`--out: expected a .png file, got "${o.out}"`);
  if (o.scoreField && !o.scoreField.toLowerCase().endsWith('.png')) {
    throw new UsageError(`--score-field: expected a .png file, got "${o.scoreField}"`);
  }
  // Flag combinations are checked before the backend starts.
  for (const [flag, v] of [
    ['--predictor', o.predictor],
    ['--corrector', o.corrector],
  ] as const) {
    if (v !== undefined && o.sampler !== 'pc') {
      throw new UsageError(
        `${flag}: only for --sampler pc (em is euler-maruyama without a corrector), not ${o.sampler}`,
      );
    }
  }
  if (o.sigma !== undefined && o.sampler !== 'langevin') {
    throw new UsageError(`--sigma: only for --sampler langevin, not ${o.sampler}`);
  }
  await requireCheckpoint(o.ckpt);
  await startBackend(o.backend, o.json);
  const loaded = await loadCheckpoint(storage, o.ckpt);
  // A damaged slot the loader stepped around (it fell back to the intact one): say so, never silently.
  for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
  const { model, ema, config } = loaded;
  try {
    if (o.ema) ema.copyTo(model);
    const sde = createSde(config.sde);
    // Imported score_sde checkpoints score as the reference does (checkpointScoreFn).
    const score = checkpointScoreFn(model, sde, config);
    const shapeOne = config.data.sampleShape;
    const is2d = shapeOne.length === 1 && shapeOne[0] === 2;
    if (o.scoreField && !is2d) throw new UsageError('--score-field: only for 2-D data');
    const n = o.n ?? (is2d ? 1000 : 64);
    const extra: Record<string, unknown> = {};
    if (o.steps !== undefined) extra.steps = o.steps;
    if (o.snr !== undefined) extra.snr = o.snr;
    if (o.eps !== undefined) extra.eps = o.eps;
    // What the sampler accepts, from its registry entry (plugins included; undefined: not declared).
    const accepts = samplerEntry(o.sampler)?.options;
    const takes = (key: string) => accepts === undefined || accepts.includes(key);
    if (o.denoiseToZero) {
      if (!takes('denoiseToZero')) {
        throw new UsageError(`--denoise-to-zero: ${o.sampler} has no denoiseToZero option`);
      }
      extra.denoiseToZero = true;
    }
    if (o.schedule !== undefined) {
      if (!takes('schedule')) {
        throw new UsageError(`--schedule: only for the fixed-grid solvers, not ${o.sampler} (see sbm plugins)`);
      }
      extra.schedule = o.schedule;
    }
    if (o.sampler === 'ald' && o.steps !== undefined) {
      delete extra.steps;
      extra.stepsPerLevel = o.steps;
    }
    if (o.predictor !== undefined) extra.predictor = o.predictor;
    if (o.corrector !== undefined) extra.corrector = o.corrector;
    if (o.sampler === 'langevin') {
      // Langevin dynamics targets one noise level: by default the smallest of the SDE, σ(eps), i.e. p_σ ≈ the data.
      delete extra.eps;
      extra.sigma = o.sigma ?? sde.edmSigma(o.eps ?? sde.samplingEps);
    }
    const progress = o.json ? undefined : new FractionProgress(`sample (${o.sampler})`);
    const { samples, stats } = await withFlagNames(FLAGS, () =>
      sample({
        sampler: o.sampler,
        sde,
        score,
        shape: [n, ...shapeOne],
        seed: o.seed,
        ...extra,
        ...(o.samplerOptions ?? {}),
        ...(progress
          ? {
              onProgress: (p: SampleProgress) => progress.update(p.fraction, `step ${p.step}/${p.steps}  NFE ${p.nfe}`),
            }
          : {}),
      } as Parameters<typeof sample>[0]),
    ).finally(() => progress?.end());
    const summary: Record<string, unknown> = {
      ckpt: o.ckpt,
      step: config.step,
      sampler: o.sampler,
      n,
      nfe: stats.nfe,
      ms: stats.ms,
      ema: o.ema,
      ...(o.eps !== undefined ? { eps: o.eps } : {}),
      denoiseToZero: o.denoiseToZero ?? false,
      ...(o.schedule !== undefined || stats.schedule !== undefined ? { schedule: stats.schedule ?? o.schedule } : {}),
      ...(o.samplerOptions ? { samplerOptions: o.samplerOptions } : {}),
      out: o.out,
    };
    try {
      if (is2d) {
        const pts = Float32Array.from(await samples.data());
        const run = await readRunFile(o.ckpt);
        const d = run ? parseDataSpec(run.data) : undefined;
        let ref: Float32Array | undefined;
        if (d?.kind === 'toy') {
          const ev = swdWithFloor(samples as tf.Tensor2D, d.toyName!, o.seed);
          ref = ev.reference;
          Object.assign(summary, { data: d.spec, swd: ev.swd, swdFloor: ev.floor, swdRatio: ev.swd / ev.floor });
        }
        const bounds = squareBounds(ref ?? pts);
        const png = scatterPng(
          [
            ...(ref ? [{ title: 'data', points: ref, color: COLORS.data }] : []),
            { title: `${o.sampler} (${stats.nfe} NFE)`, points: pts, color: COLORS.pc },
          ],
          { bounds },
        );
        const field = o.scoreField ? await scoreFieldPng(score, ref ?? pts, { bounds }) : undefined;
        await writeFileAtomic(o.out, png);
        if (field) {
          await writeFileAtomic(o.scoreField!, field);
          summary.scoreField = o.scoreField;
        }
      } else {
        const grid = await makeGrid(samples, { range: config.dataRange ?? [0, 1] });
        await writeFileAtomic(o.out, encodeGridPng(grid));
      }
    } finally {
      samples.dispose();
    }
    if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      const swd =
        typeof summary.swd === 'number'
          ? `; sliced-W2 ${(summary.swd as number).toFixed(4)} = ${(summary.swdRatio as number).toFixed(2)}× the noise floor`
          : '';
      process.stdout.write(
        `${n} samples (${o.sampler}, ${stats.nfe} NFE, ${(stats.ms / 1000).toFixed(1)} s) from step ${config.step} → ${o.out}${swd}\n`,
      );
      if (o.scoreField) process.stdout.write(`score field → ${o.scoreField}\n`);
    }
  } finally {
    ema.dispose();
    model.dispose();
  }
  return 0;
}
