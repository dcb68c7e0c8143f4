import * as tf from '@tensorflow/tfjs';
import { SbmError, checkNumber, type SeedStream } from '@sbm/core';
import type { SdeConfig } from '@sbm/sde';
import { divideByStd, makeEmbedding, stdSde } from './conditioning';
import { conv2d, conv2dTranspose, dense, groupNormSwish, swish } from './layers';
import { ScoreModel, checkIntList, checkKeys, type ForwardContext } from './model';
import { torchDefaultInit } from './params';

export interface ScoreNetConfig {
  name: 'scorenet';
  /** Height = width of the (square) images (default 28). */
  imageSize?: number;
  /** Image channels (default 1). */
  imageChannels?: number;
  /** Feature maps per resolution (default [32, 64, 128, 256]). */
  channels?: number[];
  /** Width of the time embedding (default 256). */
  embedDim?: number;
  /** Std of the Fourier frequencies (default 30). */
  fourierScale?: number;
  /** The SDE whose marginal std divides the output (default the tutorial VE, σ = 25). */
  marginalProbStd?: SdeConfig;
  /** GroupNorm epsilon (torch's default 1e-5). */
  groupNormEps?: number;
  [key: string]: unknown;
}

const KEYS = ['imageSize', 'imageChannels', 'channels', 'embedDim', 'fourierScale', 'marginalProbStd', 'groupNormEps'];
/** GroupNorm groups of the tutorial: 4 after conv1, 32 everywhere else. */
const ENC_GROUPS = [4, 32, 32, 32];
const DEC_GROUPS = [32, 32, 32];

type Norm = Required<ScoreNetConfig>;

function normalize(cfg: ScoreNetConfig): Norm {
  checkKeys(cfg, KEYS, 'scorenet');
  const out: Norm = {
    name: 'scorenet',
    imageSize: checkNumber(cfg.imageSize ?? 28, 'model.imageSize', { integer: true, min: 1 }),
    imageChannels: checkNumber(cfg.imageChannels ?? 1, 'model.imageChannels', { integer: true, min: 1 }),
    channels: checkIntList(cfg.channels ?? [32, 64, 128, 256], 'model.channels', { min: 1 }),
    embedDim: checkNumber(cfg.embedDim ?? 256, 'model.embedDim', { integer: true, min: 2 }),
    fourierScale: checkNumber(cfg.fourierScale ?? 30, 'model.fourierScale', { gt: 0 }),
    marginalProbStd: stdSde(cfg.marginalProbStd ?? { name: 'tutorial-ve', sigma: 25 }, 'model.marginalProbStd').config,
    groupNormEps: checkNumber(cfg.groupNormEps ?? 1e-5, 'model.groupNormEps', { gt: 0 }),
  };
  if (out.channels.length !== 4) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `model.channels: expected 4 widths (one per resolution), got ${out.channels.length}`,
    );
  }
  if (out.embedDim % 2 !== 0) {
    throw new SbmError('INVALID_ARGUMENT', `model.embedDim: expected an even number, got ${out.embedDim}`);
  }
  out.channels.forEach((c, i) => {
    for (const g of i === 3 ? [ENC_GROUPS[i]] : [ENC_GROUPS[i], DEC_GROUPS[i]]) {
      if (c % g !== 0) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `model.channels[${i}]: expected a multiple of ${g} (its GroupNorm groups), got ${c}`,
          { argument: `model.channels[${i}]` },
        );
      }
    }
  });
  return out;
}

/** Spatial sizes after conv1 (3×3, valid) and the three stride-2 valid convs. */
function encoderSizes(size: number): number[] {
  const s1 = size - 2;
  const sizes = [s1];
  for (let i = 0; i < 3; i++) sizes.push(Math.floor((sizes[i] - 3) / 2) + 1);
  return sizes;
}

/**
 * The time-dependent U-Net of Song's score-SDE tutorial notebook ("ScoreNet"), NHWC:
 * embed = swish(Dense(GaussianFourierProjection_30(t))); four encoder stages conv (3×3, no padding, no bias;
 * strides 1, 2, 2, 2) + Dense(embed) + GroupNorm (4, 32, 32, 32 groups) + swish; a decoder of transposed convs
 * (stride 2, 2, 2, 1) fed the concatenated encoder features, each + Dense(embed) + GroupNorm + swish except the
 * last (which has a bias); output ÷ marginal_prob_std(t). With 1 channel and the defaults: 1,115,297 trainable
 * parameters, as the notebook prints (the 128 Fourier frequencies are fixed and not counted).
 *
 * The transposed convs' output_padding is derived so the decoder retraces the encoder's sizes; for 28×28 this is
 * the notebook's (0, 1, 1, 0) and 32×32 works too (1, 1, 1, 0). `apply(x, t)` returns the score itself.
 */
export class ScoreNet extends ScoreModel<ScoreNetConfig> {
  readonly name = 'scorenet';
  readonly sampleShape: readonly number[];
  private readonly run: (x: tf.Tensor4D, t: tf.Tensor1D) => tf.Tensor4D;

