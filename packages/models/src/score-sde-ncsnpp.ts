import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber, checkTensor, type SeedStream } from '@sbm/core';
import { gaussianFourierProjection, sinusoidalEmbedding } from './embeddings';
import { dense, dropout, groupNorm, swish, upsampleNearest2x, avgPool2x } from './layers';
import { ScoreModel, checkBool, checkIntList, checkKeys, type ForwardContext } from './model';
import { varianceScalingInit } from './params';
import { convDownsample2d, firDownsample2d, firUpsample2d, upsampleConv2d } from './up-or-down-sampling';

/**
 * Config of `ScoreSdeNcsnpp`: score_sde's `config.model` / `config.data` keys in camelCase
 * (`ch_mult` → `chMult`, `data.image_size` → `imageSize`, ...). Defaults are configs/ve/cifar10_ncsnpp_continuous.py.
 */
export interface ScoreSdeNcsnppConfig {
  name: 'score-sde-ncsnpp';
  imageSize?: number;
  numChannels?: number;
  /** Data in [−1, 1] (true) or [0, 1] (false: the model maps x to 2x − 1 itself). */
  centered?: boolean;
  nf?: number;
  chMult?: number[];
  numResBlocks?: number;
  attnResolutions?: number[];
  dropout?: number;
  resampWithConv?: boolean;
  conditional?: boolean;
  fir?: boolean;
  firKernel?: number[];
  skipRescale?: boolean;
  resblockType?: 'biggan' | 'ddpm';
  progressive?: 'none' | 'output_skip' | 'residual';
  progressiveInput?: 'none' | 'input_skip' | 'residual';
  progressiveCombine?: 'sum' | 'cat';
  initScale?: number;
  fourierScale?: number;
  embeddingType?: 'fourier' | 'positional';
  scaleBySigma?: boolean;
  /** σ grid of `scaleBySigma` with the positional embedding (utils.get_sigmas). */
  sigmaMin?: number;
  sigmaMax?: number;
  numScales?: number;
  [key: string]: unknown;
}

const KEYS = [
  'imageSize',
  'numChannels',
  'centered',
  'nf',
  'chMult',
  'numResBlocks',
  'attnResolutions',
  'dropout',
  'resampWithConv',
  'conditional',
  'fir',
  'firKernel',
  'skipRescale',
  'resblockType',
  'progressive',
  'progressiveInput',
  'progressiveCombine',
  'initScale',
  'fourierScale',
  'embeddingType',
  'scaleBySigma',
  'sigmaMin',
  'sigmaMax',
  'numScales',
];

type Norm = Required<ScoreSdeNcsnppConfig>;

function normalize(c: ScoreSdeNcsnppConfig): Norm {
  checkKeys(c, KEYS, 'score-sde-ncsnpp');
  const n: Norm = {
    name: 'score-sde-ncsnpp',
    imageSize: checkNumber(c.imageSize ?? 32, 'model.imageSize', { integer: true, min: 1 }),
    numChannels: checkNumber(c.numChannels ?? 3, 'model.numChannels', { integer: true, min: 1 }),
    centered: checkBool(c.centered ?? false, 'model.centered'),
    nf: checkNumber(c.nf ?? 128, 'model.nf', { integer: true, min: 4 }),
    chMult: checkIntList(c.chMult ?? [1, 2, 2, 2], 'model.chMult', { min: 1, nonEmpty: true }),
    numResBlocks: checkNumber(c.numResBlocks ?? 4, 'model.numResBlocks', { integer: true, min: 1 }),
    attnResolutions: checkIntList(c.attnResolutions ?? [16], 'model.attnResolutions', { min: 1 }),
    dropout: checkNumber(c.dropout ?? 0.1, 'model.dropout', { min: 0, lt: 1 }),
    resampWithConv: checkBool(c.resampWithConv ?? true, 'model.resampWithConv'),
    conditional: checkBool(c.conditional ?? true, 'model.conditional'),
    fir: checkBool(c.fir ?? true, 'model.fir'),
    firKernel: checkIntList(c.firKernel ?? [1, 3, 3, 1], 'model.firKernel', { nonEmpty: true }),
    skipRescale: checkBool(c.skipRescale ?? true, 'model.skipRescale'),
    resblockType: checkChoice(c.resblockType ?? 'biggan', 'model.resblockType', ['biggan', 'ddpm'] as const),
    progressive: checkChoice(c.progressive ?? 'none', 'model.progressive', [
      'none',
      'output_skip',
      'residual',
    ] as const),
    progressiveInput: checkChoice(c.progressiveInput ?? 'residual', 'model.progressiveInput', [
      'none',
      'input_skip',
      'residual',
    ] as const),
    progressiveCombine: checkChoice(c.progressiveCombine ?? 'sum', 'model.progressiveCombine', ['sum', 'cat'] as const),
    initScale: checkNumber(c.initScale ?? 0, 'model.initScale', { min: 0 }),
    fourierScale: checkNumber(c.fourierScale ?? 16, 'model.fourierScale', { gt: 0 }),
    embeddingType: checkChoice(c.embeddingType ?? 'fourier', 'model.embeddingType', ['fourier', 'positional'] as const),
    scaleBySigma: checkBool(c.scaleBySigma ?? true, 'model.scaleBySigma'),
    sigmaMin: checkNumber(c.sigmaMin ?? 0.01, 'model.sigmaMin', { gt: 0 }),
    sigmaMax: checkNumber(c.sigmaMax ?? 50, 'model.sigmaMax', { gt: 0 }),
    numScales: checkNumber(c.numScales ?? 1000, 'model.numScales', { integer: true, min: 2 }),
  };
  if (n.imageSize % 2 ** (n.chMult.length - 1) !== 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `model.imageSize: expected a multiple of 2^${n.chMult.length - 1} for ${n.chMult.length} resolutions, got ${n.imageSize}`,
      { argument: 'model.imageSize' },
    );
  }
  return n;
}

