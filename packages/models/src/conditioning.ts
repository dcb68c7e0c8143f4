import * as tf from '@tensorflow/tfjs';
import { SbmError, broadcastBatch, describeValue } from '@sbm/core';
import { createSde, type Sde, type SdeConfig } from '@sbm/sde';
import { gaussianFourierProjection, sinusoidalEmbedding, type EmbeddingConfig } from './embeddings';
import type { ParamStore } from './params';

/**
 * Builds the parameters of an embedding (only Fourier features have any: the fixed frequencies W ~ N(0, scale²),
 * stored as a non-trainable weight so a checkpoint reproduces them exactly) and returns its forward function.
 */
export function makeEmbedding(p: ParamStore, prefix: string, cfg: EmbeddingConfig): (cond: tf.Tensor1D) => tf.Tensor2D {
  if (cfg.type === 'fourier') {
    const W = p.add(`${prefix}/W`, [cfg.dim / 2], { kind: 'normal', std: cfg.scale }, false) as tf.Variable<tf.Rank.R1>;
    return (cond) => gaussianFourierProjection(cfg.logInput ? tf.log(cond) : cond, W);
  }
  return (cond) => sinusoidalEmbedding(cond, cfg.dim, cfg.maxPositions);
}

/** Resolves an SDE config used as the tutorial's marginal_prob_std (validated by createSde). */
export function stdSde(cfg: unknown, name: string): { sde: Sde; config: SdeConfig } {
  if (cfg === null || typeof cfg !== 'object' || typeof (cfg as SdeConfig).name !== 'string') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected an SDE config { name, ... }, got ${describeValue(cfg)}`, {
      argument: name,
    });
  }
  const sde = createSde(cfg as SdeConfig);
  return { sde, config: sde.toConfig() };
}

/** out / std(t) per sample: the tutorial's `h / marginal_prob_std(t)[:, None, None, None]`. */
export function divideByStd(out: tf.Tensor, sde: Sde, t: tf.Tensor1D): tf.Tensor {
  return tf.div(out, broadcastBatch(sde.stdT(t), out));
}

/** out / σ per sample, σ being the conditioning input itself (NCSN++ scale_by_sigma). */
export function divideByCond(out: tf.Tensor, cond: tf.Tensor1D): tf.Tensor {
  return tf.div(out, broadcastBatch(cond, out));
}
