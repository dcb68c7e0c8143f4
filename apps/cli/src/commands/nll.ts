import * as tf from '@tensorflow/tfjs';
import { checkpointScoreFn } from './import';
import { createSde } from '@sbm/sde';
import { logLikelihood } from '@sbm/likelihood';
import { loadCheckpoint } from '@sbm/training';
import { startBackend } from '../backend';
import { UsageError } from '../errors';
import { FractionProgress } from '../progress';
import { readRunFile, requireCheckpoint, storage } from '../run-file';
import { loadData, parseDataSpec } from '../setup';
import { mean, stdErr } from '../util';

export const DIVERGENCE_CHOICES = ['rademacher', 'gaussian', 'exact'];

export interface NllCliOptions {
  ckpt: string;
  data?: string;
  n?: number;
  divergence?: string;
  batch?: number;
  rtol?: number;
  atol?: number;
  seed: number;
  ema: boolean;
  json: boolean;
  backend?: string;
}

/**
 * Negative log-likelihood of held-out data under the probability-flow ODE (Song et al. 2021, Sec. 4.3): nats per
 * sample for 2-D data, bits/dim for 8-bit images (uniformly dequantized, offset from the training data range). The
 * ± is the standard error of the mean over samples (std/√n), which also absorbs the Hutchinson noise.
 */
export async function nllCommand(o: NllCliOptions): Promise<number> {
  await requireCheckpoint(o.ckpt);
  const run = await readRunFile(o.ckpt);
  let spec = o.data;
  if (!spec) {
    if (!run) throw new UsageError(`--data is required (${o.ckpt} does not record its data set)`);
    const trained = parseDataSpec(run.data);
    // The held-out split of the training data, in the same colour rule for coloured digits.
    spec =
      trained.kind === 'mnist' || trained.kind === 'colored-mnist'
        ? trained.spec.replace(/:train$/, ':test')
        : trained.spec;
  }
  const d = parseDataSpec(spec);
  // Held-out data by default: a bare "mnist" / "colored-mnist" means its test split here.
  if ((d.kind === 'mnist' || d.kind === 'colored-mnist') && d.split !== 'test' && !o.data?.includes(':')) {
    d.split = 'test';
  }
  await startBackend(o.backend, o.json);
  const loaded = await loadCheckpoint(storage, o.ckpt);
  // A damaged slot the loader stepped around (it fell back to the intact one): say so, never silently.
  for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
  const { model, ema, config } = loaded;
  let x: tf.Tensor | undefined;
  try {
    if (o.ema) ema.copyTo(model);
    const sde = createSde(config.sde);
    // Imported score_sde checkpoints score as the reference does (checkpointScoreFn).
    const score = checkpointScoreFn(model, sde, config);
    const isImage = d.kind !== 'toy';
    const n = o.n ?? (isImage ? 100 : 1000);
    const range = config.dataRange ?? [0, 1];
    // Held-out toy points: a seed the trainer never uses for data (it draws from seed 0).
    const data = await loadData(d, {
      n,
      seed: 1_000_003 + o.seed,
      centered: range[0] < 0,
      imageSize: run?.imageSize,
      channels: run?.channels as 1 | 3 | undefined,
    });
    x = data.x;
    const want = config.data.sampleShape.join('×');
    const got = data.sampleShape.join('×');
    if (want !== got) {
      throw new UsageError(`--data: ${d.spec} has samples of shape ${got}, the checkpoint was trained on ${want}`);
    }
    const D = data.sampleShape.reduce((a, b) => a * b, 1);
    const divergence = o.divergence ?? (D <= 16 ? 'exact' : 'rademacher');
    if (divergence === 'exact' && D > 256) {
      throw new UsageError(
        `--divergence exact: needs ${D} backward passes per step for ${got} samples; use rademacher`,
      );
    }
    const batch = o.batch ?? (isImage ? 50 : 1000);
    const N = x.shape[0];
    const nll: number[] = [];
    const bpd: number[] = [];
    let nfe = 0;
    const t0 = Date.now();
    // The ODE's fraction of [eps, T] covered, weighted by the batch's share of the samples.
    const progress = o.json ? undefined : new FractionProgress('nll');
    for (let i = 0; i < N; i += batch) {
      const nb = Math.min(batch, N - i);
      const xb = x.slice(i, nb);
      const report = (f: number, solverNfe: number) =>
        progress?.update((i + f * nb) / N, `${Math.min(N, i + nb)}/${N} samples  NFE ${nfe + solverNfe}`);
      try {
        const r = await logLikelihood(score, xb, sde, o.seed + i, {
          ...(progress ? { onProgress: (p: { fraction: number; nfe: number }) => report(p.fraction, p.nfe) } : {}),
          divergence: divergence as 'rademacher' | 'gaussian' | 'exact',
          ...(o.rtol !== undefined ? { rtol: o.rtol } : {}),
          ...(o.atol !== undefined ? { atol: o.atol } : {}),
          ...(isImage ? { dataRange: range, dequantize: true } : {}),
        });
        nll.push(...r.nll);
        bpd.push(...r.bpd);
        nfe += r.nfe;
      } finally {
        xb.dispose();
      }
      report(1, 0);
    }
    progress?.end();
    const seconds = (Date.now() - t0) / 1000;
    const result = isImage
      ? { bpd: mean(bpd), bpdStdErr: stdErr(bpd), nllNats: mean(nll), nllStdErr: stdErr(nll) }
      : { nllNats: mean(nll), nllStdErr: stdErr(nll) };
    const tolerances = { rtol: o.rtol ?? 1e-5, atol: o.atol ?? 1e-5 };
    const summary = {
      ckpt: o.ckpt,
      step: config.step,
      data: d.spec,
      n: N,
      divergence,
      ...tolerances,
      nfe,
      seconds,
      ...result,
    };
    if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else if (isImage) {
      process.stdout.write(
        `${summary.bpd!.toFixed(4)} ± ${summary.bpdStdErr!.toFixed(4)} bits/dim on ${d.spec} (n = ${N}, ${divergence}, dequantized, ${nfe} NFE, ${seconds.toFixed(1)} s)\n`,
      );
    } else {
      process.stdout.write(
        `NLL ${summary.nllNats.toFixed(4)} ± ${summary.nllStdErr.toFixed(4)} nats per sample on ${d.spec} (n = ${N}, ${divergence} trace, ${nfe} NFE, ${seconds.toFixed(1)} s)\n`,
      );
    }
  } finally {
    x?.dispose();
    ema.dispose();
    model.dispose();
  }
  return 0;
}
