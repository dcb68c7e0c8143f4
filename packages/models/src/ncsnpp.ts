import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, checkNumber, type SeedStream } from '@sbm/core';
import { divideByCond, makeEmbedding } from './conditioning';
import { avgPool2x, conv2d, dense, dropout, groupNorm, groupNormSwish, swish, upsampleNearest2x } from './layers';
import { ScoreModel, checkBool, checkIntList, checkKeys, type ForwardContext } from './model';
import { varianceScalingInit, type ParamStore } from './params';

export interface NcsnppConfig {
  name: 'ncsnpp';
  /** Height = width of the (square) images; must be divisible by 2^(len(chMult) − 1). Default 32. */
  imageSize?: number;
  /** Image channels (default 3). */
  imageChannels?: number;
  /** Base width (default 128). */
  nf?: number;
  /** Width multiplier per resolution (default [1, 2, 2, 2]; for 28×28 use three levels: 28 → 14 → 7). */
  chMult?: number[];
  /** Residual blocks per resolution (default 2). */
  numResBlocks?: number;
  /** Resolutions (widths) with self-attention (default [16]). */
  attnResolutions?: number[];
  /** Dropout rate inside residual blocks (default 0.1). */
  dropout?: number;
  /** 'biggan' (NCSN++/DDPM++: resampling inside residual blocks) or 'ddpm' (separate Down/Upsample). Default 'biggan'. */
  resblockType?: 'biggan' | 'ddpm';
  /** Divide residual sums by √2 (default true). */
  skipRescale?: boolean;
  /** Resample with a 3×3 conv in 'ddpm' blocks (default true). */
  resampleWithConv?: boolean;
  /** 'fourier' (embeds log cond, for VE where cond = σ) or 'positional' (embeds cond = 999·t). Default 'positional'. */
  embedding?: 'fourier' | 'positional';
  /** Std of the Fourier frequencies (default 16). */
  fourierScale?: number;
  /** Divide the output by cond = σ (score_sde scale_by_sigma, for VE; needs the Fourier embedding). Default false. */
  scaleBySigma?: boolean;
  /** Condition on the embedding at all (default true). */
  conditional?: boolean;
  /** Init scale of the last conv of each block and of the output conv (0 ⇒ 1e-10, score_sde's default). */
  initScale?: number;
  /** GroupNorm epsilon (score_sde 1e-6). */
  groupNormEps?: number;
  [key: string]: unknown;
}

const KEYS = [
  'imageSize',
  'imageChannels',
  'nf',
  'chMult',
  'numResBlocks',
  'attnResolutions',
  'dropout',
  'resblockType',
  'skipRescale',
  'resampleWithConv',
  'embedding',
  'fourierScale',
  'scaleBySigma',
  'conditional',
  'initScale',
  'groupNormEps',
];

type Norm = Required<NcsnppConfig>;

