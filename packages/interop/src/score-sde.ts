import * as tf from '@tensorflow/tfjs';
import { SbmError, describeValue } from '@sbm/core';
import { ScoreSdeNcsnpp, type ScoreSdeNcsnppConfig } from '@sbm/models';
import { SubVpSde, VeSde, VpSde, isVeSde, type ScoreFn, type Sde } from '@sbm/sde';
import { decodeSafetensors, encodeSafetensors, encodeSafetensorsAsync } from '@sbm/safetensors';
import { isTorchTensor, pyGet, readPth, type TorchTensor } from './pth';

/** A score_sde / score_sde_pytorch config as ml_collections' `to_json()` writes it (training / data / model). */
export interface ReferenceConfig {
  training?: { sde?: string; continuous?: boolean; [k: string]: unknown };
  data?: { image_size?: number; num_channels?: number; centered?: boolean; [k: string]: unknown };
  model?: { name?: string; [k: string]: unknown };
  /** The SDE name when `training.sde` is absent ('vesde' | 'vpsde' | 'subvpsde'). */
  sde?: string;
  [k: string]: unknown;
}

/** The sbm side of a reference config: a model config for `modelFromConfig` and an SDE config for `createSde`. */
export interface ScoreSdeConfigs {
  model: ScoreSdeNcsnppConfig;
  sde:
    | { name: 've'; sigmaMin: number; sigmaMax: number; N: number }
    | { name: 'vp' | 'subvp'; betaMin: number; betaMax: number; N: number };
  /** Data range the score function takes: [0, 1], or [−1, 1] with `data.centered`. */
  dataRange: [number, number];
}

function bad(key: string, expected: string, got: unknown): SbmError {
  return new SbmError('UNSUPPORTED', `config.${key}: expected ${expected}, got ${describeValue(got)}`, {
    argument: `config.${key}`,
    received: got,
  });
}

function want<T>(
  section: Record<string, unknown>,
  sec: string,
  key: string,
  check: (v: unknown) => boolean,
  expected: string,
): T {
  const v = section[key];
  if (!check(v)) throw bad(`${sec}.${key}`, expected, v);
  return v as T;
}

const isInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown) => typeof v === 'boolean';
const isIntList = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isInteger(x));
const oneOf = (xs: string[]) => (v: unknown) => typeof v === 'string' && xs.includes(v.toLowerCase());

/**
 * Translates a reference config into sbm's model + SDE configs. Only what score_sde_pytorch's `NCSNpp`
 * (models/ncsnpp.py) and continuous training support is accepted; anything else is an error naming the key.
 */
