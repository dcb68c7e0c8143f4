import * as tf from '@tensorflow/tfjs';
import { SbmError, checkChoice, describeValue } from '@sbm/core';
import { decodeSafetensors, encodeSafetensors } from '@sbm/safetensors';
import { ExponentialMovingAverage, ScoreModel } from '@sbm/models';

/**
 * Tensor layout of the file:
 * - `'tfjs'` (default): as the model holds them — dense kernels [in, out], conv kernels [kh, kw, in, out],
 *   transposed-conv kernels [kh, kw, out, in].
 * - `'torch'`: PyTorch's layout — nn.Linear weight [out, in], nn.Conv2d weight [out, in, kh, kw],
 *   nn.ConvTranspose2d weight [in, out, kh, kw]. Both conversions are the same axis permutation (rank 2: [1, 0];
 *   rank 4: [3, 2, 0, 1]), applied to every weight whose name ends in `/kernel`. Biases, norms, embeddings
 *   (Fourier `W`) are unchanged. Names stay the model's own (`down.0/conv0/kernel`); map them to a PyTorch
 *   state_dict with `rename`.
 */
export type SafetensorsLayout = 'tfjs' | 'torch';

export interface SafetensorsExportOptions {
  layout?: SafetensorsLayout;
  /** String metadata stored in the header (the model config is always added as `sbm.model`). */
  metadata?: Record<string, string>;
  /** Maps a model weight name to the name in the file (default identity). */
  rename?: (name: string) => string;
}

export interface SafetensorsImportOptions {
  layout?: SafetensorsLayout;
  /** Maps a model weight name to the name in the file (default identity); the inverse is not needed. */
  rename?: (name: string) => string;
  /** Every model weight must be in the file (default true). Extra tensors in the file are always an error. */
  strict?: boolean;
}

function isKernel(name: string, rank: number): boolean {
  return name.endsWith('/kernel') && (rank === 2 || rank === 4);
}

/** tfjs ↔ torch: the permutation is its own inverse for rank 2, and [3,2,0,1] ∘ [2,3,1,0] for rank 4. */
function toTorch(t: tf.Tensor): tf.Tensor {
  return t.rank === 2 ? tf.transpose(t, [1, 0]) : tf.transpose(t, [3, 2, 0, 1]);
}

function fromTorch(t: tf.Tensor): tf.Tensor {
  return t.rank === 2 ? tf.transpose(t, [1, 0]) : tf.transpose(t, [2, 3, 1, 0]);
}

function weightsOf(source: ScoreModel | ExponentialMovingAverage): { name: string; tensor: tf.Tensor }[] {
  if (source instanceof ScoreModel || source instanceof ExponentialMovingAverage) return source.getWeights();
  throw new SbmError(
    'INVALID_ARGUMENT',
    `exportSafetensors: source: expected a ScoreModel or an ExponentialMovingAverage, got ${describeValue(source)}`,
    { argument: 'source' },
  );
}

/**
 * The weights of a model (or of its EMA) as a safetensors file, float32, named by the model's weight names.
 * With an EMA, pass `model` in `metadata`-free form: the config of the EMA's model is not known, so give
 * `{ metadata: { 'sbm.model': JSON.stringify(model.toConfig()) } }` yourself if you want it recorded.
 */
export function exportSafetensors(
  source: ScoreModel | ExponentialMovingAverage,
  opts: SafetensorsExportOptions = {},
): Uint8Array {
  const layout = checkChoice(opts.layout ?? 'tfjs', 'layout', ['tfjs', 'torch'] as const);
  const rename = opts.rename ?? ((n: string) => n);
  const weights = weightsOf(source);
  const metadata: Record<string, string> = { 'sbm.layout': layout, ...(opts.metadata ?? {}) };
  if (source instanceof ScoreModel) metadata['sbm.model'] = JSON.stringify(source.toConfig());
  const converted: { name: string; tensor: tf.Tensor }[] = [];
  try {
    for (const w of weights) {
      const tensor = layout === 'torch' && isKernel(w.name, w.tensor.rank) ? toTorch(w.tensor) : w.tensor;
      converted.push({ name: rename(w.name), tensor });
    }
    const names = new Set(converted.map((c) => c.name));
    if (names.size !== converted.length) {
      throw new SbmError('DUPLICATE_NAME', 'exportSafetensors: rename maps two weights to the same name');
    }
    return encodeSafetensors(converted, metadata);
  } finally {
    for (let i = 0; i < converted.length; i++)
      if (converted[i].tensor !== weights[i].tensor) converted[i].tensor.dispose();
  }
}

/**
 * Loads weights from a safetensors file into `model` (by name, see `rename`), converting from `layout`.
 * Shapes must match after conversion; a missing weight is CONFIG_MISMATCH with `strict`, an unknown tensor
 * UNKNOWN_NAME, a malformed file CORRUPT_CHECKPOINT. The model is unchanged when anything fails.
 */
export function importSafetensors(model: ScoreModel, bytes: Uint8Array, opts: SafetensorsImportOptions = {}): void {
  if (!(model instanceof ScoreModel)) {
    throw new SbmError(
      'INVALID_ARGUMENT',
      `importSafetensors: model: expected a ScoreModel, got ${describeValue(model)}`,
    );
  }
  const layout = checkChoice(opts.layout ?? 'tfjs', 'layout', ['tfjs', 'torch'] as const);
  const rename = opts.rename ?? ((n: string) => n);
  const { tensors } = decodeSafetensors(bytes);
  const own = new Map(model.getWeights().map((w) => [rename(w.name), w.name]));
  const converted: tf.NamedTensorMap = {};
  try {
    for (const [fileName, t] of Object.entries(tensors)) {
      const name = own.get(fileName);
      if (name === undefined) {
        throw new SbmError(
          'UNKNOWN_NAME',
          `importSafetensors: "${fileName}" is not a weight of this ${model.name} model`,
          {
            received: fileName,
          },
        );
      }
      converted[name] = layout === 'torch' && isKernel(name, t.rank) ? fromTorch(t) : t;
    }
    model.setWeights(converted, { strict: opts.strict ?? true });
  } finally {
    tf.dispose(Object.values(tensors));
    tf.dispose(Object.values(converted).filter((t) => !t.isDisposed));
  }
}
