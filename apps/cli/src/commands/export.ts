import { exportSbmModelAsync, exportScoreSdeAsync } from '@sbm/interop';
import type { ScoreSdeNcsnpp } from '@sbm/models';
import { loadCheckpoint } from '@sbm/training';
import { startBackend } from '../backend';
import { UsageError } from '../errors';
import { requireCheckpoint, storage } from '../run-file';
import { fileExists, writeFileAtomic } from '../util';

export interface ExportCliOptions {
  ckpt: string;
  out: string;
  weights: 'ema' | 'model';
  force: boolean;
  backend?: string;
  /** Storage of the trainable weights (`export safetensors` only; default float32). */
  dtype?: string;
}

/**
 * `sbm export score-sde`: an sbm checkpoint of a `score-sde-ncsnpp` model → safetensors under score_sde_pytorch's
 * state-dict names and layouts, which `NCSNpp(config).load_state_dict(load_file(f))` takes.
 */
export async function exportCommand(format: string, o: ExportCliOptions): Promise<number> {
  if (format === 'safetensors') return exportSafetensorsCommand(o);
  if (format !== 'score-sde') throw new UsageError(`<format>: expected score-sde or safetensors, got "${format}"`);
  if (o.dtype !== undefined) {
    throw new UsageError(
      '--dtype: applies to export safetensors only (score-sde files are float32, as PyTorch saves them)',
    );
  }
  return withCheckpoint(o, async ({ model, ema, config }) => {
    if (model.name !== 'score-sde-ncsnpp') {
      throw new UsageError(
        `--ckpt: ${o.ckpt} holds a ${model.name} model; export score-sde needs a score-sde-ncsnpp one ` +
          '(as sbm import score-sde writes)',
      );
    }
    if (o.weights === 'ema') ema.copyTo(model);
    const bytes = await exportScoreSdeAsync(model as unknown as ScoreSdeNcsnpp);
    await writeFileAtomic(o.out, bytes);
    process.stdout.write(
      `exported ${o.ckpt} (step ${config.step}, ${o.weights} weights, ${model.getWeights().length} tensors + sigmas) → ${o.out}\n`,
    );
  });
}

/**
 * `sbm export safetensors`: any sbm checkpoint → one sbm model file (@sbm/interop's exportSbmModel): the chosen
 * weights under their sbm names, with the model and SDE configs, data range and step in the header — what the demo
 * site fetches, and what `loadSbmModel` rebuilds without the checkpoint folder. float16 halves it.
 */
async function exportSafetensorsCommand(o: ExportCliOptions): Promise<number> {
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw new UsageError(`--dtype: expected float16 or float32, got "${dtype}"`);
  }
  return withCheckpoint(o, async ({ model, ema, config }) => {
    if (o.weights === 'ema') ema.copyTo(model);
    const bytes = await exportSbmModelAsync(model, {
      dtype,
      metadata: {
        sde: config.sde,
        dataRange: config.dataRange,
        step: config.step,
        weights: o.weights,
        // Provenance only (loadSbmModel does not read it): the recipe that produced the weights.
        extra: { training: JSON.stringify(config.training), seed: String(config.seed) },
      },
    });
    await writeFileAtomic(o.out, bytes);
    process.stdout.write(
      `exported ${o.ckpt} (step ${config.step}, ${o.weights} weights, ${model.getWeights().length} tensors, ${dtype}) → ` +
        `${o.out} (${bytes.length} bytes)\n`,
    );
  });
}

type LoadedCheckpoint = Awaited<ReturnType<typeof loadCheckpoint>>;

/**
 * What both export formats share: check --out (a .safetensors path, not clobbered without --force), load the
 * checkpoint on the chosen backend, run `write` on it, and dispose of everything loaded whether or not it threw.
 */
async function withCheckpoint(
  o: ExportCliOptions,
  write: (loaded: LoadedCheckpoint) => Promise<void>,
): Promise<number> {
  if (!o.out.toLowerCase().endsWith('.safetensors')) {
    throw new UsageError(`--out: expected a .safetensors file, got "${o.out}"`);
  }
  if (!o.force && (await fileExists(o.out))) {
    throw new UsageError(`--out: ${o.out} exists; pass --force to replace it or choose another --out`);
  }
  await requireCheckpoint(o.ckpt);
  await startBackend(o.backend);
  const loaded = await loadCheckpoint(storage, o.ckpt);
  // A damaged slot the loader stepped around (it fell back to the intact one): say so, never silently.
  for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
  const { model, ema, optimizerState } = loaded;
  try {
    await write(loaded);
  } finally {
    ema.dispose();
    model.dispose();
    for (const t of [...Object.values(optimizerState.m), ...Object.values(optimizerState.v)]) t.dispose();
  }
  return 0;
}