export function configFromReference(config: ReferenceConfig): ScoreSdeConfigs {
  if (config === null || typeof config !== 'object') throw bad('', 'a score_sde config object', config);
  const model = (config.model ?? {}) as Record<string, unknown>;
  const data = (config.data ?? {}) as Record<string, unknown>;
  const training = (config.training ?? {}) as Record<string, unknown>;
  want(model, 'model', 'name', (v) => v === 'ncsnpp', '"ncsnpp" (the only reference model sbm imports)');
  want(model, 'model', 'normalization', (v) => v === undefined || v === 'GroupNorm', '"GroupNorm"');
  want(model, 'model', 'nonlinearity', (v) => v === undefined || v === 'swish', '"swish"');
  want(model, 'model', 'attention_type', (v) => v === undefined || v === 'ddpm', '"ddpm"');
  want(model, 'model', 'conv_size', (v) => v === undefined || v === 3, '3');
  if (training.continuous === false) {
    throw bad('training.continuous', 'true (sbm imports continuous-time score models)', false);
  }
  const sdeName = (training.sde ?? config.sde) as unknown;
  if (!oneOf(['vesde', 'vpsde', 'subvpsde'])(sdeName))
    throw bad('training.sde', '"vesde", "vpsde" or "subvpsde"', sdeName);
  const N = (model.num_scales as number) ?? 1000;
  const sigmaMin = want<number>(model, 'model', 'sigma_min', (v) => v === undefined || isNum(v), 'a number') ?? 0.01;
  const sigmaMax = want<number>(model, 'model', 'sigma_max', (v) => v === undefined || isNum(v), 'a number') ?? 50;
  const betaMin = want<number>(model, 'model', 'beta_min', (v) => v === undefined || isNum(v), 'a number') ?? 0.1;
  const betaMax = want<number>(model, 'model', 'beta_max', (v) => v === undefined || isNum(v), 'a number') ?? 20;
  const lower = (k: string, xs: string[]) =>
    (want<string>(model, 'model', k, oneOf(xs), xs.map((x) => `"${x}"`).join(' or ')) as string).toLowerCase();
  const centered = want<boolean>(data, 'data', 'centered', isBool, 'true or false');
  const m: ScoreSdeNcsnppConfig = {
    name: 'score-sde-ncsnpp',
    imageSize: want(data, 'data', 'image_size', isInt, 'a positive integer'),
    numChannels: want(data, 'data', 'num_channels', isInt, 'a positive integer'),
    centered,
    nf: want(model, 'model', 'nf', isInt, 'a positive integer'),
    chMult: want(model, 'model', 'ch_mult', isIntList, 'a list of integers'),
    numResBlocks: want(model, 'model', 'num_res_blocks', isInt, 'a positive integer'),
    attnResolutions: want(model, 'model', 'attn_resolutions', isIntList, 'a list of integers'),
    dropout: want(model, 'model', 'dropout', isNum, 'a number'),
    resampWithConv: want(model, 'model', 'resamp_with_conv', isBool, 'true or false'),
    conditional: want(model, 'model', 'conditional', isBool, 'true or false'),
    fir: want(model, 'model', 'fir', isBool, 'true or false'),
    firKernel: want(model, 'model', 'fir_kernel', isIntList, 'a list of integers'),
    skipRescale: want(model, 'model', 'skip_rescale', isBool, 'true or false'),
    resblockType: lower('resblock_type', ['biggan', 'ddpm']) as 'biggan' | 'ddpm',
    progressive: lower('progressive', ['none', 'output_skip', 'residual']) as ScoreSdeNcsnppConfig['progressive'],
    progressiveInput: lower('progressive_input', [
      'none',
      'input_skip',
      'residual',
    ]) as ScoreSdeNcsnppConfig['progressiveInput'],
    progressiveCombine: lower('progressive_combine', ['sum', 'cat']) as 'sum' | 'cat',
    initScale: want(model, 'model', 'init_scale', isNum, 'a number'),
    fourierScale: want(model, 'model', 'fourier_scale', isNum, 'a number'),
    embeddingType: lower('embedding_type', ['fourier', 'positional']) as 'fourier' | 'positional',
    scaleBySigma: want(model, 'model', 'scale_by_sigma', isBool, 'true or false'),
    sigmaMin,
    sigmaMax,
    numScales: N,
  };
  const s = (sdeName as string).toLowerCase();
  const sde: ScoreSdeConfigs['sde'] =
    s === 'vesde'
      ? { name: 've', sigmaMin, sigmaMax, N }
      : { name: s === 'vpsde' ? 'vp' : 'subvp', betaMin, betaMax, N };
  return { model: m, sde, dataRange: centered ? [-1, 1] : [0, 1] };
}

/** A tensor of a reference state dict, whatever file it came from. */
interface SourceTensor {
  shape: readonly number[];
  toTensor(): tf.Tensor;
}

/** Reference (PyTorch) shape of an sbm weight: conv kernels HWIO → OIHW, Linear [in, out] → [out, in]. */
function torchLayout(name: string, shape: readonly number[]): { shape: number[]; perm?: number[]; back?: number[] } {
  // perm: reference → sbm (OIHW → HWIO); back: sbm → reference.
  if (shape.length === 4)
    return { shape: [shape[3], shape[2], shape[0], shape[1]], perm: [2, 3, 1, 0], back: [3, 2, 0, 1] };
  // NIN keeps W as [in, out] in the reference too (layers.NIN); Linear weights are (out, in).
  if (shape.length === 2 && name.endsWith('.weight'))
    return { shape: [shape[1], shape[0]], perm: [1, 0], back: [1, 0] };
  return { shape: [...shape] };
}