function normalize(cfg: NcsnppConfig): Norm {
  checkKeys(cfg, KEYS, 'ncsnpp');
  const out: Norm = {
    name: 'ncsnpp',
    imageSize: checkNumber(cfg.imageSize ?? 32, 'model.imageSize', { integer: true, min: 1 }),
    imageChannels: checkNumber(cfg.imageChannels ?? 3, 'model.imageChannels', { integer: true, min: 1 }),
    nf: checkNumber(cfg.nf ?? 128, 'model.nf', { integer: true, min: 4 }),
    chMult: checkIntList(cfg.chMult ?? [1, 2, 2, 2], 'model.chMult', { min: 1, nonEmpty: true }),
    numResBlocks: checkNumber(cfg.numResBlocks ?? 2, 'model.numResBlocks', { integer: true, min: 1 }),
    attnResolutions: checkIntList(cfg.attnResolutions ?? [16], 'model.attnResolutions', { min: 1 }),
    dropout: checkNumber(cfg.dropout ?? 0.1, 'model.dropout', { min: 0, lt: 1 }),
    resblockType: checkChoice(cfg.resblockType ?? 'biggan', 'model.resblockType', ['biggan', 'ddpm'] as const),
    skipRescale: checkBool(cfg.skipRescale ?? true, 'model.skipRescale'),
    resampleWithConv: checkBool(cfg.resampleWithConv ?? true, 'model.resampleWithConv'),
    embedding: checkChoice(cfg.embedding ?? 'positional', 'model.embedding', ['fourier', 'positional'] as const),
    fourierScale: checkNumber(cfg.fourierScale ?? 16, 'model.fourierScale', { gt: 0 }),
    scaleBySigma: checkBool(cfg.scaleBySigma ?? false, 'model.scaleBySigma'),
    conditional: checkBool(cfg.conditional ?? true, 'model.conditional'),
    initScale: checkNumber(cfg.initScale ?? 0, 'model.initScale', { min: 0 }),
    groupNormEps: checkNumber(cfg.groupNormEps ?? 1e-6, 'model.groupNormEps', { gt: 0 }),
  };
  const levels = out.chMult.length;
  if (out.imageSize % 2 ** (levels - 1) !== 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `model.imageSize: expected a multiple of 2^${levels - 1} = ${2 ** (levels - 1)} for ${levels} resolutions ` +
        `(model.chMult has ${levels} entries), got ${out.imageSize}; for 28×28 use 3 levels (28 → 14 → 7)`,
      { argument: 'model.imageSize' },
    );
  }
  if (out.scaleBySigma && out.embedding !== 'fourier') {
    // score_sde looks σ up on its discrete grid in that case (sigmas[int(time_cond)]); sbm conditions VP models
    // on 999·t, which is not σ.
    throw new SbmError(
      'INVALID_ARGUMENT',
      'model.scaleBySigma: expected false with the positional embedding (the conditioning input is then 999·t, not σ)',
      { argument: 'model.scaleBySigma' },
    );
  }
  return out;
}

/** score_sde's GroupNorm width rule: min(C/4, 32) groups; C must split evenly. */
function groupsFor(c: number, where: string): number {
  const g = Math.min(Math.floor(c / 4), 32);
  if (g < 1 || c % g !== 0) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `model: ${where} has ${c} channels, which min(C/4, 32) = ${g} GroupNorm groups cannot split; change nf or chMult`,
      { argument: 'model.nf' },
    );
  }
  return g;
}

type Block = (h: tf.Tensor4D, temb: tf.Tensor2D | undefined, ctx: ForwardContext) => tf.Tensor4D;

/** Builders of score_sde's layerspp modules over one ParamStore. */
class Builder {
  constructor(
    private readonly p: ParamStore,
    private readonly cfg: Norm,
  ) {}

  private kernel(name: string, k: number, cin: number, cout: number, scale = 1): tf.Variable<tf.Rank.R4> {
    return this.p.add(
      name,
      [k, k, cin, cout],
      varianceScalingInit(scale, k * k * cin, k * k * cout),
    ) as tf.Variable<tf.Rank.R4>;
  }
  private zeros(name: string, c: number): tf.Variable<tf.Rank.R1> {
    return this.p.add(name, [c], { kind: 'zeros' }) as tf.Variable<tf.Rank.R1>;
  }

  conv(name: string, k: number, cin: number, cout: number, stride = 1, scale = 1): (h: tf.Tensor4D) => tf.Tensor4D {
    const w = this.kernel(`${name}/kernel`, k, cin, cout, scale);
    const b = this.zeros(`${name}/bias`, cout);
    return (h) => conv2d(h, w, b, stride, 'same');
  }

  linear(name: string, cin: number, cout: number, scale = 1): <T extends tf.Tensor>(h: T) => T {
    const w = this.p.add(
      `${name}/kernel`,
      [cin, cout],
      varianceScalingInit(scale, cin, cout),
    ) as tf.Variable<tf.Rank.R2>;
    const b = this.zeros(`${name}/bias`, cout);
    return (h) => dense(h, w, b);
  }

