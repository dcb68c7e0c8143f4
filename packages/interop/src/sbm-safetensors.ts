import * as tf from '@tensorflow/tfjs';
import { SbmError, checkDataRange, checkNumber, describeValue } from '@sbm/core';
import { ScoreModel, modelFromConfig, type ModelConfig } from '@sbm/models';
import { createSde, type SdeConfig } from '@sbm/sde';
import {
  decodeSafetensorsRaw,
  encodeSafetensors,
  encodeSafetensorsAsync,
  readSafetensorsHeader,
  type TensorEntry,
} from '@sbm/safetensors';
import { name as pkgName, version as pkgVersion } from '../package.json';

/**
 * The sbm model file: one safetensors file that holds a trained score model's weights under their sbm names (the
 * names of `model.getWeights()`, tfjs layouts) and, in `__metadata__`, everything needed to sample with it — the
 * model config (what `modelFromConfig` rebuilds, as an sbm checkpoint's config.json `model` field), the SDE config,
 * the data range and the training step. It is what a page fetches: no optimizer state, no second weight set.
 *
 * `__metadata__` is string → string (safetensors docs, "Format"), so structured values are JSON strings:
 *   sbm.format "sbm-model", sbm.formatVersion "1", sbm.layout "tfjs" (the key @sbm/training's importSafetensors
 *   reads, so that loader accepts these files too), sbm.model, sbm.sde, sbm.dataRange (JSON), sbm.step,
 *   sbm.weights ("ema" | "model"), sbm.dtype ("float16" | "float32"), sbm.createdBy; other keys are the caller's.
 */
export const SBM_MODEL_FORMAT = 'sbm-model';
export const SBM_MODEL_FORMAT_VERSION = 1;

export type SbmModelDtype = 'float16' | 'float32';

/** What the caller states about the weights; the model config comes from the model itself. */
export interface SbmModelMetadata {
  /** The SDE the model was trained under (plain JSON, as `createSde` takes it). */
  sde: SdeConfig;
  /** Range of the data the model was trained on, e.g. [0, 1] for MNIST in sbm; null for unbounded data (toy 2-D sets). */
  dataRange: readonly [number, number] | null;
  /** Training step the weights come from. */
  step: number;
  /** Which weights these are (default 'model'); a checkpoint's EMA weights are what one samples with. */
  weights?: 'ema' | 'model';
  /** Free-form strings stored alongside (keys must not start with "sbm."). */
  extra?: Record<string, string>;
}

export interface ExportSbmModelOptions {
  /**
   * Storage of the trainable weights (default 'float32'). 'float16' halves the file, rounding to nearest even.
   * Fixed weights (the Gaussian Fourier features `embed/fourier/W`) always stay float32: they are multiplied by t
   * and 2π before a sin/cos, so float16's relative error 2⁻¹¹ on |W| ≈ 3·30 would shift the phase by up to
   * 2π·90·2⁻¹¹ ≈ 0.3 rad at t = 1 — a different embedding, not a rounding — and they are a few hundred numbers.
   */
  dtype?: SbmModelDtype;
  metadata: SbmModelMetadata;
}

/** The header of an sbm model file, parsed. */
export interface SbmModelInfo {
  format: typeof SBM_MODEL_FORMAT;
  formatVersion: number;
  model: ModelConfig;
  sde: SdeConfig;
  dataRange: [number, number] | null;
  step: number;
  weights: 'ema' | 'model';
  dtype: SbmModelDtype;
  createdBy: string;
  /** The keys not written by this module. */
  extra: Record<string, string>;
  /** Tensor names in the file with their shapes and stored dtypes. */
  tensors: Record<string, { dtype: string; shape: number[] }>;
}

export interface LoadedSbmModel {
  /** Rebuilt through the @sbm/models registry, holding the file's weights. The caller disposes it. */
  model: ScoreModel;
  /** The SDE config to pass to `createSde` (not instantiated here: a plugin SDE may be registered later). */
  sde: SdeConfig;
  metadata: SbmModelInfo;
}

const HALF_MAX = 65504;