  constructor(config: ScoreNetConfig = { name: 'scorenet' }, seed: number | SeedStream = 0) {
    const cfg = normalize(config);
    super(cfg, seed);
    const p = this.params;
    const { imageSize: S, imageChannels: C, channels: ch, embedDim: E, groupNormEps: eps } = cfg;
    const sizes = encoderSizes(S);
    if (sizes[3] < 1) {
      throw new SbmError('INVALID_ARGUMENT', `model.imageSize: expected >= 22 (four 3×3 valid convs), got ${S}`, {
        argument: 'model.imageSize',
      });
    }
    this.sampleShape = [S, S, C];
    const sde = stdSde(cfg.marginalProbStd, 'model.marginalProbStd').sde;

    const embed = makeEmbedding(p, 'embed/fourier', { type: 'fourier', dim: E, scale: cfg.fourierScale });
    const embK = p.add('embed/dense/kernel', [E, E], torchDefaultInit(E)) as tf.Variable<tf.Rank.R2>;
    const embB = p.add('embed/dense/bias', [E], torchDefaultInit(E)) as tf.Variable<tf.Rank.R1>;

    // Dense(embed → c)[..., None, None]: a per-channel bias that depends on t.
    const tDense = (name: string, c: number) => {
      const k = p.add(`${name}/kernel`, [E, c], torchDefaultInit(E)) as tf.Variable<tf.Rank.R2>;
      const b = p.add(`${name}/bias`, [c], torchDefaultInit(E)) as tf.Variable<tf.Rank.R1>;
      return (embed: tf.Tensor2D) => tf.reshape(dense(embed, k, b), [-1, 1, 1, c]);
    };
    const gNorm = (name: string, c: number, groups: number) => {
      const gamma = p.add(`${name}/gamma`, [c], { kind: 'ones' }) as tf.Variable<tf.Rank.R1>;
      const beta = p.add(`${name}/beta`, [c], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>;
      // swish(GN(h + bias)): one fused kernel (forward and backward) where the backend has it.
      return (h: tf.Tensor4D, bias: tf.Tensor) => groupNormSwish(h, groups, gamma, beta, eps, bias);
    };
    const convW = (name: string, cin: number, cout: number) =>
      p.add(`${name}/kernel`, [3, 3, cin, cout], torchDefaultInit(9 * cin)) as tf.Variable<tf.Rank.R4>;
    // torch computes a ConvTranspose2d's fan_in from weight.shape[1] = its output channels.
    const tconvW = (name: string, cin: number, cout: number) =>
      p.add(`${name}/kernel`, [3, 3, cout, cin], torchDefaultInit(9 * cout)) as tf.Variable<tf.Rank.R4>;

    // Creation order follows the notebook's module order (embed, conv1, dense1, gnorm1, ...).
    const enc = ch.map((c, i) => {
      const cin = i === 0 ? C : ch[i - 1];
      return {
        w: convW(`conv${i + 1}`, cin, c),
        d: tDense(`dense${i + 1}`, c),
        n: gNorm(`gnorm${i + 1}`, c, ENC_GROUPS[i]),
      };
    });
    const dec = [3, 2, 1].map((lvl, j) => {
      const cin = lvl === 3 ? ch[3] : 2 * ch[lvl];
      const cout = ch[lvl - 1];
      // output_padding so that the size after this tconv equals the encoder's size at level lvl − 1.
      const op = sizes[lvl - 1] - ((sizes[lvl] - 1) * 2 + 3);
      return {
        w: tconvW(`tconv${lvl + 1}`, cin, cout),
        d: tDense(`dense${5 + j}`, cout),
        n: gNorm(`tgnorm${lvl + 1}`, cout, DEC_GROUPS[j]),
        op,
      };
    });
    const outW = tconvW('tconv1', 2 * ch[0], C);
    const outB = p.add('tconv1/bias', [C], torchDefaultInit(9 * C)) as tf.Variable<tf.Rank.R1>;

    this.run = (x, t) => {
      const e = swish(dense(embed(t), embK, embB));
      const hs: tf.Tensor4D[] = [];
      let h: tf.Tensor4D = x;
      enc.forEach((s, i) => {
        h = conv2d(h, s.w, undefined, i === 0 ? 1 : 2, 'valid');
        h = s.n(h, s.d(e));
        hs.push(h);
      });
      dec.forEach((s, j) => {
        const input = j === 0 ? h : (tf.concat([h, hs[3 - j]], 3) as tf.Tensor4D);
        h = conv2dTranspose(input, s.w, undefined, 2, s.op);
        h = s.n(h, s.d(e));
      });
      const out = conv2dTranspose(tf.concat([h, hs[0]], 3) as tf.Tensor4D, outW, outB, 1, 0);
      return divideByStd(out, sde, t) as tf.Tensor4D;
    };
  }

  protected forward(x: tf.Tensor, t: tf.Tensor1D, _ctx: ForwardContext): tf.Tensor {
    return this.run(x as tf.Tensor4D, t);
  }
}