  norm(name: string, c: number): (h: tf.Tensor4D) => tf.Tensor4D {
    const groups = groupsFor(c, name);
    const gamma = this.p.add(`${name}/gamma`, [c], { kind: 'ones' }) as tf.Variable<tf.Rank.R1>;
    const beta = this.zeros(`${name}/beta`, c);
    return (h) => groupNorm(h, groups, gamma, beta, this.cfg.groupNormEps);
  }

  /** swish(GroupNorm(h + bias)), one fused kernel where the backend has it; the same parameters as `norm`. */
  normSwish(name: string, c: number): (h: tf.Tensor4D, bias?: tf.Tensor) => tf.Tensor4D {
    const groups = groupsFor(c, name);
    const gamma = this.p.add(`${name}/gamma`, [c], { kind: 'ones' }) as tf.Variable<tf.Rank.R1>;
    const beta = this.zeros(`${name}/beta`, c);
    return (h, bias) => groupNormSwish(h, groups, gamma, beta, this.cfg.groupNormEps, bias);
  }

  /** (x + h)/√2 with skip rescale (Karras et al. 2019-style variance preservation), x + h otherwise. */
  private combine(x: tf.Tensor4D, h: tf.Tensor4D): tf.Tensor4D {
    const s = tf.add(x, h) as tf.Tensor4D;
    return this.cfg.skipRescale ? (tf.mul(s, Math.SQRT1_2) as tf.Tensor4D) : s;
  }

  /**
   * Residual block (layerspp.ResnetBlockBigGANpp / ResnetBlockDDPMpp): act(GN(x)) → [resample] → conv3×3 → + Dense(act(temb))
   * → act(GN) → dropout → conv3×3 (init_scale), plus a (1×1) shortcut when the shape changes.
   */
  resBlock(name: string, cin: number, cout: number, tembDim: number | undefined, mode: 'none' | 'up' | 'down'): Block {
    const cfg = this.cfg;
    const n0 = this.normSwish(`${name}/norm0`, cin);
    const c0 = this.conv(`${name}/conv0`, 3, cin, cout);
    const d0 = tembDim === undefined ? undefined : this.linear(`${name}/temb`, tembDim, cout);
    const n1 = this.normSwish(`${name}/norm1`, cout);
    const c1 = this.conv(`${name}/conv1`, 3, cout, cout, 1, cfg.initScale);
    let shortcut: ((x: tf.Tensor4D) => tf.Tensor4D) | undefined;
    if (cfg.resblockType === 'biggan' ? cin !== cout || mode !== 'none' : cin !== cout) {
      // BigGAN: conv1x1 (scale 1); DDPM: NIN, a per-pixel dense layer with init scale 0.1.
      shortcut =
        cfg.resblockType === 'biggan'
          ? this.conv(`${name}/shortcut`, 1, cin, cout)
          : this.linear(`${name}/nin`, cin, cout, 0.1);
    }
    const resample = mode === 'up' ? upsampleNearest2x : mode === 'down' ? avgPool2x : undefined;
    return (x, temb, ctx) => {
      let h = n0(x);
      if (resample) {
        h = resample(h);
        x = resample(x);
      }
      h = c0(h);
      // The time embedding is added before the norm: the fused kernel's bias input (GN(h + bias) as score_sde).
      h = n1(h, d0 && temb ? tf.reshape(d0(swish(temb)), [-1, 1, 1, cout]) : undefined);
      if (ctx.training && cfg.dropout > 0) h = dropout(h, cfg.dropout, ctx.nextSeed());
      h = c1(h);
      return this.combine(shortcut ? shortcut(x) : x, h);
    };
  }