/** One entry of score_sde's `all_modules`: called with its inputs, returns its output. */
type Mod = (inputs: tf.Tensor[], temb: tf.Tensor2D | undefined, ctx: ForwardContext) => tf.Tensor;

/**
 * NCSN++ / DDPM++ exactly as score_sde_pytorch's models/ncsnpp.py `NCSNpp`, NHWC: the same `all_modules` list in
 * the same order, parameters named as its state dict (`all_modules.4.Conv_0.weight`, without `module.`) and created
 * in its registration order, so a reference state dict maps one-to-one and the EMA shadow list zips with
 * `trainableVariables()`. Layouts are tfjs': conv kernels HWIO, Linear kernels [in, out], NIN W [in, out] (the
 * reference's own layout). The σ grid (`sigmas` buffer) is not a weight here: it follows from the config.
 *
 * `cond` is what the reference's forward takes as `time_cond`: σ(t) with the Fourier embedding (VE), 999·t with the
 * positional one (VP / sub-VP), as mutils.get_score_fn passes it.
 */
export class ScoreSdeNcsnpp extends ScoreModel<ScoreSdeNcsnppConfig> {
  readonly name = 'score-sde-ncsnpp';
  readonly sampleShape: readonly number[];
  override readonly dropoutRate: number;
  /** Number of entries of the reference's `all_modules`. */
  readonly moduleCount: number;
  private readonly run: (
    x: tf.Tensor4D,
    cond: tf.Tensor1D,
    ctx: ForwardContext,
    trace?: (i: number, t: tf.Tensor) => void,
  ) => tf.Tensor4D;