const BUFFERS = new Set(['sigmas']);

function mismatch(what: string, message: string, details: Record<string, unknown>): SbmError {
  return new SbmError('CONFIG_MISMATCH', `${what}: ${message}`, details);
}

/**
 * Copies a reference state dict (names with or without `module.`) into the model: every weight must be there
 * with the reference's shape, nothing else may be (buffers such as `sigmas` excepted). With `shadow` (the EMA's
 * positional `shadow_params`), the trainable weights come from it, zipped in registration order, and only the
 * fixed ones (the Fourier W) from the state dict.
 */
export function loadReferenceWeights(
  model: ScoreSdeNcsnpp,
  stateDict: ReadonlyMap<string, SourceTensor>,
  opts: { shadow?: readonly SourceTensor[]; what?: string } = {},
): void {
  const what = opts.what ?? 'checkpoint';
  const byName = new Map<string, SourceTensor>();
  for (const [key, t] of stateDict) {
    const name = key.startsWith('module.') ? key.slice('module.'.length) : key;
    byName.set(name, t);
  }
  const own = model.getWeights();
  const ownNames = new Set(own.map((w) => w.name));
  const extra = [...byName.keys()].filter((n) => !ownNames.has(n) && !BUFFERS.has(n));
  if (extra.length > 0) {
    throw mismatch(what, `${extra.length} tensor(s) that this model does not have: ${extra.slice(0, 5).join(', ')}`, {
      extra,
    });
  }
  const trainable = own.filter((w) => w.trainable);
  if (opts.shadow && opts.shadow.length !== trainable.length) {
    throw mismatch(
      what,
      `ema.shadow_params: expected ${trainable.length} tensors (one per trainable parameter), got ${opts.shadow.length}`,
      { argument: 'ema.shadow_params' },
    );
  }
  const shadowOf = new Map(opts.shadow ? trainable.map((w, i) => [w.name, opts.shadow![i]]) : []);
  const out: { name: string; tensor: tf.Tensor }[] = [];
  try {
    for (const w of own) {
      const src = shadowOf.get(w.name) ?? byName.get(w.name);
      const label = shadowOf.has(w.name) ? `ema.shadow_params[${trainable.indexOf(w)}] (${w.name})` : w.name;
      if (!src) throw mismatch(what, `missing the tensor ${w.name}`, { missing: w.name });
      const ref = torchLayout(w.name, w.tensor.shape);
      if (src.shape.length !== ref.shape.length || src.shape.some((d, i) => d !== ref.shape[i])) {
        throw mismatch(what, `${label}: expected shape [${ref.shape.join(', ')}], got [${src.shape.join(', ')}]`, {
          name: w.name,
        });
      }
      const t = src.toTensor();
      out.push({ name: w.name, tensor: ref.perm ? tf.tidy(() => tf.transpose(t, ref.perm)) : t });
      if (ref.perm) t.dispose();
    }
    model.setWeights(out);
  } finally {
    tf.dispose(out.map((e) => e.tensor));
  }
}

export interface ImportScoreSdeOptions {
  /** A torch.save file (score_sde_pytorch checkpoint or a bare state dict) or a safetensors state dict. */
  checkpoint: Uint8Array;
  /** The reference config (config.json: training / data / model). */
  config: ReferenceConfig;
  /** 'ema' (default; what the reference samples with) or 'model' (the raw trained weights). */
  weights?: 'ema' | 'model';
}

export interface ImportedScoreSde {
  model: ScoreSdeNcsnpp;
  sde: Sde;
  /** The reference's score: mutils.get_score_fn(sde, model, train=False, continuous=True). x NHWC, t [B]. */
  scoreFn: ScoreFn;
  configs: ScoreSdeConfigs;
}