  /** layerspp.AttnBlockpp: softmax(q kᵀ/√C) v over all H·W positions, NIN projections, residual. */
  attention(name: string, c: number): Block {
    const n = this.norm(`${name}/norm`, c);
    const [q, k, v] = ['q', 'k', 'v'].map((s) => this.linear(`${name}/${s}`, c, c, 0.1));
    const o = this.linear(`${name}/out`, c, c, this.cfg.initScale);
    return (x) => {
      const [B, H, W] = x.shape;
      const h = tf.reshape(n(x), [B, H * W, c]) as tf.Tensor3D;
      const w = tf.softmax(tf.mul(tf.matMul(q(h), k(h), false, true), 1 / Math.sqrt(c)));
      const a = tf.reshape(o(tf.matMul(w as tf.Tensor3D, v(h))), [B, H, W, c]) as tf.Tensor4D;
      return this.combine(x, a);
    };
  }

  /** layerspp.Downsample / Upsample (no FIR): stride-2 conv or 2×2 mean; nearest ×2 then optional conv. */
  resample(name: string, c: number, mode: 'up' | 'down'): Block {
    if (mode === 'down') {
      // tfjs 'same' padding at stride 2 on an even size pads one row/column at the bottom/right only: exactly
      // score_sde's F.pad(x, (0, 1, 0, 1)) followed by a valid stride-2 conv.
      if (this.cfg.resampleWithConv) {
        const conv = this.conv(`${name}/conv`, 3, c, c, 2);
        return (h) => conv(h);
      }
      return (h) => avgPool2x(h);
    }
    const conv = this.cfg.resampleWithConv ? this.conv(`${name}/conv`, 3, c, c) : undefined;
    return (h) => (conv ? conv(upsampleNearest2x(h)) : upsampleNearest2x(h));
  }
}

/**
 * An NCSN++ / DDPM++-style U-Net after score_sde's models/ncsnpp.py, NHWC, without FIR resampling and without the
 * progressive input/output pyramids (score_sde's `fir: false`, `progressive: 'none'`, `progressive_input: 'none'` —
 * the DDPM++ configuration). Residual blocks of BigGAN or DDPM type with GroupNorm(min(C/4, 32)), swish, dropout,
 * self-attention at `attnResolutions`, skip rescale 1/√2, and a Fourier (of log σ) or positional (of 999·t)
 * embedding through Dense(4·nf) → swish → Dense(4·nf). Initialization as score_sde (fan-avg uniform variance
 * scaling; output convs at init_scale). Inputs are expected centred (score_sde `data.centered`).
 */
export class NcsnppModel extends ScoreModel<NcsnppConfig> {
  readonly name = 'ncsnpp';
  readonly sampleShape: readonly number[];
  override readonly dropoutRate: number;
  private readonly run: (x: tf.Tensor4D, cond: tf.Tensor1D, ctx: ForwardContext) => tf.Tensor4D;

