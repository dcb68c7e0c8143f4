import * as tf from '@tensorflow/tfjs';
import { toy, toyNames } from '@sbm/datasets';
import { loadColoredMnist, loadImageFolder, loadMnist } from '@sbm/datasets/node';
import { createSde, listSdes } from '@sbm/sde';
import type { Sde, SdeConfig } from '@sbm/sde';
import { modelFromConfig, type ModelConfig, type ScoreModel } from '@sbm/models';
import { didYouMean } from '@sbm/core';
import { UsageError } from './errors';
import { checkChoice } from './registries';

/** Spellings accepted after `toy:` besides the registered names of @sbm/datasets. */
const TOY_ALIASES: Record<string, string> = { swissroll: 'swiss-roll', swiss_roll: 'swiss-roll' };

/** The 2-D mixture behind `toy:gmm`: three unequal, well separated Gaussians. */
const GMM_OPTIONS = {
  means: [
    [-1.5, -1.5],
    [1.5, 1.5],
    [-1.5, 1.5],
  ],
  std: 0.3,
  weights: [0.5, 0.25, 0.25],
};

export interface DataSpec {
  kind: 'toy' | 'mnist' | 'colored-mnist' | 'folder';
  /** Canonical spelling (stored in the run file). */
  spec: string;
  toyName?: string;
  split?: 'train' | 'test';
  /** colored-mnist only: 'random' colours, or the class palette of `colored-mnist-class` (see @sbm/datasets). */
  palette?: 'random' | 'class';
  path?: string;
}

export function parseDataSpec(spec: string, flag = '--data'): DataSpec {
  const s = spec.trim();
  if (s.startsWith('toy:')) {
    const raw = s.slice(4);
    const name = TOY_ALIASES[raw] ?? raw;
    const names = toyNames();
    if (!names.includes(name)) {
      throw new UsageError(
        `${flag}: unknown toy data set "${raw}" (expected one of ${names.join(', ')}, or swissroll)${didYouMean(raw, names)}`,
      );
    }
    return { kind: 'toy', spec: `toy:${name}`, toyName: name };
  }
  if (s === 'mnist' || s === 'mnist:train' || s === 'mnist:test') {
    const split = s === 'mnist:test' ? 'test' : 'train';
    return { kind: 'mnist', spec: `mnist:${split}`, split };
  }
  for (const base of ['colored-mnist', 'colored-mnist-class'] as const) {
    if (s === base || s === `${base}:train` || s === `${base}:test`) {
      const split = s === `${base}:test` ? 'test' : 'train';
      const palette = base === 'colored-mnist' ? 'random' : 'class';
      return { kind: 'colored-mnist', spec: `${base}:${split}`, split, palette };
    }
  }
  if (s.startsWith('folder:') && s.length > 7) return { kind: 'folder', spec: s, path: s.slice(7) };
  throw new UsageError(
    `${flag}: expected toy:NAME (swissroll, moons, gmm, checkerboard, rings, …), mnist, mnist:test, colored-mnist, colored-mnist:test, colored-mnist-class, colored-mnist-class:test or folder:PATH, got "${spec}"`,
  );
}

/** Draws n points of a toy data set (seeded: same seed, same points). */
export function toyData(name: string, n: number, seed: number): tf.Tensor2D {
  return toy(name, n, seed, name === 'gmm' ? GMM_OPTIONS : undefined);
}

export interface LoadedData {
  x: tf.Tensor;
  range: [number, number] | null;
  sampleShape: number[];
}

/**
 * Loads training (or evaluation) data. Images go to [-1, 1] for VP-type SDEs and [0, 1] for VE-type ones, the
 * conventions of score_sde (data.centered) and of Song's tutorial.
 */
export async function loadData(
  d: DataSpec,
  opts: { n?: number; seed: number; centered: boolean; imageSize?: number; channels?: 1 | 3 },
): Promise<LoadedData> {
  const range: [number, number] = opts.centered ? [-1, 1] : [0, 1];
  if (d.kind === 'toy') {
    const x = toyData(d.toyName!, opts.n ?? 10_000, opts.seed);
    return { x, range: null, sampleShape: [2] };
  }
  if (d.kind === 'mnist') {
    const m = await loadMnist({ split: d.split, range, limit: opts.n });
    m.labels.dispose();
    return { x: m.images, range, sampleShape: m.images.shape.slice(1) };
  }
  if (d.kind === 'colored-mnist') {
    // The colours are fixed by colour seed 0, not by --seed: the data set is one fixed set (like MNIST itself), so
    // runs with different weight seeds, and evaluation against the test split, see the same images.
    const m = await loadColoredMnist({ split: d.split, range, n: opts.n, seed: 0, palette: d.palette ?? 'random' });
    m.labels.dispose();
    m.foreground.dispose();
    m.background.dispose();
    return { x: m.images, range, sampleShape: m.images.shape.slice(1) };
  }
  const f = await loadImageFolder(d.path!, {
    size: opts.imageSize ?? 32,
    channels: opts.channels ?? 3,
    range,
    limit: opts.n,
  });
  return { x: f.images, range, sampleShape: f.images.shape.slice(1) };
}

export function makeSde(name: string, overrides: Record<string, unknown> = {}): Sde {
  checkChoice('--sde', name, listSdes());
  return createSde({ ...overrides, name } as SdeConfig);
}

/** VP-type SDEs (prior N(0, I)) train on centred data. */
export function isCentered(sde: Sde): boolean {
  const n = sde.toConfig().name;
  return n !== 've' && n !== 'tutorial-ve';
}

/**
 * The default architecture for a data shape: all models divide by the SDE's marginal std where they support it
 * (`marginalProbStd`), which the swiss-roll experiments showed to train much faster on 2-D data than the 999·t label.
 */
export function buildModel(
  name: string,
  sde: Sde,
  sampleShape: number[],
  overrides: Record<string, unknown>,
  seed: number,
): ScoreModel {
  const sdeConfig = sde.toConfig();
  let config: Record<string, unknown>;
  if (name === 'mlp') {
    if (sampleShape.length !== 1) {
      throw new UsageError(
        `--model mlp: expected flat data ([N, D]), got samples of shape [${sampleShape.join(', ')}]`,
      );
    }
    config = { name: 'mlp', inputDim: sampleShape[0], marginalProbStd: sdeConfig };
  } else if (name === 'scorenet' || name === 'ncsnpp') {
    if (sampleShape.length !== 3 || sampleShape[0] !== sampleShape[1]) {
      throw new UsageError(
        `--model ${name}: expected square images [H, W, C], got samples of shape [${sampleShape.join(', ')}] (use --model mlp for toy data)`,
      );
    }
    const [size, , channels] = sampleShape;
    config =
      name === 'scorenet'
        ? { name, imageSize: size, imageChannels: channels, marginalProbStd: sdeConfig }
        : {
            name,
            imageSize: size,
            imageChannels: channels,
            nf: 64,
            chMult: [1, 2, 2],
            attnResolutions: [Math.floor(size / 4)],
            ...(isCentered(sde) ? {} : { embedding: 'fourier' }),
          };
  } else {
    config = { name };
  }
  return modelFromConfig({ ...config, ...overrides } as ModelConfig, { seed });
}