  constructor(config: ScoreSdeNcsnppConfig = { name: 'score-sde-ncsnpp' }, seed: number | SeedStream = 0) {
    const cfg = normalize(config);
    super(cfg, seed);
    this.dropoutRate = cfg.dropout;
    this.sampleShape = [cfg.imageSize, cfg.imageSize, cfg.numChannels];
    const p = this.params;
    const { nf, chMult, numResBlocks, numChannels: channels, initScale, skipRescale, fir, firKernel } = cfg;
    const numRes = chMult.length;
    const allRes = chMult.map((_, i) => Math.floor(cfg.imageSize / 2 ** i));
    const modules: Mod[] = [];
    const prefix = () => `all_modules.${modules.length}`;
    const rescale = (h: tf.Tensor) => (skipRescale ? tf.div(h, Math.SQRT2) : h);

    // ---- parameter builders (reference layouts transposed to tfjs'; default_init = fan-avg uniform) -------------
    const convW = (name: string, k: number, cin: number, cout: number, scale: number) =>
      p.add(name, [k, k, cin, cout], varianceScalingInit(scale, k * k * cin, k * k * cout)) as tf.Variable<tf.Rank.R4>;
    const zeros = (name: string, c: number) => p.add(name, [c], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>;
    /** layers.ddpm_conv3x3 / ddpm_conv1x1: nn.Conv2d with default_init(init_scale), zero bias. */
    const conv = (
      name: string,
      k: number,
      cin: number,
      cout: number,
      opts: { scale?: number; stride?: number } = {},
    ) => {
      const w = convW(`${name}.weight`, k, cin, cout, opts.scale ?? 1);
      const b = zeros(`${name}.bias`, cout);
      const stride = opts.stride ?? 1;
      // stride 2 is only used after the reference's explicit F.pad(0, 1, 0, 1): 'valid' then.
      return (h: tf.Tensor4D) => tf.add(tf.conv2d(h, w, stride, stride === 1 ? 'same' : 'valid'), b) as tf.Tensor4D;
    };
    const linear = (name: string, cin: number, cout: number) => {
      const w = p.add(`${name}.weight`, [cin, cout], varianceScalingInit(1, cin, cout)) as tf.Variable<tf.Rank.R2>;
      const b = zeros(`${name}.bias`, cout);
      return (h: tf.Tensor2D) => dense(h, w, b);
    };
    /** layers.NIN: a per-pixel dense layer, W [in, out] as stored by the reference. */
    const nin = (name: string, cin: number, cout: number, scale = 0.1) => {
      const w = p.add(`${name}.W`, [cin, cout], varianceScalingInit(scale, cin, cout)) as tf.Variable<tf.Rank.R2>;
      const b = zeros(`${name}.b`, cout);
      return (h: tf.Tensor4D) => dense(h, w, b);
    };
    /** nn.GroupNorm(min(C // 4, 32), C, eps=1e-6), as every NCSN++ norm. */
    const gn = (name: string, c: number) => {
      const groups = Math.min(Math.floor(c / 4), 32);
      if (groups < 1 || c % groups !== 0) {
        throw new SbmError(
          'INVALID_ARGUMENT',
          `model: ${name} has ${c} channels, which min(C/4, 32) = ${groups} groups cannot split`,
          {
            argument: 'model.nf',
          },
        );
      }
      const g = p.add(`${name}.weight`, [c], { kind: 'ones' }) as tf.Variable<tf.Rank.R1>;
      const b = zeros(`${name}.bias`, c);
      return (h: tf.Tensor4D) => groupNorm(h, groups, g, b, 1e-6);
    };
    /** up_or_down_sampling.Conv2d (FIR up/down conv, default_init, bias). */
    const firConv = (name: string, cin: number, cout: number, mode: 'up' | 'down') => {
      const w = convW(`${name}.weight`, 3, cin, cout, 1);
      const b = zeros(`${name}.bias`, cout);
      return (h: tf.Tensor4D) =>
        tf.add(mode === 'up' ? upsampleConv2d(h, w, firKernel) : convDownsample2d(h, w, firKernel), b) as tf.Tensor4D;
    };

    // ---- the reference's modules ---------------------------------------------------------------------------------
    /** layerspp.Upsample. Without FIR: nearest ×2 (the reference passes 'nearest' as scale_factor and raises). */
    const upsample = (cin: number, cout: number, withConv: boolean): Mod => {
      const pre = prefix();
      if (!fir) {
        const c = withConv ? conv(`${pre}.Conv_0`, 3, cin, cout) : undefined;
        return ([x]) => {
          const h = upsampleNearest2x(x as tf.Tensor4D);
          return c ? c(h) : h;
        };
      }
      const c = withConv ? firConv(`${pre}.Conv2d_0`, cin, cout, 'up') : undefined;
      return ([x]) => (c ? c(x as tf.Tensor4D) : firUpsample2d(x as tf.Tensor4D, firKernel));
    };
    /** layerspp.Downsample. */
    const downsample = (cin: number, cout: number, withConv: boolean): Mod => {
      const pre = prefix();
      if (!fir) {
        const c = withConv ? conv(`${pre}.Conv_0`, 3, cin, cout, { stride: 2 }) : undefined;
        return ([x]) => {
          if (!c) return avgPool2x(x as tf.Tensor4D);
          const padded = tf.pad(x, [
            [0, 0],
            [0, 1],
            [0, 1],
            [0, 0],
          ]) as tf.Tensor4D;
          return c(padded);
        };
      }
      const c = withConv ? firConv(`${pre}.Conv2d_0`, cin, cout, 'down') : undefined;
      return ([x]) => (c ? c(x as tf.Tensor4D) : firDownsample2d(x as tf.Tensor4D, firKernel));
    };
    /** layerspp.ResnetBlockDDPMpp / ResnetBlockBigGANpp. */
    const resBlock = (cin: number, coutOpt?: number, mode: 'none' | 'up' | 'down' = 'none'): Mod => {
      const pre = prefix();
      const cout = coutOpt ?? cin;
      const n0 = gn(`${pre}.GroupNorm_0`, cin);
      const c0 = conv(`${pre}.Conv_0`, 3, cin, cout);
      // NCSNpp always passes temb_dim = 4·nf, so Dense_0 exists even when the model is unconditional.
      const d0 = linear(`${pre}.Dense_0`, 4 * nf, cout);
      const n1 = gn(`${pre}.GroupNorm_1`, cout);
      const c1 = conv(`${pre}.Conv_1`, 3, cout, cout, { scale: initScale });
      const biggan = cfg.resblockType === 'biggan';
      let shortcut: ((h: tf.Tensor4D) => tf.Tensor4D) | undefined;
      if (biggan && (cin !== cout || mode !== 'none')) shortcut = conv(`${pre}.Conv_2`, 1, cin, cout);
      // ResnetBlockDDPMpp is built with conv_shortcut=False by NCSNpp: a NIN shortcut.
      if (!biggan && cin !== cout) shortcut = nin(`${pre}.NIN_0`, cin, cout);
      const resample = (h: tf.Tensor4D): tf.Tensor4D => {
        if (mode === 'up') return fir ? firUpsample2d(h, firKernel) : upsampleNearest2x(h);
        if (mode === 'down') return fir ? firDownsample2d(h, firKernel) : avgPool2x(h);
        return h;
      };
      return ([xIn], temb, ctx) => {
        let x = xIn as tf.Tensor4D;
        let h = swish(n0(x));
        if (mode !== 'none') {
          h = resample(h);
          x = resample(x);
        }
        h = c0(h);
        if (temb) h = tf.add(h, tf.reshape(d0(swish(temb)), [-1, 1, 1, cout]));
        h = swish(n1(h));
        if (ctx.training && cfg.dropout > 0) h = dropout(h, cfg.dropout, ctx.nextSeed());
        h = c1(h);
        if (shortcut) x = shortcut(x);
        return rescale(tf.add(x, h));
      };
    };
    /** layerspp.AttnBlockpp: self-attention over all H·W positions with NIN projections. */
    const attn = (c: number): Mod => {
      const pre = prefix();
      const n = gn(`${pre}.GroupNorm_0`, c);
      const q = nin(`${pre}.NIN_0`, c, c);
      const k = nin(`${pre}.NIN_1`, c, c);
      const v = nin(`${pre}.NIN_2`, c, c);
      const o = nin(`${pre}.NIN_3`, c, c, initScale);
      return ([xIn]) => {
        const x = xIn as tf.Tensor4D;
        const [B, H, W] = x.shape;
        const h = n(x);
        const flat = (t: tf.Tensor4D) => tf.reshape(t, [B, H * W, c]) as tf.Tensor3D;
        const w = tf.softmax(tf.mul(tf.matMul(flat(q(h)), flat(k(h)), false, true), 1 / Math.sqrt(c)));
        const a = o(tf.reshape(tf.matMul(w as tf.Tensor3D, flat(v(h))), [B, H, W, c]) as tf.Tensor4D);
        return rescale(tf.add(x, a));
      };
    };
    /** layerspp.Combine: 1×1 conv of the pyramid, then concatenated with or added to h. */
    const combine = (dim1: number, dim2: number): Mod => {
      const c = conv(`${prefix()}.Conv`, 1, dim1, dim2);
      return ([x, y]) => {
        const h = c(x as tf.Tensor4D);
        return cfg.progressiveCombine === 'cat' ? tf.concat([h, y], 3) : tf.add(h, y);
      };
    };
    const add = (make: () => Mod) => modules.push(make());

    // ---- construction, in NCSNpp.__init__ order --------------------------------------------------------------------
    let embedW: tf.Variable | undefined;
    if (cfg.embeddingType === 'fourier') {
      // layerspp.GaussianFourierProjection(embedding_size=nf): W ~ N(0, scale²), requires_grad=False.
      embedW = p.add(`${prefix()}.W`, [nf], { kind: 'normal', std: cfg.fourierScale }, false);
      const W = embedW as tf.Variable<tf.Rank.R1>;
      modules.push(([x]) => gaussianFourierProjection(x as tf.Tensor1D, W));
    }
    const embedDim = cfg.embeddingType === 'fourier' ? 2 * nf : nf;
    if (cfg.conditional) {
      add(() => {
        const l = linear(prefix(), embedDim, 4 * nf);
        return ([x]) => l(x as tf.Tensor2D);
      });
      add(() => {
        const l = linear(prefix(), 4 * nf, 4 * nf);
        return ([x]) => l(x as tf.Tensor2D);
      });
    }
    const cIn = conv(prefix(), 3, channels, nf);
    modules.push(([x]) => cIn(x as tf.Tensor4D));
    const hsC = [nf];
    let inCh = nf;
    let inputPyramidCh = channels;
    const pi = cfg.progressiveInput;
    for (let i = 0; i < numRes; i++) {
      for (let j = 0; j < numResBlocks; j++) {
        const outCh = nf * chMult[i];
        add(() => resBlock(inCh, outCh));
        inCh = outCh;
        if (cfg.attnResolutions.includes(allRes[i])) add(() => attn(inCh));
        hsC.push(inCh);
      }
      if (i !== numRes - 1) {
        if (cfg.resblockType === 'ddpm') add(() => downsample(inCh, inCh, cfg.resampWithConv));
        else add(() => resBlock(inCh, inCh, 'down'));
        if (pi === 'input_skip') {
          add(() => downsample(inputPyramidCh, inputPyramidCh, false));
          add(() => combine(inputPyramidCh, inCh));
          if (cfg.progressiveCombine === 'cat') inCh *= 2;
        } else if (pi === 'residual') {
          add(() => downsample(inputPyramidCh, inCh, true));
          inputPyramidCh = inCh;
        }
        hsC.push(inCh);
      }
    }
    inCh = hsC[hsC.length - 1];
    add(() => resBlock(inCh));
    add(() => attn(inCh));
    add(() => resBlock(inCh));
    let pyramidCh = 0;
    const pr = cfg.progressive;
    for (let i = numRes - 1; i >= 0; i--) {
      for (let j = 0; j <= numResBlocks; j++) {
        const outCh = nf * chMult[i];
        add(() => resBlock(inCh + hsC.pop()!, outCh));
        inCh = outCh;
      }
      if (cfg.attnResolutions.includes(allRes[i])) add(() => attn(inCh));
      if (pr !== 'none') {
        if (i === numRes - 1) {
          add(() => {
            const n = gn(prefix(), inCh);
            return ([x]) => n(x as tf.Tensor4D);
          });
          const outC = pr === 'output_skip' ? channels : inCh;
          add(() => {
            const c = conv(prefix(), 3, inCh, outC, { scale: pr === 'output_skip' ? initScale : 1 });
            return ([x]) => c(x as tf.Tensor4D);
          });
          pyramidCh = outC;
        } else if (pr === 'output_skip') {
          add(() => upsample(pyramidCh, pyramidCh, false));
          add(() => {
            const n = gn(prefix(), inCh);
            return ([x]) => n(x as tf.Tensor4D);
          });
          add(() => {
            const c = conv(prefix(), 3, inCh, channels, { scale: initScale });
            return ([x]) => c(x as tf.Tensor4D);
          });
          pyramidCh = channels;
        } else {
          add(() => upsample(pyramidCh, inCh, true));
          pyramidCh = inCh;
        }
      }
      if (i !== 0) {
        if (cfg.resblockType === 'ddpm') add(() => upsample(inCh, inCh, cfg.resampWithConv));
        else add(() => resBlock(inCh, inCh, 'up'));
      }
    }
    if (pr !== 'output_skip') {
      add(() => {
        const n = gn(prefix(), inCh);
        return ([x]) => n(x as tf.Tensor4D);
      });
      add(() => {
        const c = conv(prefix(), 3, inCh, channels, { scale: initScale });
        return ([x]) => c(x as tf.Tensor4D);
      });
    }
    this.moduleCount = modules.length;

    // ---- forward, in NCSNpp.forward order ---------------------------------------------------------------------------
    const logSigmaMax = Math.log(cfg.sigmaMax);
    const logStep = (Math.log(cfg.sigmaMin) - logSigmaMax) / (cfg.numScales - 1);
    this.run = (xIn, cond, ctx, trace) => {
      let m = 0;
      const call = (inputs: tf.Tensor[], temb?: tf.Tensor2D): tf.Tensor => {
        const out = modules[m](inputs, temb, ctx);
        trace?.(m, out);
        m++;
        return out;
      };
      let temb: tf.Tensor2D | undefined;
      let usedSigmas: tf.Tensor1D;
      if (cfg.embeddingType === 'fourier') {
        usedSigmas = cond;
        temb = call([tf.log(cond)]) as tf.Tensor2D;
      } else {
        // utils.get_sigmas()[time_cond.int()]: the σ grid looked up at the truncated label.
        const idx = tf.clipByValue(tf.floor(cond), 0, cfg.numScales - 1);
        usedSigmas = tf.exp(tf.add(logSigmaMax, tf.mul(idx, logStep))) as tf.Tensor1D;
        temb = sinusoidalEmbedding(cond, nf);
      }
      if (cfg.conditional) {
        temb = call([temb]) as tf.Tensor2D;
        temb = call([swish(temb)]) as tf.Tensor2D;
      } else {
        temb = undefined;
      }
      const x: tf.Tensor4D = cfg.centered ? xIn : (tf.sub(tf.mul(xIn, 2), 1) as tf.Tensor4D);
      let inputPyramid: tf.Tensor4D | undefined = pi !== 'none' ? x : undefined;
      const hs: tf.Tensor4D[] = [call([x]) as tf.Tensor4D];
      let h: tf.Tensor4D;
      for (let i = 0; i < numRes; i++) {
        for (let j = 0; j < numResBlocks; j++) {
          h = call([hs[hs.length - 1]], temb) as tf.Tensor4D;
          if (cfg.attnResolutions.includes(h.shape[2])) h = call([h]) as tf.Tensor4D;
          hs.push(h);
        }
        if (i !== numRes - 1) {
          h = call([hs[hs.length - 1]], temb) as tf.Tensor4D;
          if (pi === 'input_skip') {
            inputPyramid = call([inputPyramid!]) as tf.Tensor4D;
            h = call([inputPyramid, h]) as tf.Tensor4D;
          } else if (pi === 'residual') {
            inputPyramid = rescale(tf.add(call([inputPyramid!]), h)) as tf.Tensor4D;
            h = inputPyramid;
          }
          hs.push(h);
        }
      }
      h = hs[hs.length - 1];
      h = call([h], temb) as tf.Tensor4D;
      h = call([h]) as tf.Tensor4D;
      h = call([h], temb) as tf.Tensor4D;
      let pyramid: tf.Tensor4D | undefined;
      for (let i = numRes - 1; i >= 0; i--) {
        for (let j = 0; j <= numResBlocks; j++) h = call([tf.concat([h, hs.pop()!], 3)], temb) as tf.Tensor4D;
        if (cfg.attnResolutions.includes(h.shape[2])) h = call([h]) as tf.Tensor4D;
        if (pr !== 'none') {
          if (i === numRes - 1) {
            pyramid = call([swish(call([h]))]) as tf.Tensor4D;
          } else if (pr === 'output_skip') {
            const up = call([pyramid!]) as tf.Tensor4D;
            const ph = call([swish(call([h]))]) as tf.Tensor4D;
            pyramid = tf.add(up, ph) as tf.Tensor4D;
          } else {
            pyramid = rescale(tf.add(call([pyramid!]), h)) as tf.Tensor4D;
            h = pyramid;
          }
        }
        if (i !== 0) h = call([h], temb) as tf.Tensor4D;
      }
      if (pr === 'output_skip') h = pyramid!;
      else h = call([swish(call([h]))]) as tf.Tensor4D;
      if (cfg.scaleBySigma) h = tf.div(h, tf.reshape(usedSigmas, [-1, 1, 1, 1]));
      return h;
    };
  }

  protected forward(x: tf.Tensor, cond: tf.Tensor1D, ctx: ForwardContext): tf.Tensor {
    return this.run(x as tf.Tensor4D, cond, ctx);
  }

  /**
   * The forward pass (inference mode) plus the output of every `all_modules` entry, indexed as the reference's
   * list, NHWC for images: for layer-by-layer comparison with a reference model.
   */
  applyWithActivations(x: tf.Tensor, cond: tf.Tensor1D): { output: tf.Tensor; activations: tf.Tensor[] } {
    if (this.isDisposed) throw new SbmError('INVALID_ARGUMENT', `model: this ${this.name} model has been disposed`);
    checkTensor(x, 'x', [null, ...this.sampleShape]);
    checkTensor(cond, 'cond', [x.shape[0]]);
    return tf.tidy(() => {
      const activations: tf.Tensor[] = [];
      const output = this.run(x as tf.Tensor4D, cond, { training: false, nextSeed: () => 0 }, (i, t) => {
        if (activations[i] === undefined) activations[i] = t;
      });
      return { output, activations };
    });
  }
}