function corrupt(what: string, details: Record<string, unknown> = {}): SbmError {
  return new SbmError('CORRUPT_CHECKPOINT', `sbm model file: ${what}`, { format: SBM_MODEL_FORMAT, ...details });
}

function checkOptions(
  model: unknown,
  opts: unknown,
  fn: string,
): { dtype: SbmModelDtype; meta: Record<string, string> } {
  if (!(model instanceof ScoreModel)) {
    throw new SbmError('INVALID_ARGUMENT', `${fn}: model: expected a ScoreModel, got ${describeValue(model)}`, {
      argument: 'model',
    });
  }
  if (opts === null || typeof opts !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: options: expected { dtype?, metadata }, got ${describeValue(opts)}`,
      {
        argument: 'options',
      },
    );
  }
  const { dtype = 'float32', metadata } = opts as ExportSbmModelOptions;
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: dtype: expected "float16" or "float32", got ${describeValue(dtype)}`,
      {
        argument: 'dtype',
        received: dtype,
      },
    );
  }
  if (metadata === null || typeof metadata !== 'object') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: metadata: expected { sde, dataRange, step, weights?, extra? }, got ${describeValue(metadata)}`,
      { argument: 'metadata' },
    );
  }
  // Instantiating the SDE is the only complete check of its config (each SDE validates its own options).
  createSde(metadata.sde);
  const dataRange = metadata.dataRange === null ? null : checkDataRange(metadata.dataRange, 'metadata.dataRange');
  const step = checkNumber(metadata.step, 'metadata.step', { integer: true, min: 0 });
  const weights = metadata.weights ?? 'model';
  if (weights !== 'ema' && weights !== 'model') {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `${fn}: metadata.weights: expected "ema" or "model", got ${describeValue(weights)}`,
      { argument: 'metadata.weights' },
    );
  }
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata.extra ?? {})) {
    if (k.startsWith('sbm.') || typeof v !== 'string') {
      throw new SbmError(
        'INVALID_ARGUMENT',
        `${fn}: metadata.extra["${k}"]: expected a string under a key not starting with "sbm.", got ${describeValue(v)}`,
        { argument: `metadata.extra.${k}` },
      );
    }
    meta[k] = v;
  }
  Object.assign(meta, {
    'sbm.format': SBM_MODEL_FORMAT,
    'sbm.formatVersion': String(SBM_MODEL_FORMAT_VERSION),
    'sbm.layout': 'tfjs',
    'sbm.model': JSON.stringify((model as ScoreModel).toConfig()),
    'sbm.sde': JSON.stringify(metadata.sde),
    'sbm.dataRange': JSON.stringify(dataRange),
    'sbm.step': String(step),
    'sbm.weights': weights,
    'sbm.dtype': dtype,
    'sbm.createdBy': `${pkgName} ${pkgVersion}`,
  });
  return { dtype, meta };
}

function entriesOf(model: ScoreModel, dtype: SbmModelDtype): TensorEntry[] {
  return model.getWeights().map((w) => ({
    name: w.name,
    tensor: w.tensor,
    dtype: dtype === 'float16' && w.trainable ? 'F16' : 'F32',
  }));
}

/** Float16 turns |w| > 65504 into ±Inf: refuse rather than write a model that outputs NaN. */
async function checkHalfRange(model: ScoreModel, dtype: SbmModelDtype, fn: string): Promise<void> {
  if (dtype !== 'float16') return;
  const maxes = model.getWeights().map((w) => ({ name: w.name, t: tf.tidy(() => tf.max(tf.abs(w.tensor))) }));
  try {
    const values = await Promise.all(maxes.map((m) => m.t.data()));
    values.forEach((v, i) => {
      if (!(v[0] <= HALF_MAX)) {
        throw new SbmError(
          'UNSUPPORTED',
          `${fn}: dtype: weight "${maxes[i].name}" has |w| up to ${v[0]}, beyond float16's ${HALF_MAX}; use dtype "float32"`,
          { argument: 'dtype', tensor: maxes[i].name },
        );
      }
    });
  } finally {
    tf.dispose(maxes.map((m) => m.t));
  }
}