function asSource(t: TorchTensor): SourceTensor {
  return { shape: t.shape, toTensor: () => t.toTensor() };
}

function isZip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x50 && b[1] === 0x4b;
}

/**
 * Builds the reference's score function around a model (mutils.get_score_fn, continuous=True): VE gets σ(t)
 * labels and the model's output as it is; VP / sub-VP get 999·t and −output/std.
 *
 * The VP / sub-VP std is computed as sde_lib.VPSDE / subVPSDE.marginal_prob do, 1 − exp(2·log α) in float32,
 * not with @sbm/sde's expm1: near t = eps that subtraction loses about 1e-3 of std to rounding in the reference,
 * and the scores only agree with the reference's to 1e-4 if sbm rounds the same way.
 */
export function referenceScoreFn(model: ScoreSdeNcsnpp, sde: Sde, configs?: ScoreSdeConfigs): ScoreFn {
  const ve = isVeSde(sde);
  const c = configs?.sde;
  return (x, t) =>
    tf.tidy(() => {
      if (ve || !c || c.name === 've') {
        const { std } = sde.marginalProb(tf.zeros([t.shape[0], 1]), t);
        if (ve) return model.apply(x, std);
        const out = model.apply(x, tf.mul(t, 999) as tf.Tensor1D);
        return tf.neg(tf.div(out, tf.reshape(std, [-1, 1, 1, 1])));
      }
      const logMean = tf.sub(tf.mul(tf.square(t), -0.25 * (c.betaMax - c.betaMin)), tf.mul(t, 0.5 * c.betaMin));
      const oneMinus = tf.sub(1, tf.exp(tf.mul(logMean, 2)));
      const std = c.name === 'vp' ? tf.sqrt(oneMinus) : oneMinus;
      const out = model.apply(x, tf.mul(t, 999) as tf.Tensor1D);
      return tf.neg(tf.div(out, tf.reshape(std, [-1, 1, 1, 1])));
    });
}

/**
 * Loads a score_sde_pytorch checkpoint into sbm: the exact NCSN++ / DDPM++ model, its SDE and the reference's
 * score function, so samplers, likelihoods and inverse problems run on PyTorch-trained weights.
 */
export function importScoreSde(opts: ImportScoreSdeOptions): ImportedScoreSde {
  if (!(opts?.checkpoint instanceof Uint8Array)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `checkpoint: expected a Uint8Array, got ${describeValue(opts?.checkpoint)}`,
      {
        argument: 'checkpoint',
      },
    );
  }
  const weights = opts.weights ?? 'ema';
  if (weights !== 'ema' && weights !== 'model') {
    throw new SbmError('INVALID_ARGUMENT', `weights: expected "ema" or "model", got ${describeValue(weights)}`, {
      argument: 'weights',
    });
  }
  const configs = configFromReference(opts.config);
  const stateDict = new Map<string, SourceTensor>();
  let shadow: SourceTensor[] | undefined;
  let decoded: tf.Tensor[] = [];
  if (isZip(opts.checkpoint)) {
    const root = readPth(opts.checkpoint);
    const inner = pyGet(root, 'model');
    const sd = inner instanceof Map ? inner : root;
    if (!(sd instanceof Map)) throw new SbmError('CORRUPT_CHECKPOINT', 'checkpoint: the pickle is not a dict');
    for (const [k, v] of sd) if (typeof k === 'string' && isTorchTensor(v)) stateDict.set(k, asSource(v));
    if (weights === 'ema') {
      const list = pyGet(pyGet(root, 'ema'), 'shadow_params');
      if (!Array.isArray(list)) {
        throw new SbmError(
          'CONFIG_MISMATCH',
          'weights: "ema" needs a score_sde checkpoint with ema.shadow_params; this file has none (use weights: "model")',
          { argument: 'weights' },
        );
      }
      shadow = list.map((t, i) => {
        if (!isTorchTensor(t))
          throw new SbmError('CORRUPT_CHECKPOINT', `checkpoint: ema.shadow_params[${i}] is not a tensor`);
        return asSource(t);
      });
    }
  } else {
    if (weights === 'ema') {
      throw new SbmError(
        'CONFIG_MISMATCH',
        'weights: a safetensors state dict holds one set of weights; pass weights: "model"',
        {
          argument: 'weights',
        },
      );
    }
    const d = decodeSafetensors(opts.checkpoint);
    decoded = Object.values(d.tensors);
    for (const [k, t] of Object.entries(d.tensors)) stateDict.set(k, { shape: t.shape, toTensor: () => tf.clone(t) });
  }
  const model = new ScoreSdeNcsnpp(configs.model, 0);
  try {
    loadReferenceWeights(model, stateDict, { shadow, what: 'checkpoint' });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(decoded);
  }
  const sde: Sde =
    configs.sde.name === 've'
      ? new VeSde({ sigmaMin: configs.sde.sigmaMin, sigmaMax: configs.sde.sigmaMax, N: configs.sde.N })
      : configs.sde.name === 'vp'
        ? new VpSde({ betaMin: configs.sde.betaMin, betaMax: configs.sde.betaMax, N: configs.sde.N })
        : new SubVpSde({ betaMin: configs.sde.betaMin, betaMax: configs.sde.betaMax, N: configs.sde.N });
  return { model, sde, scoreFn: referenceScoreFn(model, sde, configs), configs };
}

