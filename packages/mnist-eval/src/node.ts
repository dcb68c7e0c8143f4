/**
 * @sbm/mnist-eval/node — everything in the main entry plus loading the classifier weights shipped in the package
 * (weights/classifier.safetensors) from disk. The main entry stays browser-safe.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SbmError } from '@sbm/core';
import { loadClassifier, type ClassifierOptions, type MnistClassifier } from './classifier';

export * from './index';

/**
 * Reads the weights file at `path` for `fn`: FILE_NOT_FOUND (naming the `retrain` script) when it is missing,
 * IO_ERROR when it cannot be read.
 */
async function readWeightsFile(path: string, fn: string, retrain: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as { code?: string }).code;
    const reason = e instanceof Error ? e.message : String(e);
    throw new SbmError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR',
      code === 'ENOENT'
        ? `${fn}: no weights file at ${path} (retrain with: node tools/mnist-classifier/${retrain})`
        : `${fn}: cannot read ${path}: ${reason}`,
      { path },
      { cause: e },
    );
  }
}

/**
 * Absolute path of the shipped weights. Both src/node.ts (tests, on sources) and dist/node.{js,cjs} (the build; the
 * CommonJS one gets import.meta.url from tsup's shims) sit one directory below the package root.
 */
export function defaultWeightsPath(): string {
  return fileURLToPath(new URL('../weights/classifier.safetensors', import.meta.url));
}

/** Loads the shipped classifier (or the safetensors file at `path`). FILE_NOT_FOUND / IO_ERROR / CORRUPT_CHECKPOINT. */
export async function loadDefaultClassifier(
  opts: ClassifierOptions & { path?: string } = {},
): Promise<MnistClassifier> {
  const path = opts.path ?? defaultWeightsPath();
  const bytes = await readWeightsFile(path, 'loadDefaultClassifier', 'train.mjs');
  return loadClassifier(bytes, { inputRange: opts.inputRange });
}

// Appended by the noise-conditional classifier (issue 14); imports are hoisted, so this one may sit here.
import { loadNoisyClassifier, type NoisyClassifierOptions, type NoisyMnistClassifier } from './noisy-classifier';

/** Absolute path of the shipped noise-conditional classifier weights (weights/noisy-classifier.safetensors). */
export function defaultNoisyWeightsPath(): string {
  return fileURLToPath(new URL('../weights/noisy-classifier.safetensors', import.meta.url));
}

/**
 * Loads the shipped noise-conditional classifier (or the safetensors file at `path`), for the tutorial-VE ScoreNet
 * unless `sde` says otherwise. FILE_NOT_FOUND / IO_ERROR / CORRUPT_CHECKPOINT.
 */
export async function loadDefaultNoisyClassifier(
  opts: NoisyClassifierOptions & { path?: string } = {},
): Promise<NoisyMnistClassifier> {
  const path = opts.path ?? defaultNoisyWeightsPath();
  const bytes = await readWeightsFile(path, 'loadDefaultNoisyClassifier', 'train-noisy.mjs');
  return loadNoisyClassifier(bytes, { sde: opts.sde });
}