/**
 * A model's weights and configs as an sbm model file (safetensors bytes). Synchronous: reads the weights with
 * dataSync, so use `exportSbmModelAsync` on a GPU backend. Non-finite results of float16 rounding are refused there;
 * here the float16 overflow check runs on the values as they are encoded.
 */
export function exportSbmModel(model: ScoreModel, opts: ExportSbmModelOptions): Uint8Array {
  const { dtype, meta } = checkOptions(model, opts, 'exportSbmModel');
  if (dtype === 'float16') {
    for (const w of model.getWeights()) {
      const m = tf.tidy(() => tf.max(tf.abs(w.tensor)));
      const v = m.dataSync()[0];
      m.dispose();
      if (!(v <= HALF_MAX)) {
        throw new SbmError(
          'UNSUPPORTED',
          `exportSbmModel: dtype: weight "${w.name}" has |w| up to ${v}, beyond float16's ${HALF_MAX}; use dtype "float32"`,
          { argument: 'dtype', tensor: w.name },
        );
      }
    }
  }
  return encodeSafetensors(entriesOf(model, dtype), meta);
}

/** `exportSbmModel` without synchronous readbacks (what a worker on webgl / webgpu calls). */
export async function exportSbmModelAsync(model: ScoreModel, opts: ExportSbmModelOptions): Promise<Uint8Array> {
  const { dtype, meta } = checkOptions(model, opts, 'exportSbmModelAsync');
  await checkHalfRange(model, dtype, 'exportSbmModelAsync');
  return encodeSafetensorsAsync(entriesOf(model, dtype), meta);
}

function parseJson(meta: Record<string, string>, key: string): unknown {
  const text = meta[key];
  if (text === undefined) throw corrupt(`__metadata__ has no "${key}"`, { key });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw corrupt(`__metadata__["${key}"] is not valid JSON (${e instanceof Error ? e.message : String(e)})`, { key });
  }
}

/**
 * Parses and checks the header of an sbm model file without touching the weights. A safetensors file that is not an
 * sbm model file (no `sbm.format`, e.g. a score_sde_pytorch export or a classifier) is CORRUPT_CHECKPOINT naming what
 * it found; a newer formatVersion is UNSUPPORTED; a malformed file is CORRUPT_CHECKPOINT from the safetensors reader.
 */