/** The export's tensors (reference names and layouts, plus `sigmas`); the caller disposes them. */
function referenceTensors(model: ScoreSdeNcsnpp): { name: string; tensor: tf.Tensor }[] {
  const cfg = model.toConfig();
  const tensors: { name: string; tensor: tf.Tensor }[] = [];
  try {
    for (const w of model.getWeights()) {
      const ref = torchLayout(w.name, w.tensor.shape);
      tensors.push({ name: w.name, tensor: ref.back ? tf.transpose(w.tensor, ref.back) : tf.clone(w.tensor) });
    }
    // utils.get_sigmas: exp(linspace(log σ_max, log σ_min, num_scales)), a registered buffer of NCSNpp.
    const n = cfg.numScales ?? 1000;
    const lo = Math.log(cfg.sigmaMin ?? 0.01);
    const hi = Math.log(cfg.sigmaMax ?? 50);
    const sigmas = Float32Array.from({ length: n }, (_, i) => Math.exp(hi + ((lo - hi) * i) / (n - 1)));
    tensors.push({ name: 'sigmas', tensor: tf.tensor1d(sigmas) });
    return tensors;
  } catch (e) {
    tf.dispose(tensors.map((t) => t.tensor));
    throw e;
  }
}

const EXPORT_METADATA = { format: 'pt', source: 'sbm @sbm/interop exportScoreSde' };

/**
 * The model's weights under the reference's state-dict names and layouts (plus the `sigmas` buffer), as a
 * safetensors file that `NCSNpp(config).load_state_dict(safetensors.torch.load_file(f))` takes. Reads the weights
 * back synchronously; `exportScoreSdeAsync` does not block GPU backends.
 */
export function exportScoreSde(model: ScoreSdeNcsnpp): Uint8Array {
  const tensors = referenceTensors(model);
  try {
    return encodeSafetensors(tensors, EXPORT_METADATA);
  } finally {
    tf.dispose(tensors.map((e) => e.tensor));
  }
}

/** As exportScoreSde, reading the weights with `await tensor.data()`. */
export async function exportScoreSdeAsync(model: ScoreSdeNcsnpp): Promise<Uint8Array> {
  const tensors = referenceTensors(model);
  try {
    return await encodeSafetensorsAsync(tensors, EXPORT_METADATA);
  } finally {
    tf.dispose(tensors.map((e) => e.tensor));
  }
}