  constructor(config: NcsnppConfig = { name: 'ncsnpp' }, seed: number | SeedStream = 0) {
    const cfg = normalize(config);
    super(cfg, seed);
    this.dropoutRate = cfg.dropout;
    this.sampleShape = [cfg.imageSize, cfg.imageSize, cfg.imageChannels];
    const b = new Builder(this.params, cfg);
    const { nf, chMult, numResBlocks, imageChannels: C } = cfg;
    const levels = chMult.length;
    const res = chMult.map((_, i) => cfg.imageSize / 2 ** i);
    const useAttn = (i: number) => cfg.attnResolutions.includes(res[i]);

    const embDim = cfg.embedding === 'fourier' ? 2 * nf : nf;
    const embed = makeEmbedding(
      this.params,
      'temb/fourier',
      cfg.embedding === 'fourier'
        ? { type: 'fourier', dim: 2 * nf, scale: cfg.fourierScale, logInput: true }
        : { type: 'positional', dim: nf },
    );
    const tembDim = cfg.conditional ? 4 * nf : undefined;
    const t0 = cfg.conditional ? b.linear('temb/dense0', embDim, 4 * nf) : undefined;
    const t1 = cfg.conditional ? b.linear('temb/dense1', 4 * nf, 4 * nf) : undefined;

    const convIn = b.conv('conv_in', 3, C, nf);
    const hsC = [nf];
    let inCh = nf;
    const down: { blocks: Block[]; attn: (Block | undefined)[]; resample?: Block }[] = [];
    for (let i = 0; i < levels; i++) {
      const stage: (typeof down)[number] = { blocks: [], attn: [] };
      for (let j = 0; j < numResBlocks; j++) {
        const outCh = nf * chMult[i];
        stage.blocks.push(b.resBlock(`down.${i}.res.${j}`, inCh, outCh, tembDim, 'none'));
        inCh = outCh;
        stage.attn.push(useAttn(i) ? b.attention(`down.${i}.attn.${j}`, inCh) : undefined);
        hsC.push(inCh);
      }
      if (i !== levels - 1) {
        stage.resample =
          cfg.resblockType === 'ddpm'
            ? b.resample(`down.${i}.downsample`, inCh, 'down')
            : b.resBlock(`down.${i}.downsample`, inCh, inCh, tembDim, 'down');
        hsC.push(inCh);
      }
      down.push(stage);
    }
    const mid = [
      b.resBlock('mid.res.0', inCh, inCh, tembDim, 'none'),
      b.attention('mid.attn', inCh),
      b.resBlock('mid.res.1', inCh, inCh, tembDim, 'none'),
    ];
    const up: { blocks: Block[]; attn?: Block; resample?: Block }[] = [];
    for (let i = levels - 1; i >= 0; i--) {
      const stage: (typeof up)[number] = { blocks: [] };
      for (let j = 0; j <= numResBlocks; j++) {
        const outCh = nf * chMult[i];
        stage.blocks.push(b.resBlock(`up.${i}.res.${j}`, inCh + hsC.pop()!, outCh, tembDim, 'none'));
        inCh = outCh;
      }
      if (useAttn(i)) stage.attn = b.attention(`up.${i}.attn`, inCh);
      if (i !== 0) {
        stage.resample =
          cfg.resblockType === 'ddpm'
            ? b.resample(`up.${i}.upsample`, inCh, 'up')
            : b.resBlock(`up.${i}.upsample`, inCh, inCh, tembDim, 'up');
      }
      up.push(stage);
    }
    const normOut = b.normSwish('norm_out', inCh);
    const convOut = b.conv('conv_out', 3, inCh, C, 1, cfg.initScale);

    this.run = (x, cond, ctx) => {
      let temb: tf.Tensor2D | undefined;
      if (t0 && t1) temb = t1(swish(t0(embed(cond))));
      const hs: tf.Tensor4D[] = [convIn(x)];
      for (const stage of down) {
        stage.blocks.forEach((block, j) => {
          let h = block(hs[hs.length - 1], temb, ctx);
          const attn = stage.attn[j];
          if (attn) h = attn(h, temb, ctx);
          hs.push(h);
        });
        if (stage.resample) hs.push(stage.resample(hs[hs.length - 1], temb, ctx));
      }
      let h = hs[hs.length - 1];
      for (const block of mid) h = block(h, temb, ctx);
      for (const stage of up) {
        for (const block of stage.blocks) h = block(tf.concat([h, hs.pop()!], 3) as tf.Tensor4D, temb, ctx);
        if (stage.attn) h = stage.attn(h, temb, ctx);
        if (stage.resample) h = stage.resample(h, temb, ctx);
      }
      let out: tf.Tensor4D = convOut(normOut(h));
      if (cfg.scaleBySigma) out = divideByCond(out, cond) as tf.Tensor4D;
      return out;
    };
  }

  protected forward(x: tf.Tensor, cond: tf.Tensor1D, ctx: ForwardContext): tf.Tensor {
    return this.run(x as tf.Tensor4D, cond, ctx);
  }
}
