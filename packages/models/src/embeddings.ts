import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, checkTensor } from '@sbm/core';

/**
 * Gaussian random Fourier features (Tancik et al. 2020; score_sde layerspp.GaussianFourierProjection, the tutorial's
 * GaussianFourierProjection): for fixed frequencies W, emb(x) = [sin(2π x W), cos(2π x W)]. Output [B, 2·len(W)].
 * score_sde feeds log σ (VE, scale 16); the tutorial feeds t (scale 30). W ~ N(0, scale²) is drawn once and never
 * trained.
 */
export function gaussianFourierProjection(x: tf.Tensor1D, W: tf.Tensor1D): tf.Tensor2D {
  checkTensor(x, 'x', [null]);
  checkTensor(W, 'W', [null]);
  return tf.tidy(() => {
    const proj = tf.mul(tf.mul(tf.reshape(x, [-1, 1]), tf.reshape(W, [1, -1])), 2 * Math.PI);
    return tf.concat([tf.sin(proj), tf.cos(proj)], 1) as tf.Tensor2D;
  });
}

/**
 * Sinusoidal timestep embedding of DDPM (Ho et al. 2020; score_sde layers.get_timestep_embedding, after the
 * Transformer's positional encoding): with h = ⌊dim/2⌋ and ω_k = exp(−k ln(maxPositions)/(h − 1)), k = 0..h−1,
 * emb(t) = [sin(t ω), cos(t ω)], zero-padded by one column when dim is odd. Output [B, dim].
 */
export function sinusoidalEmbedding(t: tf.Tensor1D, dim: number, maxPositions = 10000): tf.Tensor2D {
  checkTensor(t, 't', [null]);
  checkNumber(dim, 'dim', { integer: true, min: 4 });
  checkNumber(maxPositions, 'maxPositions', { gt: 1 });
  const half = Math.floor(dim / 2);
  const step = Math.log(maxPositions) / (half - 1);
  const freqs = Float32Array.from({ length: half }, (_, k) => Math.exp(-k * step));
  return tf.tidy(() => {
    const arg = tf.mul(tf.reshape(t, [-1, 1]), tf.tensor2d(freqs, [1, half]));
    let emb = tf.concat([tf.sin(arg), tf.cos(arg)], 1);
    if (dim % 2 === 1)
      emb = tf.pad(emb, [
        [0, 0],
        [0, 1],
      ]);
    return emb as tf.Tensor2D;
  });
}

/** Time / noise-level embedding of a model config. */
export type EmbeddingConfig =
  | {
      type: 'fourier';
      /** Output width (W has dim/2 frequencies). */
      dim: number;
      /** Std of the frequencies W (tutorial 30, NCSN++ 16). */
      scale: number;
      /** Embed log(cond) instead of cond (score_sde does this when cond is σ). */
      logInput?: boolean;
    }
  | { type: 'positional'; dim: number; maxPositions?: number };

export function checkEmbeddingConfig(cfg: unknown, name: string): EmbeddingConfig {
  if (cfg === null || typeof cfg !== 'object') {
    throw new SbmError('INVALID_ARGUMENT', `${name}: expected { type: 'fourier' | 'positional', dim, ... }`, {
      argument: name,
    });
  }
  const c = cfg as Record<string, unknown>;
  if (c.type === 'fourier') {
    checkNumber(c.dim, `${name}.dim`, { integer: true, min: 2 });
    if ((c.dim as number) % 2 !== 0) {
      throw new SbmError('INVALID_ARGUMENT', `${name}.dim: expected an even number for Fourier features, got ${c.dim}`);
    }
    checkNumber(c.scale, `${name}.scale`, { gt: 0 });
    return { type: 'fourier', dim: c.dim as number, scale: c.scale as number, logInput: c.logInput === true };
  }
  if (c.type === 'positional') {
    checkNumber(c.dim, `${name}.dim`, { integer: true, min: 4 });
    const maxPositions =
      c.maxPositions === undefined ? 10000 : checkNumber(c.maxPositions, `${name}.maxPositions`, { gt: 1 });
    return { type: 'positional', dim: c.dim as number, maxPositions };
  }
  throw new SbmError(
    'UNKNOWN_NAME',
    `${name}.type: expected "fourier" or "positional", got ${JSON.stringify(c.type)}`,
    { argument: `${name}.type`, expected: ['fourier', 'positional'], received: c.type },
  );
}
