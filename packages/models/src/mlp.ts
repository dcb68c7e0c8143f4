import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, type SeedStream } from '@sbm/core';
import type { Sde, SdeConfig } from '@sbm/sde';
import { checkEmbeddingConfig, type EmbeddingConfig } from './embeddings';
import { divideByCond, divideByStd, makeEmbedding, stdSde } from './conditioning';
import { dense, swish } from './layers';
import { ScoreModel, checkBool, checkIntList, checkKeys, type ForwardContext } from './model';
import { torchDefaultInit } from './params';

export interface MlpConfig {
  name: 'mlp';
  /** Data dimension D (input and output width). */
  inputDim: number;
  /** Hidden widths (default [128, 128, 128]). */
  hidden?: number[];
  /** Embedding of the conditioning input (default Fourier, 64 features, scale 16). */
  embedding?: EmbeddingConfig;
  /** Divide the output by the conditioning input σ (NCSN++ scale_by_sigma; for VE with cond = σ). */
  scaleBySigma?: boolean;
  /** Divide the output by this SDE's std(t) (the tutorial's normalization; then cond = t and the output is the score). */
  marginalProbStd?: SdeConfig;
  [key: string]: unknown;
}

const KEYS = ['inputDim', 'hidden', 'embedding', 'scaleBySigma', 'marginalProbStd'];

type Norm = {
  name: 'mlp';
  inputDim: number;
  hidden: number[];
  embedding: EmbeddingConfig;
  scaleBySigma: boolean;
  marginalProbStd?: SdeConfig;
};

function normalize(cfg: MlpConfig): Norm {
  checkKeys(cfg, KEYS, 'mlp');
  const out: Norm = {
    name: 'mlp',
    inputDim: checkNumber(cfg.inputDim, 'model.inputDim', { integer: true, min: 1 }),
    hidden: checkIntList(cfg.hidden ?? [128, 128, 128], 'model.hidden', { min: 1, nonEmpty: true }),
    embedding: checkEmbeddingConfig(cfg.embedding ?? { type: 'fourier', dim: 64, scale: 16 }, 'model.embedding'),
    scaleBySigma: checkBool(cfg.scaleBySigma ?? false, 'model.scaleBySigma'),
  };
  if (cfg.marginalProbStd !== undefined) {
    out.marginalProbStd = stdSde(cfg.marginalProbStd, 'model.marginalProbStd').config;
    if (out.scaleBySigma) {
      throw new SbmError(
        'INVALID_ARGUMENT',
        'model.scaleBySigma: expected false when model.marginalProbStd is set (the output is divided once)',
        { argument: 'model.scaleBySigma' },
      );
    }
  }
  return out;
}

/**
 * Score network for low-dimensional data (toy 2-D mixtures and the like): an embedding of the conditioning input,
 * Dense + swish to the embedding width, then hidden layers h ← swish(W h + b + V temb) — each layer gets its own
 * projection of the embedding, as the tutorial ScoreNet adds dense_i(embed) to every feature map — and a linear
 * output of width D. PyTorch default initialization.
 */
export class MlpScoreModel extends ScoreModel<MlpConfig> {
  readonly name = 'mlp';
  readonly sampleShape: readonly number[];
  private readonly run: (x: tf.Tensor2D, cond: tf.Tensor1D) => tf.Tensor2D;

  constructor(config: MlpConfig, seed: number | SeedStream = 0) {
    const cfg = normalize(config);
    super(cfg as MlpConfig, seed);
    const p = this.params;
    this.sampleShape = [cfg.inputDim];
    const E = cfg.embedding.dim;
    const embed = makeEmbedding(p, 'embed', cfg.embedding);
    const eK = p.add('embed/dense/kernel', [E, E], torchDefaultInit(E)) as tf.Variable<tf.Rank.R2>;
    const eB = p.add('embed/dense/bias', [E], torchDefaultInit(E)) as tf.Variable<tf.Rank.R1>;
    const layers: { k: tf.Variable<tf.Rank.R2>; b: tf.Variable<tf.Rank.R1>; ck: tf.Variable<tf.Rank.R2> }[] = [];
    let width = cfg.inputDim;
    cfg.hidden.forEach((h, i) => {
      const k = p.add(`hidden.${i}/kernel`, [width, h], torchDefaultInit(width)) as tf.Variable<tf.Rank.R2>;
      const b = p.add(`hidden.${i}/bias`, [h], torchDefaultInit(width)) as tf.Variable<tf.Rank.R1>;
      const ck = p.add(`hidden.${i}/temb/kernel`, [E, h], torchDefaultInit(E)) as tf.Variable<tf.Rank.R2>;
      layers.push({ k, b, ck });
      width = h;
    });
    const oK = p.add('out/kernel', [width, cfg.inputDim], torchDefaultInit(width)) as tf.Variable<tf.Rank.R2>;
    const oB = p.add('out/bias', [cfg.inputDim], torchDefaultInit(width)) as tf.Variable<tf.Rank.R1>;
    const sde: Sde | undefined = cfg.marginalProbStd
      ? stdSde(cfg.marginalProbStd, 'model.marginalProbStd').sde
      : undefined;

    this.run = (x, cond) => {
      const temb = swish(dense(embed(cond), eK, eB));
      let h: tf.Tensor2D = x;
      for (const l of layers) h = swish(tf.add(dense(h, l.k, l.b), dense(temb, l.ck)) as tf.Tensor2D);
      let out: tf.Tensor = dense(h, oK, oB);
      if (cfg.scaleBySigma) out = divideByCond(out, cond);
      if (sde) out = divideByStd(out, sde, cond);
      return out as tf.Tensor2D;
    };
  }

  protected forward(x: tf.Tensor, cond: tf.Tensor1D, _ctx: ForwardContext): tf.Tensor {
    return this.run(x as tf.Tensor2D, cond);
  }
}