export function readSbmModelInfo(bytes: Uint8Array): SbmModelInfo {
  const header = readSafetensorsHeader(bytes);
  const meta = header.metadata;
  if (meta['sbm.format'] !== SBM_MODEL_FORMAT) {
    const seen = Object.keys(meta).slice(0, 5);
    throw corrupt(
      `expected __metadata__["sbm.format"] = "${SBM_MODEL_FORMAT}", got ${describeValue(meta['sbm.format'])} ` +
        `(metadata keys: ${seen.length ? seen.join(', ') : 'none'}); a safetensors file of another kind ` +
        '(score_sde_pytorch weights: importScoreSde; @sbm/training exportSafetensors: importSafetensors)',
      { received: meta['sbm.format'] },
    );
  }
  const version = Number(meta['sbm.formatVersion']);
  if (!Number.isInteger(version) || version < 1) {
    throw corrupt(`sbm.formatVersion: expected a positive integer, got ${describeValue(meta['sbm.formatVersion'])}`);
  }
  if (version > SBM_MODEL_FORMAT_VERSION) {
    throw new SbmError(
      'UNSUPPORTED',
      `sbm model file: formatVersion ${version} is newer than this reader's ${SBM_MODEL_FORMAT_VERSION} (upgrade @sbm/interop)`,
      { received: version, expected: SBM_MODEL_FORMAT_VERSION },
    );
  }
  if (meta['sbm.layout'] !== 'tfjs')
    throw corrupt(`sbm.layout: expected "tfjs", got ${describeValue(meta['sbm.layout'])}`);
  const model = parseJson(meta, 'sbm.model') as ModelConfig;
  if (model === null || typeof model !== 'object' || typeof model.name !== 'string') {
    throw corrupt(`sbm.model: expected a config { name: string, ... }, got ${describeValue(model)}`);
  }
  const sde = parseJson(meta, 'sbm.sde') as SdeConfig;
  if (sde === null || typeof sde !== 'object' || typeof sde.name !== 'string') {
    throw corrupt(`sbm.sde: expected a config { name: string, ... }, got ${describeValue(sde)}`);
  }
  let dataRange: [number, number] | null;
  const range = parseJson(meta, 'sbm.dataRange');
  try {
    dataRange = range === null ? null : checkDataRange(range, 'sbm.dataRange');
  } catch (e) {
    throw corrupt(e instanceof Error ? e.message : String(e), { key: 'sbm.dataRange' });
  }
  const step = Number(meta['sbm.step']);
  if (!Number.isSafeInteger(step) || step < 0) {
    throw corrupt(`sbm.step: expected a non-negative integer, got ${describeValue(meta['sbm.step'])}`);
  }
  const weights = meta['sbm.weights'];
  if (weights !== 'ema' && weights !== 'model') {
    throw corrupt(`sbm.weights: expected "ema" or "model", got ${describeValue(weights)}`);
  }
  const dtype = meta['sbm.dtype'];
  if (dtype !== 'float16' && dtype !== 'float32') {
    throw corrupt(`sbm.dtype: expected "float16" or "float32", got ${describeValue(dtype)}`);
  }
  const tensors: SbmModelInfo['tensors'] = {};
  for (const [name, t] of Object.entries(header.tensors)) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16') {
      throw corrupt(`tensor "${name}": expected dtype F32 or F16, got ${t.dtype}`, { tensor: name });
    }
    tensors[name] = { dtype: t.dtype, shape: t.shape };
  }
  const extra = Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith('sbm.')));
  return {
    format: SBM_MODEL_FORMAT,
    formatVersion: version,
    model,
    sde,
    dataRange,
    step,
    weights,
    dtype,
    createdBy: meta['sbm.createdBy'] ?? '',
    extra,
    tensors,
  };
}

/**
 * Reads an sbm model file: the model is rebuilt from its config through the @sbm/models registry (a plugin model
 * must be registered first, else UNKNOWN_NAME) and given the file's weights (float16 ones widened exactly to
 * float32). A file whose tensors do not match its own model config (missing, extra, wrong shape) or hold non-finite
 * values is CORRUPT_CHECKPOINT; nothing is left allocated when anything fails.
 */
export function loadSbmModel(bytes: Uint8Array): LoadedSbmModel {
  const metadata = readSbmModelInfo(bytes);
  const raw = decodeSafetensorsRaw(bytes);
  for (const [name, t] of Object.entries(raw.tensors)) {
    const v = t.values;
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]))
        throw corrupt(`tensor "${name}" holds a non-finite value at index ${i}`, { tensor: name });
    }
  }
  const model = modelFromConfig(metadata.model);
  const tensors: tf.NamedTensorMap = {};
  try {
    const own = new Map(model.getWeights().map((w) => [w.name, w.tensor.shape]));
    const missing = [...own.keys()].filter((n) => !(n in raw.tensors));
    const unknown = Object.keys(raw.tensors).filter((n) => !own.has(n));
    if (missing.length || unknown.length) {
      throw corrupt(
        `the tensors do not match the file's own ${metadata.model.name} config: ` +
          `${missing.length} missing (${missing.slice(0, 3).join(', ') || '-'}), ` +
          `${unknown.length} unknown (${unknown.slice(0, 3).join(', ') || '-'})`,
        { missing, unknown },
      );
    }
    for (const [name, t] of Object.entries(raw.tensors)) {
      const want = own.get(name)!;
      if (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i])) {
        throw corrupt(
          `tensor "${name}": expected shape [${want.join(', ')}] (the model config's), got [${t.shape.join(', ')}]`,
          {
            tensor: name,
          },
        );
      }
      tensors[name] = tf.tensor(t.values, t.shape, 'float32');
    }
    model.setWeights(tensors);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { model, sde: metadata.sde, metadata };
}
